#include "distd/hq/sites.h"

#include <sys/stat.h>

#include "distd/hq/settings.h"
#include "manifest/error.h"

namespace distd::hq {

std::string site_key_file(const Config& cfg, const std::string& site) {
  return hq_settings(cfg).sites_dir + "/" + site + ".pub";
}

std::optional<PublicKey> find_enrolled_site_key(const Config& cfg, const std::string& site) {
  const std::string keyfile = site_key_file(cfg, site);
  struct stat st {};
  if (site.empty() || site.find('/') != std::string::npos || site[0] == '.' || ::stat(keyfile.c_str(), &st) != 0)
    return std::nullopt;
  return load_public_key(keyfile);
}

PublicKey enrolled_site_key(const Config& cfg, const std::string& site) {
  if (auto key = find_enrolled_site_key(cfg, site)) return *key;
  throw Error(Errc::not_found, "site '" + site + "' is not enrolled at HQ (no " + site_key_file(cfg, site) + ")",
              "enroll the center's site.pub there after comparing its key id by phone");
}

}  // namespace distd::hq
