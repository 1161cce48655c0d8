// Signed requests: how a regional center proves to HQ which enrolled site it is
// (docs/formats/http.md, "Signed requests"). The center signs each POST to a smart endpoint
// with its site key; HQ checks the signature against <[hq] sites_dir>/<site>.pub.
//
//   Authorization: Distd-Ed25519 site=<site>, time=<unix seconds>, nonce=<32 hex>, sig=<128 hex>
//
// The signature covers, one per line, "distd-request 1", the site, the time, the nonce, the
// method, the request target (path and query as sent) and the BLAKE2b-256 of the body in hex:
// a request cannot be moved to another endpoint, another body or another site, and HQ refuses
// one whose time is far from its own clock or whose nonce it has already seen.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "manifest/keys.h"

namespace distd {

inline constexpr std::string_view kRequestAuthScheme = "Distd-Ed25519";

struct RequestCredentials {
  std::string site;
  int64_t time = 0;
  std::string nonce;  // 32 lower-case hex digits
  Signature sig{};
};

// The bytes a request signature covers.
std::string request_signing_message(std::string_view site, int64_t time, std::string_view nonce,
                                    std::string_view method, std::string_view target, std::string_view body);

// The Authorization header's value for one request, with a fresh random nonce.
std::string sign_request(std::string_view site, const SecretKey& key, int64_t time, std::string_view method,
                         std::string_view target, std::string_view body);

// True for a site id a request can carry: 1..128 characters from [A-Za-z0-9._-], not starting
// with '.' (it names files: <sites_dir>/<site>.pub, HQ's fleet/<site>.json). (Config
// loading refuses any other `site`, so a center never signs with an id HQ would refuse.)
bool valid_site_id(std::string_view site);

// Parses an Authorization value; nullopt when it is not a well-formed Distd-Ed25519 one (a site id
// of 1..128 characters from [A-Za-z0-9._-], a decimal time, a 32-hex nonce, a 128-hex signature).
std::optional<RequestCredentials> parse_request_credentials(std::string_view header);

bool verify_request(const RequestCredentials& c, const PublicKey& key, std::string_view method,
                    std::string_view target, std::string_view body);

}  // namespace distd
