// A full disk in the staging area (a small tmpfs holding the channel tree and its staging):
// the sync stops with a clear error, nothing unverified appears, and once space is freed the
// next run resumes and converges. Needs root (mount); skipped otherwise.
#include <sys/mount.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {
struct Tmpfs {
  std::string dir;
  bool mounted = false;
  Tmpfs(const std::string& d, const std::string& size) : dir(d) {
    fs::create_directories(dir);
    mounted = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  bool resize(const std::string& size) {
    return ::mount("tmpfs", dir.c_str(), "tmpfs", MS_REMOUNT, ("size=" + size).c_str()) == 0;
  }
  ~Tmpfs() {
    if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
  }
};
}  // namespace

BOOST_AUTO_TEST_CASE(full_staging_disk_then_resume) {
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("skipped: needs root to mount a tmpfs");
    return;
  }
  SyncSite s;
  Tmpfs small(s.tmp / "center", "2m");
  if (!small.mounted) {
    BOOST_TEST_MESSAGE("skipped: cannot mount a tmpfs here");
    return;
  }
  s.set_hq_url(s.hq_url(), "staging_dir = \"" + (s.tmp / "center/staging") + "\"");
  for (int i = 0; i < 10; ++i) write_file(s.src() + "/small/" + std::to_string(i), random_bytes(5000, i));
  write_file(s.src() + "/big.bin", random_bytes(3'000'000, 99));  // more than the 2 MiB disk
  s.publish();
  s.start_hq();

  RunResult r = s.sync();
  BOOST_TEST_MESSAGE("disk full run said: " << r.err);
  BOOST_TEST(r.status == 11, r.err);  // no_space
  BOOST_TEST(r.err.find("big.bin") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("what to do") != std::string::npos, r.err);
  s.check_only_signed({1});
  BOOST_TEST(!exists(s.dst() + "/big.bin"));

  BOOST_REQUIRE(small.resize("16m"));  // space freed
  auto r2 = s.sync_ok();
  s.check_converged(1);
  // It resumed: the big file did not come twice.
  BOOST_TEST(r2["bytes_received"].get<uint64_t>() < 3'000'000u);
}
