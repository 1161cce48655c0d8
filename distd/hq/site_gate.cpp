#include "distd/hq/site_gate.h"

#include "distd/hq/sites.h"
#include "manifest/error.h"
#include "manifest/request_auth.h"

namespace distd::hq {
namespace {

GateRefusal refusal(int status, std::string message) { return {status, std::move(message)}; }

}  // namespace

SiteGate::SiteGate(const Config& cfg, const HqSettings& s)
    : cfg_(cfg), required_(s.require_signed_requests), skew_(s.request_clock_skew) {}

uint64_t SiteGate::refused() const {
  std::lock_guard<std::mutex> g(mu_);
  return refused_;
}

std::optional<GateRefusal> SiteGate::precheck(std::string_view authorization, int64_t now) const {
  return screen(authorization, now, nullptr, nullptr);
}

// The header checks of precheck(); on success *creds and *key (when given) are the parsed
// credentials and the site's enrolled key, so check() reads the key file once.
std::optional<GateRefusal> SiteGate::screen(std::string_view authorization, int64_t now, RequestCredentials* creds,
                                            PublicKey* key_out) const {
  auto fail = [&](int status, std::string m) {
    std::lock_guard<std::mutex> g(mu_);
    ++refused_;
    return std::optional<GateRefusal>(refusal(status, std::move(m)));
  };
  if (authorization.empty())
    return fail(401, "this endpoint answers only enrolled sites: sign the request with the site key "
                     "(distd does; docs/formats/http.md, \"Signed requests\"), or fetch the static files with GET");
  auto c = parse_request_credentials(authorization);
  if (!c) return fail(401, "the Authorization header is not a well-formed Distd-Ed25519 signature");
  std::optional<PublicKey> key;
  try {
    key = find_enrolled_site_key(cfg_, c->site);
  } catch (const Error& e) {
    return fail(403, "site '" + c->site + "' has an enrolled key HQ cannot read (" + e.what() + ")");
  }
  if (!key)
    return fail(403, "site '" + c->site + "' is not enrolled at HQ: copy its site.pub to " +
                         site_key_file(cfg_, c->site) + " after comparing its key id by phone ('distctl bundle "
                         "request' at the center shows it); until then it gets whole files only");
  if (c->time < now - skew_ || c->time > now + skew_)
    return fail(401, "the request's time (" + std::to_string(c->time) + ") is more than " + std::to_string(skew_) +
                         " s from HQ's clock (" + std::to_string(now) + "); set the center's clock");
  if (creds) *creds = std::move(*c);
  if (key_out) *key_out = *key;
  return std::nullopt;
}

std::optional<GateRefusal> SiteGate::check(std::string_view authorization, std::string_view method,
                                           std::string_view target, std::string_view body, int64_t now,
                                           std::string* site) {
  RequestCredentials c;
  PublicKey key;
  if (auto no = screen(authorization, now, &c, &key)) return no;
  const bool verified = verify_request(c, key, method, target, body);
  std::lock_guard<std::mutex> g(mu_);
  if (!verified) {
    ++refused_;
    return refusal(401, "the request is not signed by the enrolled key of site '" + c.site +
                            "' (or was changed on the way): compare the key id of the center's site.pub with " +
                            site_key_file(cfg_, c.site));
  }
  while (!nonce_expiry_.empty() && nonce_expiry_.begin()->first < now) {
    nonces_.erase(nonce_expiry_.begin()->second);
    nonce_expiry_.erase(nonce_expiry_.begin());
  }
  const std::string id = c.site + "/" + c.nonce;
  if (nonces_.count(id)) {
    ++refused_;
    return refusal(401, "this signed request was already answered (a replay); the center signs each request anew");
  }
  if (nonces_.size() >= kMaxNonces) {
    ++refused_;
    return refusal(503, "HQ is remembering too many recent requests; try again in a few seconds");
  }
  const int64_t expiry = c.time + skew_ + 1;
  nonces_.emplace(id, expiry);
  nonce_expiry_.emplace(expiry, id);
  if (site) *site = c.site;
  return std::nullopt;
}

}  // namespace distd::hq
