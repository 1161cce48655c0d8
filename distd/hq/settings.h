// The [hq] section of distd.toml, typed, with its defaults in one place (docs/config.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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
  unsigned threads = 64;         // connections the HTTP server serves at once (~8 MiB of stack each, mostly untouched)
  int64_t header_timeout = 10;   // seconds to receive a request line and its headers, in all
  unsigned per_peer_connections = 8;  // open connections per client address; more are closed at once
  // Addresses the per-address cap does not apply to: a reverse proxy on the same host (nginx in
  // front of HQ, docs/hq.md) brings every center from one of these, and has limits of its own.
  std::vector<std::string> uncapped_peers = {"127.0.0.1", "::1"};
  int64_t renew_after_days = 1;  // publish re-signs an unchanged channel whose manifest is this old; 0 = off
  uint64_t body_min_rate = 1024; // bytes/s a request body must average after its first 3 x header_timeout
  unsigned max_delta_jobs = 2;   // POST /deltas and manifest-delta requests at once (body to answer)
  uint64_t delta_cache_bytes = uint64_t(1) << 30;  // disk for kept deltas; least recently used go first
  bool access_log = true;               // one stderr line per request; false: only failures
  bool require_signed_requests = true;  // smart endpoints answer only enrolled sites (site_gate.h)
  int64_t request_clock_skew = 900;     // seconds a signed request's time may be from HQ's clock
  // zstd level of the compressed forms HQ stores (<object>.zst, <delta>.zst; made once, kept);
  // 0 = store none. docs/formats/compression.md.
  int compression_level = 19;
  // zstd level of batch answers (POST /objects), compressed as they are sent; 0 = send raw.
  int batch_compression_level = 19;
};

// Reads and validates [hq]; paths come back resolved against the config file's directory.
// Throws Error{usage} naming the key.
HqSettings hq_settings(const Config& cfg);

}  // namespace distd::hq
