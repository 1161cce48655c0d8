// The centers HQ knows: a site is enrolled when its public key is <[hq] sites_dir>/<site>.pub
// (default <state_dir>/sites/), copied there by an operator after comparing the key id by phone
// (docs/sneakernet.md). Bundle requests and forum posts are checked against that key.
#pragma once

#include <optional>
#include <string>

#include "distd/config/config.h"
#include "manifest/keys.h"

namespace distd::hq {

// <[hq] sites_dir>/<site>.pub: where the site's enrolled key is, whether or not it is there.
std::string site_key_file(const Config& cfg, const std::string& site);

// The site's enrolled key; nullopt when the site is not enrolled (no key file, or a site id that
// cannot name one: empty, with '/', or starting with '.'). Throws Error when the file is there
// but is not a public key, and Error{usage} for a bad [hq] section.
std::optional<PublicKey> find_enrolled_site_key(const Config& cfg, const std::string& site);

// Like find_enrolled_site_key(), but throws Error{not_found} "site '<site>' is not enrolled at HQ
// (no <file>)", with what to do, when it is not.
PublicKey enrolled_site_key(const Config& cfg, const std::string& site);

}  // namespace distd::hq
