// What `distd --check-config` and `distctl config check` verify: everything a start of distd
// reads before it serves (the config's sections and keys, with unknown keys refused by
// load_config; the listen address, the key files and that they belong together), without
// binding a port or touching the state directory.
#pragma once

#include <cstddef>
#include <string>

#include "distd/config/config.h"

namespace distd {

struct ConfigCheck {
  std::string file, role, site;
  size_t channels = 0;
  std::string listen;      // HQ: [hq] listen
  std::string key_id;      // HQ: the signing key's id (when [hq] secret_key is set); a center: HQ's pinned key
  std::string hq_url;      // a center: [regional] hq_url
  std::string summary() const;  // "role hq, site hq, 2 channels; signing key 7c4f ..., listening on ..."
};

// Throws Error (usage, not_found, corrupt, ...) with what to change, as a start would.
ConfigCheck check_config(const Config& cfg);

}  // namespace distd
