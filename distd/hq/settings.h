// The [hq] section of distd.toml, typed, with its defaults in one place (docs/config.md).
#pragma once

#include <cstdint>
#include <string>

#include "distd/config/config.h"

namespace distd::hq {

struct HqSettings {
  std::string listen = "127.0.0.1:8750";
  std::string secret_key;   // path; required to publish
  std::string public_key;   // path; optional (checked against the secret key when given)
  std::string sites_dir;    // enrolled center keys, <site>.pub; default <state_dir>/sites
  std::string php = "php";  // runs Moodle's admin/cli/backup.php for publish-course --moodle
  uint64_t keep_versions = 5;
  int64_t expires_days = 90;
  int64_t publish_interval = 0;  // seconds; 0 = off
  unsigned threads = 16;         // connections the HTTP server serves at once
};

// Reads and validates [hq]; paths come back resolved against the config file's directory.
// Throws Error{usage} naming the key.
HqSettings hq_settings(const Config& cfg);

}  // namespace distd::hq
