// A librsync signature as HQ receives it (POST /channels/<c>/latest.manifest and POST /deltas):
// HQ loads it and computes the delta of a fixed 16 KiB target against it (distd/hq/delta_service.h
// delta_of_bytes, the same loading as DeltaService). Any input gives a delta or distd::Error, and
// the delta stays within a fixed multiple of the target: a signature must not be able to make HQ
// write without bound.
#include "distd/delta/rsync.h"
#include "distd/hq/delta_service.h"
#include "manifest/error.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string target = distd::fuzz::rsync_target();
  static const std::string basis = distd::fuzz::rsync_basis();
  std::string delta;
  try {
    delta = distd::hq::delta_of_bytes(distd::fuzz::as_text(data, size), target);
  } catch (const distd::Error&) {
    return 0;
  }
  // A COPY command is at most 17 bytes and covers at least one byte; a literal costs at most 9 +
  // its bytes. So no delta of a target of n bytes is larger than 17 n + the header.
  FUZZ_CHECK(delta.size() <= 17 * target.size() + 64);
  // A delta against a signature of our basis must rebuild the target exactly (the signature
  // posted is usually a real one; mutants of it give deltas the center then refuses by digest).
  if (std::string_view(distd::fuzz::as_text(data, size)) == distd::signature_of_bytes(basis))
    FUZZ_CHECK(distd::patch_bytes(basis, delta, target.size()) == target);
  return 0;
}
