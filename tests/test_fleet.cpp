// The fleet (docs/hq.md "The fleet: which centers hold what"): a center POSTs a signed status
// report to HQ after every sync (distctl sync and the daemon's passes); HQ stores the latest and
// a short history per site, distctl fleet flags the centers that are behind or never seen, and
// GET /metrics exposes it all to Prometheus. Reports that are unsigned, signed by an unenrolled
// site or about another site are refused and nothing is stored; a refused report never fails
// the sync.
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "manifest/request_auth.h"
#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

struct Answer {
  std::string status, body;
};
// curl of target (POST of body when post), with extra headers.
Answer curl(SyncSite& s, const std::string& target, bool post, const std::string& body = {},
            const std::vector<std::string>& headers = {}) {
  std::vector<std::string> argv = {"curl", "-s", "-o", s.tmp / "out", "-w", "%{http_code}"};
  for (const auto& h : headers) argv.insert(argv.end(), {"-H", h});
  if (post) {
    write_file(s.tmp / "body", body);
    argv.insert(argv.end(), {"--data-binary", "@" + (s.tmp / "body")});
  }
  argv.push_back(s.hq_url() + target);
  RunResult r = run(argv);
  return {r.out, distd::test::read_file(s.tmp / "out")};
}

std::string report_of(const std::string& site, uint64_t installed) {
  nlohmann::json r = {{"format", "distd-report 1"},
                      {"site", site},
                      {"time", static_cast<int64_t>(::time(nullptr))},
                      {"distd_version", "0.1.0"},
                      {"channels",
                       {{{"channel", "c"},
                         {"installed_version", installed},
                         {"latest_known_version", installed},
                         {"pending_files", 0},
                         {"pending_bytes", 0},
                         {"last_success", nullptr},
                         {"last_error", nullptr},
                         {"warnings", nlohmann::json::array()}}}},
                      {"free_bytes", 1000}};
  return r.dump();
}

struct Fleet {
  int status;
  nlohmann::json sites;
};
Fleet fleet(SyncSite& s) {
  RunResult r = run({"distctl", "fleet", "--config", s.hq_cfg, "--json"});
  BOOST_TEST_INFO("fleet stderr: " << r.err);
  BOOST_REQUIRE(r.status == 0 || r.status == 1);
  return {r.status, nlohmann::json::parse(r.out)};
}

std::string fleet_file(SyncSite& s, const std::string& site) { return s.hq_state + "/fleet/" + site + ".json"; }

}  // namespace

BOOST_AUTO_TEST_CASE(a_center_reports_after_each_sync_and_fleet_flags_it_behind_until_it_syncs) {
  SyncSite s;
  write_file(s.src() + "/a.txt", "one\n");
  BOOST_REQUIRE_EQUAL(s.publish(), 1u);
  s.start_hq();
  s.sync_ok();
  BOOST_REQUIRE(fs::exists(fleet_file(s, "center-1")));
  auto stored = nlohmann::json::parse(distd::test::read_file(fleet_file(s, "center-1")));
  BOOST_TEST(stored["how"] == "link");
  BOOST_TEST(stored["received"].get<int64_t>() > 0);
  BOOST_TEST(stored["channels"][0]["installed_version"] == 1);
  BOOST_TEST(stored["free_bytes"].get<uint64_t>() > 0);

  Fleet f = fleet(s);
  BOOST_TEST(f.status == 0);
  BOOST_REQUIRE_EQUAL(f.sites.size(), 1u);
  BOOST_TEST(f.sites[0]["site"] == "center-1");
  BOOST_TEST(f.sites[0]["how"] == "link");
  BOOST_TEST(f.sites[0]["flags"].empty());
  BOOST_TEST(f.sites[0]["channels"][0]["hq_latest_version"] == 1);

  write_file(s.src() + "/a.txt", "two\n");
  BOOST_REQUIRE_EQUAL(s.publish(), 2u);
  f = fleet(s);
  BOOST_TEST(f.status == 1);
  BOOST_TEST(f.sites[0]["flags"] == nlohmann::json::array({"behind"}));
  RunResult text = run({"distctl", "fleet", "--config", s.hq_cfg});
  BOOST_TEST(text.status == 1);
  BOOST_TEST(text.out.find("behind") != std::string::npos);
  BOOST_TEST_MESSAGE("distctl fleet, behind:\n" << text.out);

  s.sync_ok();
  f = fleet(s);
  BOOST_TEST(f.status == 0);
  BOOST_TEST(f.sites[0]["channels"][0]["installed_version"] == 2);
  // The history keeps both reports.
  std::string hist = distd::test::read_file(s.hq_state + "/fleet/center-1.history.jsonl");
  BOOST_TEST(std::count(hist.begin(), hist.end(), '\n') == 2);

  Answer m = curl(s, "/metrics", false);
  BOOST_TEST(m.status == "200");
  BOOST_TEST(m.body.find("distd_build_info{version=\"0.1.0\"} 1\n") != std::string::npos);
  BOOST_TEST(m.body.find("distd_site_installed_version{site=\"center-1\",channel=\"c\"} 2\n") != std::string::npos);
  BOOST_TEST(m.body.find("distd_channel_latest_version{channel=\"c\"} 2\n") != std::string::npos);
  BOOST_TEST(m.body.find("distd_site_up{site=\"center-1\"} 1\n") != std::string::npos);
  BOOST_TEST(m.body.find("distd_site_pending_bytes{site=\"center-1\",channel=\"c\"} 0\n") != std::string::npos);
  BOOST_TEST(m.body.find("distd_site_last_seen_seconds{site=\"center-1\"} ") != std::string::npos);
  BOOST_TEST(m.body.find("distd_site_free_bytes{site=\"center-1\"} ") != std::string::npos);
  BOOST_TEST(m.body.find("distd_site_pending_files{site=\"center-1\",channel=\"c\"} 0\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_daemon_reports_after_its_sync_pass) {
  SyncSite s;
  write_file(s.src() + "/a.txt", "one\n");
  s.publish();
  s.start_hq();
  s.enroll_center();
  Process daemon({"distd", "--config", s.reg_cfg}, s.tmp / "regional.log");
  for (int i = 0; i < 300 && !fs::exists(fleet_file(s, "center-1")); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  BOOST_TEST_INFO("daemon log: " << daemon.log());
  BOOST_REQUIRE(fs::exists(fleet_file(s, "center-1")));
}

BOOST_AUTO_TEST_CASE(reports_unsigned_unenrolled_or_about_another_site_are_refused_and_not_stored) {
  SyncSite s;
  write_file(s.src() + "/a.txt", "one\n");
  s.publish();
  s.start_hq();
  s.enroll_center();
  const std::string body = report_of("center-1", 1);

  Answer a = curl(s, "/report", true, body);
  BOOST_TEST(a.status == "401");
  KeyPair other = generate_keypair();
  const auto now = static_cast<int64_t>(::time(nullptr));
  const std::string b9 = report_of("center-9", 1);
  a = curl(s, "/report", true, b9, {"Authorization: " + sign_request("center-9", other.sec, now, "POST", "/report", b9)});
  BOOST_TEST(a.status == "403");
  BOOST_TEST_INFO(a.body);
  BOOST_TEST(a.body.find("not enrolled") != std::string::npos);
  const std::string b2 = report_of("center-2", 1);  // signed by center-1, about center-2
  a = curl(s, "/report", true, b2, {s.auth_header("POST", "/report", b2)});
  BOOST_TEST(a.status == "403");
  a = curl(s, "/report", true, report_of("center-1", 7), {s.auth_header("POST", "/report", body)});  // body changed
  BOOST_TEST(a.status == "401");
  a = curl(s, "/report", true, "not json", {s.auth_header("POST", "/report", "not json")});
  BOOST_TEST(a.status == "400");
  BOOST_TEST(!fs::exists(s.hq_state + "/fleet/center-1.json"));
  BOOST_TEST(!fs::exists(s.hq_state + "/fleet/center-2.json"));
  BOOST_TEST(!fs::exists(s.hq_state + "/fleet/center-9.json"));

  const std::string big = std::string(70 * 1024, ' ') + body;  // over 64 KiB
  a = curl(s, "/report", true, big, {s.auth_header("POST", "/report", big)});
  BOOST_TEST(a.status == "413");
  BOOST_TEST(!fs::exists(fleet_file(s, "center-1")));

  a = curl(s, "/report", true, body, {s.auth_header("POST", "/report", body)});
  BOOST_TEST(a.status == "200");
  BOOST_TEST(fs::exists(fleet_file(s, "center-1")));
  // The history keeps the last 50 reports.
  for (uint64_t v = 2; v <= 55; ++v) {
    const std::string b = report_of("center-1", v);
    BOOST_REQUIRE_EQUAL(curl(s, "/report", true, b, {s.auth_header("POST", "/report", b)}).status, "200");
  }
  std::string hist = distd::test::read_file(s.hq_state + "/fleet/center-1.history.jsonl");
  BOOST_TEST(std::count(hist.begin(), hist.end(), '\n') == 50);
  BOOST_TEST(nlohmann::json::parse(hist.substr(0, hist.find('\n')))["channels"][0]["installed_version"] == 6);
  BOOST_TEST(nlohmann::json::parse(distd::test::read_file(fleet_file(s, "center-1")))["channels"][0]
                 ["installed_version"] == 55);
}

BOOST_AUTO_TEST_CASE(reports_must_be_signed_even_when_hq_does_not_require_signed_requests) {
  SyncSite s;
  std::string cfg = distd::test::read_file(s.hq_cfg);
  cfg.replace(cfg.find("[hq]\n"), 5, "[hq]\nrequire_signed_requests = false\n");
  write_file(s.hq_cfg, cfg);
  write_file(s.src() + "/a.txt", "one\n");
  s.publish();
  s.start_hq();
  s.enroll_center();
  const std::string body = report_of("center-1", 1);
  BOOST_TEST(curl(s, "/report", true, body).status == "401");
  BOOST_TEST(!fs::exists(fleet_file(s, "center-1")));
  BOOST_TEST(curl(s, "/report", true, body, {s.auth_header("POST", "/report", body)}).status == "200");
  BOOST_TEST(fs::exists(fleet_file(s, "center-1")));
}

BOOST_AUTO_TEST_CASE(a_center_whose_report_hq_refuses_still_syncs_and_fleet_says_never_seen) {
  SyncSite s;
  write_file(s.src() + "/a.txt", "one\n");
  s.publish();
  s.start_hq();
  s.auto_enroll = false;  // HQ enrolls a key that is not the center's
  fs::create_directories(s.hq_state + "/sites");
  write_keypair(generate_keypair(), s.tmp / "wrong.key", s.hq_state + "/sites/center-1.pub");
  RunResult r = s.sync();
  BOOST_TEST_INFO("sync stderr: " << r.err);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.err.find("status report not taken by HQ (HTTP 401") != std::string::npos);
  BOOST_TEST(!fs::exists(fleet_file(s, "center-1")));
  Fleet f = fleet(s);
  BOOST_TEST(f.status == 1);
  BOOST_REQUIRE_EQUAL(f.sites.size(), 1u);
  BOOST_TEST(f.sites[0]["flags"] == nlohmann::json::array({"never-seen"}));
}

BOOST_AUTO_TEST_CASE(metrics_render_time_for_30_and_1000_sites) {
  SyncSite s;
  write_file(s.src() + "/a.txt", "one\n");
  s.publish();
  s.start_hq();
  for (int n : {30, 1000}) {
    for (int i = 0; i < n; ++i) {
      auto r = nlohmann::json::parse(report_of("site-" + std::to_string(i), 1));
      r["how"] = "link";
      r["received"] = static_cast<int64_t>(::time(nullptr));
      write_file(s.hq_state + "/fleet/site-" + std::to_string(i) + ".json", r.dump() + "\n");
    }
    auto t0 = std::chrono::steady_clock::now();
    Answer m = curl(s, "/metrics", false);
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    BOOST_TEST(m.status == "200");
    BOOST_TEST(m.body.find("distd_site_installed_version{site=\"site-" + std::to_string(n - 1) +
                           "\",channel=\"c\"} 1\n") != std::string::npos);
    BOOST_TEST_MESSAGE("GET /metrics for " << n << " sites: " << ms << " ms (curl included), " << m.body.size()
                                           << " bytes");
  }
}
