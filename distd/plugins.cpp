#include "distd/plugins.h"

#include <mutex>

#include "distd/course/course_library.h"
#include "distd/course/course_priority.h"
#include "distd/regional/daemon.h"
#include "distd/regional/sync.h"
#include "distd/replica/file_check.h"
#include "distd/replica/health.h"
#include "distd/replica/replica_config.h"
#include "manifest/error.h"

namespace distd {

namespace {

// Files the local database replica already references but the disk lacks come first: each is a
// broken download for a student until it arrives. A replica that cannot be asked costs only the
// ordering, never the sync.
std::vector<std::string> replica_referenced_missing(const Config& cfg, const ChannelConfig& ch) {
  std::vector<std::string> out;
  if (ch.preset != "moodledata") return out;
  try {
    if (!replica::load_replica_config(cfg, false).present) return out;
    for (auto& f : replica::referenced_missing_files(cfg)) out.push_back(f.sha1);
  } catch (const Error&) {
  }
  return out;
}

std::vector<std::string> course_files_first(const Config& cfg, const ChannelConfig& ch) {
  return ch.preset == "moodledata" ? course::course_priority_hashes(cfg) : std::vector<std::string>{};
}

// A broken or writable replica is a warning of the daemon's.
std::vector<std::string> replica_warnings(const Config& cfg) {
  std::vector<std::string> out;
  try {
    if (!replica::load_replica_config(cfg, false).present) return out;
    for (auto& w : replica::replica_health(cfg).warnings) out.push_back("replica: " + w);
  } catch (const Error& e) {
    out.push_back(std::string("replica: cannot check the replica: ") + e.what());
  }
  return out;
}

}  // namespace

void register_plugins() {
  static std::once_flag once;
  std::call_once(once, [] {
    after_install_hooks().push_back(course::after_install);
    priority_providers().push_back(replica_referenced_missing);
    priority_providers().push_back(course_files_first);
    health_checks().push_back(replica_warnings);
  });
}

}  // namespace distd
