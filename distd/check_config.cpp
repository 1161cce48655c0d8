#include "distd/check_config.h"

#include "distd/hq/http_server.h"
#include "distd/hq/settings.h"
#include "distd/regional/sync.h"
#include "manifest/error.h"
#include "manifest/keys.h"

namespace distd {

ConfigCheck check_config(const Config& cfg) {
  ConfigCheck c;
  c.file = cfg.file;
  c.role = cfg.role;
  c.site = cfg.site;
  c.channels = cfg.channels.size();
  if (cfg.role == "hq") {
    hq::HqSettings hs = hq::hq_settings(cfg);
    (void)hq::parse_listen(hs.listen);
    c.listen = hs.listen;
    if (!hs.secret_key.empty()) {
      PublicKey pk = load_secret_key(hs.secret_key).public_key();
      if (!hs.public_key.empty() && load_public_key(hs.public_key).bytes != pk.bytes)
        throw Error(Errc::usage, "[hq] secret_key " + hs.secret_key + " does not belong to [hq] public_key " + hs.public_key,
                    "point both at the same key pair (distctl keygen)");
      c.key_id = pk.short_id();
    }
  } else {
    RegionalSettings rs = RegionalSettings::from(cfg);
    c.hq_url = rs.hq_url;
    c.key_id = rs.hq_key.short_id();
  }
  return c;
}

std::string ConfigCheck::summary() const {
  std::string what;
  if (role == "hq") {
    if (!key_id.empty()) what = "signing key " + key_id + ", ";
    what += "listening on " + listen;
  } else {
    what = "HQ " + hq_url + ", HQ key " + key_id;
  }
  return "role " + role + ", site " + site + ", " + std::to_string(channels) + " channels; " + what;
}

}  // namespace distd
