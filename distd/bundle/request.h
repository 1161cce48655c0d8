// The request a regional center sends to HQ on a stick: what it has, signed with its own key.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "distd/bundle/format.h"
#include "distd/config/config.h"
#include "manifest/manifest.h"

namespace distd::bundle {

// The site's key pair: [regional] site_secret_key / site_public_key, by default
// <state_dir>/site.key and <state_dir>/site.pub. Generated on first use.
struct SiteKeyPaths {
  std::string secret, pub;
};
SiteKeyPaths site_key_paths(const Config& cfg);
KeyPair load_or_create_site_key(const Config& cfg, bool* created = nullptr);

struct RequestOptions {
  std::vector<std::string> priority;  // paths or base names (e.g. SHA-1 hashes the replica misses)
  std::function<void(const std::string&)> log;
};

struct RequestResult {
  std::string path;              // the request file written
  std::string site, key_id;      // key id: short form, to compare by eye with HQ's enrolled copy
  std::string public_key_path;   // what HQ must enroll as <sites_dir>/<site>.pub
  bool key_created = false;
  Request request;
  uint64_t bytes = 0;
};

// Writes <dir>/distd-request.txt (and copies <state_dir>/outbound/* to <dir>/distd-outbound/),
// with this center's status report (Request::report, as of the request's time) when one can be
// made; HQ stores it like a report that came by the link (how "stick").
// Holds the regional state lock while it scans the channel trees (stat cache: fast after the
// first time). Throws Error.
RequestResult write_request(const Config& cfg, const std::string& dir, const RequestOptions& opts = {});

// HQ side: reads and verifies a request against the enrolled key <sites_dir>/<site>.pub
// ([hq] sites_dir, default <state_dir>/sites). Throws Error{not_found} for an unenrolled site,
// Error{bad_signature} for a mis-signed request, Error{corrupt} for a damaged one.
// *digest_hex receives the digest of the whole request file.
Request read_verified_request(const Config& hq_cfg, const std::string& path, std::string* digest_hex = nullptr);

}  // namespace distd::bundle
