// distctl status (docs/cli.md): its exit status tells a script whether the center is converged
// (0), converged with a warning (1) or not converged (75); it lists every unfinished file, a later
// success clears an earlier error, and it reads the journal read-only (a user who may only read
// the state directory can run it).
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

RunResult status(const SyncSite& s, const std::vector<std::string>& as_user = {}) {
  std::vector<std::string> argv = as_user;
  argv.insert(argv.end(), {bin("distctl"), "status", "--config", s.reg_cfg, "--json"});
  return run(argv);
}

nlohmann::json channel(const RunResult& r) {
  BOOST_TEST_INFO("status stdout: " << r.out << "\nstderr: " << r.err);
  BOOST_REQUIRE(!r.out.empty());
  return nlohmann::json::parse(r.out)["channels"][0];
}

void set_expires_days(SyncSite& s, int days) {
  std::string cfg = std::regex_replace(read_file(s.hq_cfg), std::regex("expires_days = [0-9]+\n"), "");
  const size_t at = cfg.find("[hq]\n");
  write_file(s.hq_cfg, cfg.substr(0, at + 5) + "expires_days = " + std::to_string(days) + "\n" + cfg.substr(at + 5));
}

}  // namespace

BOOST_AUTO_TEST_CASE(exit_status_follows_convergence_warnings_and_errors) {
  SyncSite s;
  write_file(s.src() + "/a.txt", "a");
  set_expires_days(s, 10);  // under expiry_warning_days = 14: every sync warns
  s.publish();
  s.start_hq();

  BOOST_TEST(status(s).status == 75);  // never synced: nothing installed

  (void)s.sync_ok();
  RunResult r = status(s);
  BOOST_TEST(r.status == 1);  // converged, but the manifest expires soon
  BOOST_TEST(channel(r)["warnings"].size() == 1u);

  set_expires_days(s, 90);
  BOOST_REQUIRE_EQUAL(run({"distctl", "publish", "--channel", s.channel, "--config", s.hq_cfg, "--force"}).status, 0);
  (void)s.sync_ok();
  BOOST_TEST(status(s).status == 0);

  // The link dies: the sync fails, status says so (75) and shows the error.
  const std::string url = s.hq_url();
  s.set_hq_url("http://127.0.0.1:" + std::to_string(free_port()));
  BOOST_TEST(s.sync().status == 12);
  r = status(s);
  BOOST_TEST(r.status == 75);
  BOOST_TEST(!channel(r)["last_error"].is_null());
  // It comes back: the next success clears the error.
  s.set_hq_url(url);
  (void)s.sync_ok();
  r = status(s);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(channel(r)["last_error"].is_null());
}

BOOST_AUTO_TEST_CASE(every_unfinished_file_is_listed) {
  // A window that is never open now: the 25 big files wait.
  SyncSite s("big_files_window = \"00:00-00:01\"\nbig_file_threshold = 1000");
  for (int i = 0; i < 25; ++i) write_file(s.src() + "/big" + std::to_string(i), std::string(2000 + i, 'x'));
  s.publish();
  s.start_hq();
  BOOST_TEST(s.sync().status == 75);
  RunResult r = status(s);
  BOOST_TEST(r.status == 75);
  BOOST_TEST(channel(r)["unfinished"].size() == 25u);
  BOOST_TEST(channel(r)["pending_files"] == 25);
  RunResult text = run({"distctl", "status", "--config", s.reg_cfg});
  const std::regex row(R"( big[0-9]+ \()");
  const auto lines = std::distance(std::sregex_iterator(text.out.begin(), text.out.end(), row), std::sregex_iterator());
  BOOST_TEST(lines == 25, text.out);
}

BOOST_AUTO_TEST_CASE(status_reads_the_journal_read_only) {
  if (::geteuid() != 0) return;  // needs another user to run as
  SyncSite s;
  write_file(s.src() + "/a.txt", "a");
  s.publish();
  s.start_hq();
  (void)s.sync_ok();
  // nobody may read the config and the state directory, and write nothing.
  for (const auto& e : fs::recursive_directory_iterator(s.tmp.path()))
    fs::permissions(e.path(), fs::perms::others_read | (e.is_directory() ? fs::perms::others_exec : fs::perms::none),
                    fs::perm_options::add);
  fs::permissions(s.tmp.path(), fs::perms::others_read | fs::perms::others_exec, fs::perm_options::add);
  const auto journal_time = fs::last_write_time(s.reg_state + "/journal.sqlite");
  RunResult r = status(s, {"runuser", "-u", "nobody", "--"});
  BOOST_TEST(r.status == 0, r.err);
  BOOST_TEST(channel(r)["installed_version"] == 1);
  BOOST_TEST((fs::last_write_time(s.reg_state + "/journal.sqlite") == journal_time));
}

// A sync that finds another one (the daemon, an import) holding the lock exits 16 (busy), which
// the nightly unit counts as success: the other run does the work.
BOOST_AUTO_TEST_CASE(a_sync_that_finds_another_running_exits_busy) {
  SyncSite s;
  write_file(s.src() + "/a.txt", "a");
  s.publish();
  s.start_hq();
  (void)s.sync_ok();
  int fd = ::open((s.reg_state + "/regional.lock").c_str(), O_RDWR);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE_EQUAL(::flock(fd, LOCK_EX), 0);
  RunResult r = s.sync();
  ::close(fd);
  BOOST_TEST(r.status == 16);
  BOOST_TEST(r.err.find("another sync is running") != std::string::npos, r.err);
  const std::string unit = read_file(source_path("systemd/distd-sync.service"));
  BOOST_TEST(unit.find("\nSuccessExitStatus=75 16\n") != std::string::npos);
}
