// The bundle index (distd-bundle.idx, distd/bundle/format.h parse_index). It is verified before it
// is parsed, so the input is tried twice: as it is (the signature-line split and the key checks
// see hostile bytes) and as a body signed by the fixed test key (the parser behind the check sees
// hostile bytes: defence in depth against a bad or compromised HQ). Either parses or throws
// distd::Error; what parses renders to the same body.
#include "distd/bundle/format.h"
#include "manifest/error.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const distd::KeyPair& kp = distd::fuzz::fixed_keypair();
  std::string_view in = distd::fuzz::as_text(data, size);
  try {
    (void)distd::bundle::parse_index(in, kp.pub, "fuzz");
  } catch (const distd::Error&) {
  }
  std::string body(in);
  try {
    distd::bundle::Index ix = distd::bundle::parse_index(distd::bundle::sign_text(body, kp.sec), kp.pub, "fuzz");
    FUZZ_CHECK(distd::bundle::render_index_body(ix) == body);
  } catch (const distd::Error&) {
  }
  return 0;
}
