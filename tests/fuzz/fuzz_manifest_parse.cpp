// The manifest parser (manifest/manifest.h parse_manifest). Runs as the ctest fuzz_manifest_parse;
// for libFuzzer see docs/testing.md (Fuzzing). Corpus: tests/fuzz/corpus/manifest_parse/.
// Any input must either parse (and then re-serialise to the same signed body) or throw
// distd::Error; never crash, hang or throw anything else.
#include <cstdint>
#include <string>

#include "manifest/error.h"
#include "manifest/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  try {
    distd::SignedManifest sm = distd::parse_manifest(in, "fuzz");
    std::string body = distd::canonical_body(sm.manifest);
    if (in.substr(0, body.size()) != body) __builtin_trap();  // one spelling per manifest
  } catch (const distd::Error&) {
  }
  return 0;
}
