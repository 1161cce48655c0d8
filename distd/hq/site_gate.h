// Which requests to HQ's smart endpoints (POST /deltas, POST /objects, the manifest-delta POST)
// are answered: only those signed by an enrolled site (manifest/request_auth.h), unless
// [hq] require_signed_requests = false. The static layout (every GET) stays public.
//
// A request is refused with 401 when it is unsigned, malformed, signed by a key that is not the
// site's enrolled one, with a time further than [hq] request_clock_skew from HQ's clock (the
// answer carries HQ's time in X-Distd-Time so the center can correct for a wrong clock), or with
// a nonce already seen; with 403 when its site is not enrolled. Nonces of verified requests are
// remembered for twice the allowed skew, at most kMaxNonces of them.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "distd/config/config.h"
#include "distd/hq/settings.h"
#include "manifest/request_auth.h"

namespace distd::hq {

struct GateRefusal {
  int status = 401;
  std::string message;
};

class SiteGate {
 public:
  static constexpr size_t kMaxNonces = 200000;

  SiteGate(const Config& cfg, const HqSettings& s);

  bool enabled() const { return required_; }
  int64_t clock_skew() const { return skew_; }

  // Before the body is read: the header is well formed, the site enrolled and the time close.
  std::optional<GateRefusal> precheck(std::string_view authorization, int64_t now) const;
  // With the body: all of precheck, the signature, and the nonce not seen before (it is then
  // remembered). On success *site is the verified site id.
  std::optional<GateRefusal> check(std::string_view authorization, std::string_view method, std::string_view target,
                                   std::string_view body, int64_t now, std::string* site);

  uint64_t refused() const;

 private:
  std::optional<GateRefusal> screen(std::string_view authorization, int64_t now, RequestCredentials* creds,
                                    PublicKey* key) const;

  const Config& cfg_;
  bool required_ = true;
  int64_t skew_ = 900;
  mutable std::mutex mu_;
  std::multimap<int64_t, std::string> nonce_expiry_;  // expiry -> site + nonce
  std::map<std::string, int64_t> nonces_;             // site + nonce -> expiry
  mutable uint64_t refused_ = 0;
};

}  // namespace distd::hq
