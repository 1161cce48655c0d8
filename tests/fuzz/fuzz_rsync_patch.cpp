// A librsync delta as the center applies it: unsigned bytes from HQ or a stick, checked only by
// the digest of the result (distd/delta/rsync.h). The input is applied to a fixed 16 KiB basis
// both in memory (patch_bytes, manifests) and through files (apply_delta, objects), with the
// output capped at 64 KiB. Both must agree: the same bytes, or both distd::Error; neither may
// produce more than the cap.
#include <sys/mman.h>
#include <unistd.h>

#include <librsync.h>

#include <cstdlib>

#include "distd/delta/rsync.h"
#include "manifest/error.h"
#include "manifest/fs.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/fuzz_inputs.h"

namespace {

constexpr uint64_t kCap = 64 * 1024;

struct Files {
  std::string dir, basis_path, delta_path;
  int delta_fd = -1, out_fd = -1;
};

const Files& files() {
  static const Files f = [] {
    Files f;
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/distd-fuzz-patch-XXXXXX";
    if (!::mkdtemp(tmpl.data())) std::abort();
    f.dir = tmpl;
    f.basis_path = f.dir + "/basis";
    distd::write_file_atomic(f.basis_path, distd::fuzz::rsync_basis(), 0644);
    f.delta_fd = ::memfd_create("delta", MFD_CLOEXEC);
    f.out_fd = ::memfd_create("out", MFD_CLOEXEC);
    if (f.delta_fd < 0 || f.out_fd < 0) std::abort();
    f.delta_path = "/proc/self/fd/" + std::to_string(f.delta_fd);
    rs_trace_set_level(RS_LOG_CRIT);  // librsync's own error lines for every broken delta
    static const std::string* dir = new std::string(f.dir);  // outlives the statics at exit
    std::atexit([] { distd::remove_tree(*dir); });
    return f;
  }();
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string basis = distd::fuzz::rsync_basis();
  const Files& f = files();
  std::string_view delta = distd::fuzz::as_text(data, size);

  bool mem_ok = false;
  std::string out;
  try {
    out = distd::patch_bytes(basis, delta, kCap);
    mem_ok = true;
    FUZZ_CHECK(out.size() <= kCap);
  } catch (const distd::Error&) {
  }

  FUZZ_CHECK(::ftruncate(f.delta_fd, 0) == 0);
  FUZZ_CHECK(::pwrite(f.delta_fd, delta.data(), delta.size(), 0) == static_cast<ssize_t>(delta.size()));
  bool file_ok = false;
  uint64_t written = 0;
  distd::Digest d{};
  try {
    d = distd::apply_delta(f.basis_path, f.delta_path, f.out_fd, "fuzz-out", kCap, &written);
    file_ok = true;
    FUZZ_CHECK(written <= kCap);
  } catch (const distd::Error&) {
  }
  FUZZ_CHECK(mem_ok == file_ok);
  if (mem_ok) {
    FUZZ_CHECK(written == out.size());
    FUZZ_CHECK(d == distd::digest_bytes(out));
  }
  return 0;
}
