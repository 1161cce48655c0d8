// libFuzzer target for the manifest parser. Build with clang:
//   CXX=clang++ cmake -S . -B build-fuzz -DDISTD_FUZZ=ON && cmake --build build-fuzz --target fuzz_manifest_parse
//   build-fuzz/tests/fuzz_manifest_parse -max_total_time=60 tests/fuzz/corpus/
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
