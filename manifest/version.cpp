#include "manifest/version.h"

namespace distd {

const char* distd_version() { return DISTD_VERSION; }

}  // namespace distd
