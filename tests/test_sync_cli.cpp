// distctl sync as an operator scripts it: --dry-run shows the plan, the bytes, the ETA at the cap
// and the free space, and changes nothing (tree, journal, manifests, staging); a disk too small
// is refused with 11; --bwlimit slows a transfer; --quiet says nothing on success; --progress
// writes plain progress lines naming the file onto a pipe.
#include <sys/mount.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <sstream>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/support/mounts.h"
#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

uint64_t installed_version(const SyncSite& s) {
  RunResult st = run({"distctl", "status", "--config", s.reg_cfg, "--json"});
  BOOST_TEST_INFO("status: " << st.err);
  auto j = nlohmann::json::parse(st.out);
  return j["channels"][0]["installed_version"].get<uint64_t>();
}

RunResult dry_run(SyncSite& s, const std::vector<std::string>& extra = {}) {
  s.enroll_center();
  std::vector<std::string> argv = {"distctl", "sync", "--config", s.reg_cfg, "--dry-run"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run(argv);
}

// Every regular file under dir (relative path -> digest), for "nothing changed" checks.
std::map<std::string, std::string> files_under(const std::string& dir) {
  std::map<std::string, std::string> out;
  if (!fs::exists(dir)) return out;
  for (auto& f : fs::recursive_directory_iterator(dir))
    if (f.is_regular_file()) out[fs::relative(f.path(), dir).string()] = file_digest_hex(f.path());
  return out;
}


}  // namespace

BOOST_AUTO_TEST_CASE(dry_run_shows_the_plan_and_changes_nothing) {
  SyncSite s;
  for (int i = 0; i < 5; ++i) write_file(s.src() + "/small/" + std::to_string(i), random_bytes(1000 + i, i));
  const std::string big = random_bytes(300000, 7);
  write_file(s.src() + "/big.bin", big);
  write_file(s.src() + "/gone.txt", "deleted in version 2");
  s.publish();
  s.start_hq();

  // Nothing installed yet, no journal: the plan is every file, and no journal appears.
  RunResult first = dry_run(s, {"--json"});
  BOOST_REQUIRE_MESSAGE(first.status == 0, first.err);
  auto p0 = nlohmann::json::parse(first.out)["channels"][0];
  BOOST_TEST(p0["from_version"].get<uint64_t>() == 0u);
  BOOST_TEST(p0["to_version"].get<uint64_t>() == 1u);
  BOOST_TEST(p0["full"].get<uint64_t>() == 7u);
  BOOST_TEST(p0["fetch_bytes"].get<uint64_t>() == 300000u + 5 * 1000 + 10 + 20);
  BOOST_TEST(!exists(s.reg_state + "/journal.sqlite"));
  BOOST_TEST(!exists(s.dst()));
  BOOST_TEST(!exists(s.reg_state + "/manifests"));

  (void)s.sync_ok();
  s.check_converged(1);

  // Version 2: an edit in the big file (a delta), a new file, a deletion.
  fs::remove(s.src() + "/big.bin");
  write_file(s.src() + "/big.bin", mutate(big, 150000, "an edit"));
  write_file(s.src() + "/new.bin", random_bytes(20000, 8));
  fs::remove(s.src() + "/gone.txt");
  BOOST_REQUIRE_EQUAL(s.publish(), 2u);

  const auto tree_before = s.dst_files();
  const auto state_before = files_under(s.reg_state + "/manifests");
  RunResult dj = dry_run(s, {"--json"});
  BOOST_REQUIRE_MESSAGE(dj.status == 0, dj.err);
  auto j = nlohmann::json::parse(dj.out);
  BOOST_TEST(j["dry_run"].get<bool>());
  auto p = j["channels"][0];
  BOOST_TEST(p["from_version"].get<uint64_t>() == 1u);
  BOOST_TEST(p["to_version"].get<uint64_t>() == 2u);
  BOOST_TEST(p["unchanged"].get<uint64_t>() == 5u);
  BOOST_TEST(p["delta"].get<uint64_t>() == 1u);
  BOOST_TEST(p["full"].get<uint64_t>() == 1u);
  BOOST_TEST(p["delete"].get<uint64_t>() == 1u);
  BOOST_TEST(p["full_bytes"].get<uint64_t>() == 20000u);
  BOOST_TEST(p["delta_bytes"].get<uint64_t>() == 300000u);  // a delta counted at the file's size: the most it costs
  BOOST_TEST(p["fetch_bytes"].get<uint64_t>() == 320000u);
  BOOST_TEST(p["signature_bytes"].get<uint64_t>() > 0u);
  BOOST_TEST(p["eta_seconds"].is_null());  // no cap in the config
  BOOST_TEST(p["space_ok"].get<bool>());
  BOOST_TEST(p["space_needed"].get<uint64_t>() >= 320000u);
  BOOST_TEST(p["staging_free"].get<uint64_t>() > 0u);

  // The text form, and an ETA at --bwlimit.
  RunResult dt = dry_run(s, {"--bwlimit", "100k"});
  BOOST_REQUIRE_MESSAGE(dt.status == 0, dt.err);
  BOOST_TEST(dt.out.find("c: version 1 -> 2") != std::string::npos, dt.out);
  BOOST_TEST(dt.out.find("5 unchanged, 0 copy, 1 delta, 1 full, 1 delete") != std::string::npos, dt.out);
  BOOST_TEST(dt.out.find("ETA 0:00:04 at 100.0 KiB/s (--bwlimit)") != std::string::npos, dt.out);  // 320000 / 102400
  BOOST_TEST(dt.out.find("enough") != std::string::npos, dt.out);
  RunResult nocap = dry_run(s);
  BOOST_TEST(nocap.out.find("no cap set ([regional] bandwidth_limit = 0)") != std::string::npos, nocap.out);
  auto je = nlohmann::json::parse(dry_run(s, {"--json", "--bwlimit", "100k"}).out)["channels"][0];
  BOOST_TEST(je["eta_seconds"].get<int64_t>() == 4);
  BOOST_TEST(je["bandwidth_limit"].get<uint64_t>() == 102400u);

  // Nothing changed: the tree, the installed version, the stored manifests, the staging area.
  BOOST_TEST((s.dst_files() == tree_before));
  BOOST_TEST(installed_version(s) == 1u);
  BOOST_TEST((files_under(s.reg_state + "/manifests") == state_before));
  BOOST_TEST(files_under(s.reg_state + "/staging").empty());

  // A real sync afterwards does the work, and then the dry run has nothing to do.
  auto r = s.sync_ok();
  s.check_converged(2);
  BOOST_TEST(r["deleted"].get<uint64_t>() == 1u);
  RunResult up = dry_run(s);
  BOOST_TEST(up.status == 0, up.err);
  BOOST_TEST(up.out.find("up to date at version 2") != std::string::npos, up.out);
}

BOOST_AUTO_TEST_CASE(dry_run_refuses_a_disk_too_small) {
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
  write_file(s.src() + "/big.bin", random_bytes(3'000'000, 99));  // more than the 2 MiB disk
  s.publish();
  s.start_hq();
  RunResult r = dry_run(s);
  BOOST_TEST(r.status == 11, r.err);  // no_space, as a real sync would end
  BOOST_TEST(r.err.find("not enough free space for channel 'c'") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("what to do") != std::string::npos, r.err);
  BOOST_TEST(r.out.find("NOT ENOUGH") != std::string::npos, r.out);
  RunResult rj = dry_run(s, {"--json"});
  BOOST_TEST(rj.status == 11);
  auto j = nlohmann::json::parse(rj.out);
  BOOST_TEST(!j["ok"].get<bool>());
  BOOST_TEST(!j["channels"][0]["space_ok"].get<bool>());
  BOOST_TEST(j["channels"][0]["staging_free"].get<uint64_t>() <= 2u << 20);
  BOOST_TEST(!exists(s.dst() + "/big.bin"));
}

BOOST_AUTO_TEST_CASE(bwlimit_quiet_and_progress) {
  SyncSite s;
  write_file(s.src() + "/slow-file-name.bin", random_bytes(200 * 1024, 3));
  s.publish();
  s.start_hq();
  s.enroll_center();

  RunResult bad = run({"distctl", "sync", "--config", s.reg_cfg, "--bwlimit", "fast"});
  BOOST_TEST(bad.status == 2, bad.err);
  BOOST_TEST(bad.err.find("--bwlimit 'fast' is not a rate") != std::string::npos, bad.err);
  RunResult both = run({"distctl", "sync", "--config", s.reg_cfg, "--quiet", "--progress"});
  BOOST_TEST(both.status == 2, both.err);

  // 200 KiB at 100 KiB/s: about 2 s (the first 64 KiB may come in a burst before the pacing).
  auto t0 = std::chrono::steady_clock::now();
  RunResult slow = run({"distctl", "sync", "--config", s.reg_cfg, "--bwlimit", "100k", "--progress"});
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  BOOST_REQUIRE_MESSAGE(slow.status == 0, slow.err);
  BOOST_TEST_MESSAGE("200 KiB at --bwlimit 100k took " << secs << " s");
  BOOST_TEST(secs >= 1.5);
  s.check_converged(1);
  // --progress on a pipe: plain lines (no escape codes) that name the file.
  BOOST_TEST(slow.err.find("syncing ") != std::string::npos, slow.err);
  BOOST_TEST(slow.err.find("slow-file-name.bin") != std::string::npos, slow.err);
  BOOST_TEST(slow.err.find('\033') == std::string::npos, slow.err);
  BOOST_TEST(slow.out.find("c: installed version 1") != std::string::npos, slow.out);

  // --quiet: nothing at all on success (up to date here), and nothing after a real install.
  RunResult q = run({"distctl", "sync", "--config", s.reg_cfg, "--quiet"});
  BOOST_TEST(q.status == 0, q.err);
  BOOST_TEST(q.out.empty(), q.out);
  BOOST_TEST(q.err.empty(), q.err);
  const std::string long_name = "a/very/long/directory/name/that/goes/on/and/on/and/on/until/it/is/too/wide/last-part.bin";
  write_file(s.src() + "/" + long_name, random_bytes(100 * 1024, 4));
  s.publish();
  RunResult q2 = run({"distctl", "sync", "--config", s.reg_cfg, "--quiet", "--bwlimit", "0"});
  BOOST_TEST(q2.status == 0, q2.err);
  BOOST_TEST(q2.out.empty(), q2.out);
  BOOST_TEST(q2.err.empty(), q2.err);
  s.check_converged(2);

  // A long path gives way at its beginning to fit $COLUMNS (stderr is not a terminal here).
  write_file(s.src() + "/" + long_name, random_bytes(150 * 1024, 5));
  s.publish();
  RunResult narrow =
      run({"distctl", "sync", "--config", s.reg_cfg, "--progress", "--bwlimit", "200k"}, {}, {"COLUMNS=100"});
  BOOST_TEST(narrow.status == 0, narrow.err);
  BOOST_TEST(narrow.err.find("...") != std::string::npos, narrow.err);
  BOOST_TEST(narrow.err.find("last-part.bin") != std::string::npos, narrow.err);
  std::istringstream lines(narrow.err);  // log lines name the whole path; progress lines fit the width
  for (std::string l; std::getline(lines, l);)
    if (l.rfind("syncing ", 0) == 0) {
      BOOST_TEST(l.find(long_name) == std::string::npos, l);
      BOOST_TEST(l.size() <= 99u, l);
    }
}
