// The Authorization header of a signed request (manifest/request_auth.h), as HQ's site gate reads
// it from any client before the body: parse_request_credentials must never crash or throw, what
// it accepts has the documented shape, and no input verifies against a key that did not sign it.
#include "manifest/request_auth.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(distd::fuzz::as_text(data, size));
  auto c = distd::parse_request_credentials(in);
  if (!c) return 0;
  FUZZ_CHECK(!c->site.empty() && c->site.size() <= 128);
  FUZZ_CHECK(c->nonce.size() == 32);
  FUZZ_CHECK(c->time >= 0);
  static const distd::KeyPair kp = distd::generate_keypair();
  FUZZ_CHECK(!distd::verify_request(*c, kp.pub, "POST", "/objects", in));
  return 0;
}
