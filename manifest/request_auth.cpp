#include "manifest/request_auth.h"

#include <sodium.h>

#include "manifest/digest.h"
#include "manifest/encoding.h"

namespace distd {
namespace {

bool site_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

bool lower_hex(std::string_view s, size_t len) {
  if (s.size() != len) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool valid_site_id(std::string_view site) {
  if (site.empty() || site.size() > 128 || site[0] == '.') return false;  // no ".", "..", hidden files
  for (char ch : site)
    if (!site_char(ch)) return false;
  return true;
}

std::string request_signing_message(std::string_view site, int64_t time, std::string_view nonce,
                                    std::string_view method, std::string_view target, std::string_view body) {
  std::string m = "distd-request 1\n";
  m.append(site).append("\n").append(std::to_string(time)).append("\n").append(nonce).append("\n");
  m.append(method).append("\n").append(target).append("\n").append(digest_hex(digest_bytes(body))).append("\n");
  return m;
}

std::string sign_request(std::string_view site, const SecretKey& key, int64_t time, std::string_view method,
                         std::string_view target, std::string_view body) {
  uint8_t raw[16];
  randombytes_buf(raw, sizeof raw);
  const std::string nonce = to_hex(raw, sizeof raw);
  Signature sig = sign_detached(key, request_signing_message(site, time, nonce, method, target, body));
  std::string h(kRequestAuthScheme);
  h.append(" site=").append(site).append(", time=").append(std::to_string(time)).append(", nonce=").append(nonce);
  h.append(", sig=").append(to_hex(sig.data(), sig.size()));
  return h;
}

std::optional<RequestCredentials> parse_request_credentials(std::string_view h) {
  h = trim(h);
  if (h.size() > 1024 || !h.starts_with(kRequestAuthScheme)) return std::nullopt;
  h.remove_prefix(kRequestAuthScheme.size());
  if (h.empty() || h.front() != ' ') return std::nullopt;
  RequestCredentials c;
  bool have_site = false, have_time = false, have_nonce = false, have_sig = false;
  while (!h.empty()) {
    size_t comma = h.find(',');
    std::string_view part = trim(h.substr(0, comma));
    h = comma == std::string_view::npos ? std::string_view{} : h.substr(comma + 1);
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view k = part.substr(0, eq), v = part.substr(eq + 1);
    if (k == "site" && !have_site) {
      if (!valid_site_id(v)) return std::nullopt;
      c.site = std::string(v);
      have_site = true;
    } else if (k == "time" && !have_time) {
      auto t = parse_u64(v);
      if (!t || *t > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
      c.time = static_cast<int64_t>(*t);
      have_time = true;
    } else if (k == "nonce" && !have_nonce) {
      if (!lower_hex(v, 32)) return std::nullopt;
      c.nonce = std::string(v);
      have_nonce = true;
    } else if (k == "sig" && !have_sig) {
      if (!lower_hex(v, 128) || !from_hex(v, c.sig.data(), c.sig.size())) return std::nullopt;
      have_sig = true;
    } else {
      return std::nullopt;
    }
  }
  if (!(have_site && have_time && have_nonce && have_sig)) return std::nullopt;
  return c;
}

bool verify_request(const RequestCredentials& c, const PublicKey& key, std::string_view method,
                    std::string_view target, std::string_view body) {
  return verify_detached(key, request_signing_message(c.site, c.time, c.nonce, method, target, body), c.sig);
}

}  // namespace distd
