#include "distd/hq/settings.h"

#include "manifest/error.h"

namespace distd::hq {

HqSettings hq_settings(const Config& cfg) {
  HqSettings s;
  s.listen = cfg.get_string("hq.listen", s.listen);
  std::string sk = cfg.get_string("hq.secret_key");
  std::string pk = cfg.get_string("hq.public_key");
  s.secret_key = sk.empty() ? sk : cfg.resolve(sk);
  s.public_key = pk.empty() ? pk : cfg.resolve(pk);
  int64_t keep = cfg.get_int("hq.keep_versions", static_cast<int64_t>(s.keep_versions));
  if (keep < 1 || keep > 100000)
    throw Error(Errc::usage, "config " + cfg.file + ": [hq] keep_versions must be between 1 and 100000, not " +
                                 std::to_string(keep),
                "keep_versions is how many manifest versions (and their objects) HQ retains; the default is 5");
  s.keep_versions = static_cast<uint64_t>(keep);
  s.expires_days = cfg.get_int("hq.expires_days", s.expires_days);
  if (s.expires_days < 1 || s.expires_days > 36500)
    throw Error(Errc::usage, "config " + cfg.file + ": [hq] expires_days must be between 1 and 36500",
                "the default is 90 (days a published manifest stays valid)");
  s.publish_interval = cfg.get_int("hq.publish_interval", s.publish_interval);
  if (s.publish_interval < 0)
    throw Error(Errc::usage, "config " + cfg.file + ": [hq] publish_interval must be 0 (off) or a number of seconds");
  int64_t threads = cfg.get_int("hq.threads", s.threads);
  if (threads < 1 || threads > 1024)
    throw Error(Errc::usage, "config " + cfg.file + ": [hq] threads must be between 1 and 1024",
                "each open connection holds one thread; 16 is the default");
  s.threads = static_cast<unsigned>(threads);
  s.sites_dir = cfg.resolve(cfg.get_string("hq.sites_dir", cfg.state_dir + "/sites"));
  s.php = cfg.get_string("hq.php", s.php);
  return s;
}

}  // namespace distd::hq
