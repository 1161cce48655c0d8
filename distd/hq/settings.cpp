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
                "each open connection holds one thread; 64 is the default");
  s.threads = static_cast<unsigned>(threads);
  s.header_timeout = cfg.get_int("hq.header_timeout", s.header_timeout);
  if (s.header_timeout < 1 || s.header_timeout > 3600)
    throw Error(Errc::usage, "config " + cfg.file + ": [hq] header_timeout must be between 1 and 3600 seconds",
                "the time a client has to send a request line and its headers; 10 is the default");
  int64_t peer = cfg.get_int("hq.per_peer_connections", s.per_peer_connections);
  if (peer < 1 || peer > 100000)
    throw Error(Errc::usage, "config " + cfg.file + ": [hq] per_peer_connections must be between 1 and 100000",
                "open connections one client address may hold; 8 is the default (a center uses one or two)");
  s.per_peer_connections = static_cast<unsigned>(peer);
  if (const toml::node* n = cfg.table.at_path("hq.uncapped_peers").node()) {
    const toml::array* a = n->as_array();
    if (!a || !a->is_homogeneous<std::string>())
      throw Error(Errc::usage, "config " + cfg.file + ": [hq] uncapped_peers must be a list of addresses",
                  "write e.g. uncapped_peers = [\"127.0.0.1\", \"::1\"] (the address nginx connects from), or []");
    s.uncapped_peers.clear();
    for (const auto& v : *a) s.uncapped_peers.push_back(**v.as_string());
  }
  s.renew_after_days = cfg.get_int("hq.renew_after_days", s.renew_after_days);
  if (s.renew_after_days < 0 || s.renew_after_days > 36500)
    throw Error(Errc::usage, "config " + cfg.file + ": [hq] renew_after_days must be 0 (off) or a number of days",
                "publish re-signs an unchanged channel once its newest manifest is this old; 1 is the default");
  int64_t rate = cfg.get_int("hq.body_min_rate", static_cast<int64_t>(s.body_min_rate));
  if (rate < 1)
    throw Error(Errc::usage, "config " + cfg.file + ": [hq] body_min_rate must be at least 1 (bytes per second)",
                "a request body slower than this on average (after 3 x header_timeout) is cut; 1024 is the default");
  s.body_min_rate = static_cast<uint64_t>(rate);
  int64_t jobs = cfg.get_int("hq.max_delta_jobs", s.max_delta_jobs);
  if (jobs < 1 || jobs > 1024)
    throw Error(Errc::usage, "config " + cfg.file + ": [hq] max_delta_jobs must be between 1 and 1024",
                "each delta request may hold a 64 MiB signature in memory; 2 is the default");
  s.max_delta_jobs = static_cast<unsigned>(jobs);
  int64_t cache = cfg.get_int("hq.delta_cache_bytes", static_cast<int64_t>(s.delta_cache_bytes));
  if (cache < (int64_t(1) << 20))
    throw Error(Errc::usage, "config " + cfg.file + ": [hq] delta_cache_bytes must be at least 1048576 (1 MiB)",
                "the default is 1073741824 (1 GiB)");
  s.delta_cache_bytes = static_cast<uint64_t>(cache);
  s.access_log = cfg.get_bool("hq.access_log", s.access_log);
  s.require_signed_requests = cfg.get_bool("hq.require_signed_requests", s.require_signed_requests);
  s.request_clock_skew = cfg.get_int("hq.request_clock_skew", s.request_clock_skew);
  if (s.request_clock_skew < 10 || s.request_clock_skew > 7 * 86400)
    throw Error(Errc::usage, "config " + cfg.file + ": [hq] request_clock_skew must be between 10 and 604800 seconds",
                "how far a center's clock may be from HQ's in a signed request; 900 is the default");
  for (auto [key, level] : {std::pair{"compression_level", &s.compression_level},
                             std::pair{"batch_compression_level", &s.batch_compression_level}}) {
    int64_t v = cfg.get_int(std::string("hq.") + key, *level);
    if (v < 0 || v > 22)
      throw Error(Errc::usage, "config " + cfg.file + ": [hq] " + key + " must be between 0 (off) and 22",
                  "a zstd level: 19 (the default) is slow to make and small to send; 3 is fast");
    *level = static_cast<int>(v);
  }
  s.sites_dir = cfg.resolve(cfg.get_string("hq.sites_dir", cfg.state_dir + "/sites"));
  s.php = cfg.get_string("hq.php", s.php);
  return s;
}

}  // namespace distd::hq
