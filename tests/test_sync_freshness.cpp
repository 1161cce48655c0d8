// A frozen or stuck HQ does not go unnoticed (distd/regional/freshness.h): a sync that verifies
// HQ's newest manifest warns — log, `sync --json` "warnings", `distctl status` — when it expires
// within expiry_warning_days, when it lives on expiry_slack_days, and when it was signed more than
// stale_after_days ago; a fresh manifest clears the warnings. The clock is moved with faketime.
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include <regex>

#include "tests/support/bundle_site.h"
#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;

namespace {

// HQ signs for `days` days.
void set_expires_days(SyncSite& s, int days) {
  std::string cfg = std::regex_replace(read_file(s.hq_cfg), std::regex("expires_days = [0-9]+\n"), "");
  size_t at = cfg.find("[hq]\n");
  BOOST_REQUIRE(at != std::string::npos);
  write_file(s.hq_cfg, cfg.substr(0, at + 5) + "expires_days = " + std::to_string(days) + "\n" + cfg.substr(at + 5));
}

// distctl sync --json with the clock moved by `offset` ("+12h"; empty: the real clock). The
// offsets are whole days plus 12 hours, so that whole-day counts do not depend on the seconds
// the test took.
nlohmann::json sync_at(SyncSite& s, const std::string& offset) {
  std::vector<std::string> argv = {bin("distctl"), "sync", "--config", s.reg_cfg, "--json"};
  if (!offset.empty()) argv.insert(argv.begin(), {"faketime", "-f", offset});
  RunResult r = run(argv, {}, {}, 120);
  BOOST_TEST_INFO("sync stderr: " << r.err);
  BOOST_REQUIRE_EQUAL(r.status, 0);
  return nlohmann::json::parse(r.out)["channels"][0];
}

std::string joined(const nlohmann::json& warnings) {
  std::string all;
  for (const auto& w : warnings) all += w.get<std::string>() + "\n";
  return all;
}

bool has(const nlohmann::json& warnings, const std::string& text) { return joined(warnings).find(text) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_CASE(old_or_expiring_manifests_warn_and_a_fresh_one_clears_the_warnings) {
  if (!exists("/usr/bin/faketime")) {
    BOOST_TEST_MESSAGE("skipped: faketime is not installed (scripts/setup.sh installs it)");
    return;
  }
  SyncSite s;
  set_expires_days(s, 10);
  write_file(s.src() + "/a.txt", "a");
  s.publish();
  s.start_hq();

  // Half a day on: it expires in 9 days and 12 hours, under expiry_warning_days = 14.
  nlohmann::json now = sync_at(s, "+12h");
  BOOST_TEST(now["warnings"].size() == 1u, joined(now["warnings"]));
  BOOST_TEST(has(now["warnings"], "expires in 9 days"), joined(now["warnings"]));
  BOOST_TEST(has(now["warnings"], "less than expiry_warning_days = 14"));
  RunResult st = run({"distctl", "status", "--config", s.reg_cfg});  // reads the journal: no clock
  BOOST_TEST(st.out.find("WARNING") != std::string::npos, st.out);
  BOOST_TEST(st.out.find("expires in 9 days") != std::string::npos, st.out);

  // Eight and a half days on: signed more than stale_after_days = 7 ago, and one day left.
  nlohmann::json later = sync_at(s, "+204h");
  BOOST_TEST(later["up_to_date"].get<bool>());
  BOOST_TEST(has(later["warnings"], "was signed 8 days ago"), joined(later["warnings"]));
  BOOST_TEST(has(later["warnings"], "HQ may be stuck or frozen"));
  BOOST_TEST(has(later["warnings"], "expires in 1 day "), joined(later["warnings"]));

  // Twelve and a half days on: expired two days ago, still accepted within expiry_slack_days = 30.
  nlohmann::json expired = sync_at(s, "+300h");
  BOOST_TEST(expired["up_to_date"].get<bool>());  // accepted: the slack is for a link that was down
  BOOST_TEST(has(expired["warnings"], "expired 2 days ago"), joined(expired["warnings"]));
  BOOST_TEST(has(expired["warnings"], "accepted for 27 days more"), joined(expired["warnings"]));
  nlohmann::json js = nlohmann::json::parse(run({"distctl", "status", "--config", s.reg_cfg, "--json"}).out);
  BOOST_TEST(has(js["channels"][0]["warnings"], "expired 2 days ago"), js.dump());

  // HQ signs again, for 90 days: the next sync has nothing to say, and status forgets the warnings.
  set_expires_days(s, 90);
  RunResult p = run({"distctl", "publish", "--channel", s.channel, "--config", s.hq_cfg, "--force"});
  BOOST_REQUIRE_EQUAL(p.status, 0);
  nlohmann::json fresh = sync_at(s, "");
  BOOST_TEST(fresh["warnings"].empty(), joined(fresh["warnings"]));
  js = nlohmann::json::parse(run({"distctl", "status", "--config", s.reg_cfg, "--json"}).out);
  BOOST_TEST(js["channels"][0]["warnings"].empty(), js.dump());
}

BOOST_AUTO_TEST_CASE(zero_turns_each_warning_off) {
  if (!exists("/usr/bin/faketime")) return;
  SyncSite s("stale_after_days = 0\nexpiry_warning_days = 0");
  set_expires_days(s, 10);
  write_file(s.src() + "/a.txt", "a");
  s.publish();
  s.start_hq();
  BOOST_TEST(sync_at(s, "+204h")["warnings"].empty());
}

// A stick's manifest is old by nature, so an import warns only of expiry (not of staleness).
BOOST_AUTO_TEST_CASE(a_bundle_import_warns_of_an_expiring_manifest_only) {
  BundleSite s;
  set_expires_days(s, 10);
  write_file(s.src() + "/a.txt", "a");
  s.publish();
  s.round();
  RunResult r = s.import_();
  BOOST_TEST_INFO(r.err);
  BOOST_REQUIRE_EQUAL(r.status, 0);
  nlohmann::json w = nlohmann::json::parse(r.out)["channels"][0]["warnings"];
  BOOST_TEST(w.size() == 1u, joined(w));
  BOOST_TEST(has(w, "less than expiry_warning_days = 14"), joined(w));  // 9 or 10 days, by the second
  RunResult st = run({"distctl", "status", "--config", s.reg_cfg});
  BOOST_TEST(st.out.find("WARNING") != std::string::npos, st.out);
}
