// A full disk in the staging area (a small tmpfs holding the channel tree and its staging):
// the sync stops with a clear error, nothing unverified appears, and once space is freed the
// next run resumes and converges. Needs root (mount); skipped otherwise.
#include <sys/mount.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/mounts.h"
#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;


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

// The journal's disk fills (the state directory on a full tmpfs, staging elsewhere): the sync
// exits 11 (disk full) naming the journal, not 13 (database), and converges once space is freed.
BOOST_AUTO_TEST_CASE(full_journal_disk_exits_disk_full) {
  if (::geteuid() != 0) return;
  SyncSite s;
  Tmpfs small(s.reg_state, "1m");
  if (!small.mounted) return;
  s.set_hq_url(s.hq_url(), "staging_dir = \"" + (s.tmp / "center/staging") + "\"");
  write_file(s.src() + "/a.txt", "one");
  s.publish();
  s.start_hq();
  (void)s.sync_ok();
  // Fill what is left of the state directory's disk, then give the center 300 new files to plan.
  const std::string filler = s.reg_state + "/filler";
  {
    std::ofstream f(filler, std::ios::binary);
    const std::string block(4096, 'x');
    while (f.write(block.data(), block.size())) {
    }
  }
  for (int i = 0; i < 300; ++i) write_file(s.src() + "/many/" + std::to_string(i), "file " + std::to_string(i));
  s.publish();
  RunResult r = s.sync();
  BOOST_TEST_MESSAGE("full journal disk said: " << r.err);
  BOOST_TEST(r.status == 11, r.err);
  BOOST_TEST(r.err.find("journal") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("the disk is full") != std::string::npos, r.err);
  fs::remove(filler);
  (void)s.sync_ok();
  s.check_converged(2);
}
