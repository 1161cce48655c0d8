// The stick request (distd-request.txt), as HQ parses it before it checks the signature
// (distd/bundle/format.h parse_request). Any input must parse or throw distd::Error; what parses
// renders to a body that parses back to the same rendering. An input without a signature line is
// also tried with one appended, so that mutants of the body reach the body parser.
#include "distd/bundle/format.h"
#include "manifest/error.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

const std::string kSigLine = "signature ed25519 " + std::string(64, 'a') + " " + std::string(128, 'b') + "\n";

bool parse(std::string_view in, distd::bundle::Request* r) {
  distd::Digest kid{};
  distd::Signature sig{};
  std::string body;
  try {
    *r = distd::bundle::parse_request(in, "fuzz", &kid, &body, &sig);
  } catch (const distd::Error&) {
    return false;
  }
  FUZZ_CHECK(in.substr(0, body.size()) == body);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = distd::fuzz::as_text(data, size);
  distd::bundle::Request r;
  bool ok = parse(in, &r) || parse(std::string(in) + kSigLine, &r);
  if (!ok) return 0;
  std::string body = distd::bundle::render_request_body(r);
  distd::bundle::Request again;
  FUZZ_CHECK(parse(body + kSigLine, &again));
  FUZZ_CHECK(distd::bundle::render_request_body(again) == body);
  return 0;
}
