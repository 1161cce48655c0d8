// A damaged journal needs no human (distd/regional/journal.h): the next sync moves it aside,
// starts a new one, takes the installed version from installed.manifest and converges from the
// files on disk. And rollback protection survives losing both the journal and
// installed.manifest: the highest verified version is kept in a third place
// (<state_dir>/manifests/<channel>/highest-version).
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>

#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

std::string journal_of(const SyncSite& s) { return s.reg_state + "/journal.sqlite"; }

size_t count_damaged(const SyncSite& s) {
  size_t n = 0;
  for (auto& e : fs::directory_iterator(s.reg_state))
    n += e.path().filename().string().find(".damaged-") != std::string::npos;
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_damaged_journal_is_moved_aside_and_rebuilt) {
  SyncSite s;
  write_file(s.src() + "/a.txt", random_bytes(10'000, 1));
  write_file(s.src() + "/b/c.bin", random_bytes(200'000, 2));
  s.publish();
  s.start_hq();
  s.sync_ok();
  s.check_converged(1);
  const std::string jp = journal_of(s);
  BOOST_REQUIRE(exists(jp));
  {  // garbage over the SQLite header and the first pages
    std::fstream f(jp, std::ios::in | std::ios::out | std::ios::binary);
    std::string junk(8192, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  RunResult r = s.sync();
  BOOST_TEST_INFO(r.err);
  BOOST_TEST(r.status == 0);  // before: exit 13, "if the file is damaged, move it away"
  BOOST_TEST(r.err.find("the journal was damaged") != std::string::npos, r.err);
  BOOST_TEST(count_damaged(s) == 1u);
  auto ch = nlohmann::json::parse(r.out)["channels"][0];
  BOOST_TEST(ch["up_to_date"].get<bool>());  // installed.manifest said version 1 is here
  s.check_converged(1);
  RunResult st = run({"distctl", "status", "--config", s.reg_cfg, "--json"});
  BOOST_TEST(st.status == 0);
  BOOST_TEST(nlohmann::json::parse(st.out)["channels"][0]["installed_version"].get<uint64_t>() == 1u);
  // Further syncs are ordinary again.
  write_file(s.src() + "/d.txt", "new");
  s.publish();
  s.sync_ok();
  s.check_converged(2);
  BOOST_TEST(count_damaged(s) == 1u);
}

BOOST_AUTO_TEST_CASE(losing_journal_and_installed_manifest_does_not_let_an_older_version_in) {
  SyncSite s;
  write_file(s.src() + "/a.txt", "one");
  s.publish();
  write_file(s.src() + "/a.txt", "two");
  s.publish();
  s.start_hq();
  s.sync_ok();
  s.check_converged(2);
  // The center loses its journal and installed.manifest; HQ's address now replays version 1.
  for (auto& e : fs::directory_iterator(s.reg_state))
    if (e.path().filename().string().rfind("journal", 0) == 0) fs::remove(e.path());
  fs::remove(s.reg_state + "/manifests/" + s.channel + "/installed.manifest");
  fs::remove(s.reg_state + "/manifests/" + s.channel + "/target.manifest");
  fs::copy_file(s.manifest_file(1), s.public_dir() + "/channels/" + s.channel + "/latest.manifest",
                fs::copy_options::overwrite_existing);
  RunResult r = s.sync();
  BOOST_TEST(r.status == 8, r.err);  // rollback
  BOOST_TEST(r.err.find("has already verified version 2") != std::string::npos, r.err);
  BOOST_TEST(read_file(s.dst() + "/a.txt") == "two");  // nothing went back
}

// A version floor that is not a version number (garbage, or empty) is refused as corrupt with
// what to write into it, never read as 0 (which would let any older version in).
BOOST_AUTO_TEST_CASE(a_garbled_version_floor_is_refused_not_read_as_zero) {
  SyncSite s;
  write_file(s.src() + "/a.txt", "one");
  s.publish();
  s.start_hq();
  s.sync_ok();
  const std::string floor = s.reg_state + "/manifests/c/highest-version";
  BOOST_REQUIRE_EQUAL(read_file(floor), "1\n");
  for (const std::string bad : {"1x\n", "", "\n", "99999999999999999999999\n"}) {
    BOOST_TEST_CONTEXT("floor '" << bad << "'") {
      write_file(floor, bad);
      RunResult r = s.sync();
      BOOST_TEST(r.status == 5);
      BOOST_TEST(r.err.find("does not hold a version number") != std::string::npos, r.err);
    }
  }
}
