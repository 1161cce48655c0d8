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

#include "distd/config/config.h"
#include "distd/plugins.h"
#include "distd/regional/status_report.h"
#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/manifest.h"
#include "manifest/path.h"
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

// ---------------------------------------------------------------------------------------------
// What a report carries beyond the channels' versions, and the flags HQ draws from it.

namespace {

// Adds a [replica] section (at host:port, nobody listening) to the center's config.
void add_replica(SyncSite& s, const std::string& host, int port) {
  write_file(s.reg_cfg, distd::test::read_file(s.reg_cfg) + "\n[replica]\nhost = \"" + host + "\"\nport = " +
                            std::to_string(port) + "\nuser = \"distd\"\n");
}

nlohmann::json stored(SyncSite& s, const std::string& site = "center-1") {
  return nlohmann::json::parse(distd::test::read_file(fleet_file(s, site)));
}

nlohmann::json site_of(const Fleet& f, const std::string& site) {
  for (const auto& v : f.sites)
    if (v["site"] == site) return v;
  BOOST_FAIL("fleet has no site " + site);
  return {};
}

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A stored report of site with one channel c, received now, the channel's fields changed by ch
// and the report's by top.
void store_crafted(SyncSite& s, const std::string& site, const nlohmann::json& ch, const nlohmann::json& top = {}) {
  auto r = nlohmann::json::parse(report_of(site, 1));
  r["how"] = "link";
  r["received"] = static_cast<int64_t>(::time(nullptr));
  for (auto& [k, v] : ch.items()) r["channels"][0][k] = v;
  if (top.is_object())
    for (auto& [k, v] : top.items()) r[k] = v;
  fs::create_directories(s.hq_state + "/fleet");
  write_file(fleet_file(s, site), r.dump() + "\n");
}

std::string utc_in(int64_t seconds) { return format_utc(static_cast<int64_t>(::time(nullptr)) + seconds); }

}  // namespace

BOOST_AUTO_TEST_CASE(a_report_carries_the_manifest_expiry_a_replica_that_is_down_and_the_outbox_depth) {
  SyncSite s;
  write_file(s.src() + "/a.txt", "one\n");
  s.publish();
  s.start_hq();
  add_replica(s, "127.0.0.1", free_port());  // a replica configured, its server down
  for (int n = 1; n <= 2; ++n) {             // two forum posts wait at the center
    RunResult p = run({"distctl", "post", "submit", "--config", s.reg_cfg, "--user", "5", "--reply", "1",
                       "--discussion", "1", "--subject", "Re: " + std::to_string(n), "--message", "<p>hi</p>"});
    BOOST_TEST_INFO("post submit stderr: " << p.err);
    BOOST_REQUIRE_EQUAL(p.status, 0);
  }
  auto t0 = std::chrono::steady_clock::now();
  s.sync_ok();
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  BOOST_TEST_MESSAGE("sync with the replica down, report included: " << secs << " s");
  BOOST_TEST(secs < 20);

  auto r = stored(s);
  const int64_t expires = s.manifest(1).manifest.expires;
  BOOST_TEST(r["channels"][0]["manifest_expires"] == format_utc(expires));
  BOOST_TEST(r["channels"][0]["last_error_code"].is_null());
  BOOST_TEST(r["channels"][0]["plan_started"].is_null());  // nothing pending
  BOOST_TEST(r["expiry_warning_days"] == 14);
  BOOST_TEST(r["replica"]["configured"] == true);
  BOOST_TEST(r["replica"]["ok"] == false);
  BOOST_TEST(r["replica"]["error"].get<std::string>().size() > 0);
  BOOST_TEST(r["outbox"]["posts"] == 2);

  Fleet f = fleet(s);
  BOOST_TEST(f.status == 1);
  BOOST_TEST(f.sites[0]["flags"] == nlohmann::json::array({"replica"}));
  BOOST_TEST(f.sites[0]["replica"]["ok"] == false);
  BOOST_TEST(f.sites[0]["outbox_posts"] == 2);
  BOOST_TEST(f.sites[0]["channels"][0]["manifest_expires_unix"] == expires);
  BOOST_TEST(f.sites[0]["channels"][0]["last_success"].is_string());
  RunResult text = run({"distctl", "fleet", "--config", s.hq_cfg});
  BOOST_TEST_MESSAGE("distctl fleet, replica down:\n" << text.out);
  BOOST_TEST(text.out.find("replica: NOT OK: ") != std::string::npos);
  BOOST_TEST(text.out.find("outbox: 2 posts wait for HQ") != std::string::npos);
  BOOST_TEST(text.out.find("expires " + format_utc(expires)) != std::string::npos);

  Answer m = curl(s, "/metrics", false);
  BOOST_TEST(m.body.find("distd_site_replica_ok{site=\"center-1\"} 0\n") != std::string::npos);
  BOOST_TEST(m.body.find("distd_site_outbox_posts{site=\"center-1\"} 2\n") != std::string::npos);
  BOOST_TEST(m.body.find("distd_site_manifest_expires_timestamp_seconds{site=\"center-1\",channel=\"c\"} " +
                         std::to_string(expires) + "\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_center_without_a_replica_says_so_and_a_dead_replica_costs_seconds) {
  SyncSite s;
  register_plugins();
  auto r = nlohmann::json::parse(status_report_body(load_config(s.reg_cfg), static_cast<int64_t>(::time(nullptr))));
  BOOST_TEST(r["replica"] == nlohmann::json({{"configured", false}}));
  BOOST_TEST(r["outbox"]["posts"] == 0);
  // A closed port answers at once; an address nobody answers is cut by the 3 s connect timeout.
  for (const auto& [host, port] : std::vector<std::pair<std::string, int>>{{"127.0.0.1", free_port()},
                                                                           {"10.255.255.1", 3306}}) {
    SyncSite t;
    add_replica(t, host, port);
    auto t0 = std::chrono::steady_clock::now();
    r = nlohmann::json::parse(status_report_body(load_config(t.reg_cfg), static_cast<int64_t>(::time(nullptr))));
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    BOOST_TEST_MESSAGE("report with the replica at " << host << ":" << port << " down: " << secs << " s; "
                                                     << r["replica"].dump());
    BOOST_TEST(secs < 10);
    BOOST_TEST(r["replica"]["configured"] == true);
    BOOST_TEST(r["replica"]["ok"] == false);
    BOOST_TEST(r["replica"]["reachable"] == false);
  }
}

BOOST_AUTO_TEST_CASE(a_center_refusing_what_hq_signs_is_flagged_refusing) {
  SyncSite s;
  write_file(s.src() + "/a.txt", "one\n");
  s.publish();
  s.start_hq();
  const std::string pin = s.pin_own_key_copy();
  write_keypair(generate_keypair(), s.tmp / "other.key", pin);  // the center trusts another key
  RunResult r = s.sync();
  BOOST_TEST_INFO("sync stderr: " << r.err);
  BOOST_TEST(r.status != 0);
  BOOST_REQUIRE(fs::exists(fleet_file(s, "center-1")));
  BOOST_TEST(stored(s)["channels"][0]["last_error_code"] == "bad_signature");
  Fleet f = fleet(s);
  BOOST_TEST(f.sites[0]["channels"][0]["last_error_code"] == "bad_signature");
  for (const char* flag : {"refusing", "error"})
    BOOST_TEST((std::find(f.sites[0]["flags"].begin(), f.sites[0]["flags"].end(), flag) != f.sites[0]["flags"].end()),
               flag);
}

BOOST_AUTO_TEST_CASE(refusals_are_told_from_other_errors_by_their_messages) {
  KeyPair k = generate_keypair(), other = generate_keypair();
  Manifest m;
  m.channel = "c";
  m.version = 3;
  m.created = static_cast<int64_t>(::time(nullptr)) - 10 * 86400;
  m.expires = m.created + 86400;
  const std::string signed_m = sign_manifest(m, k.sec);
  VerifyOptions vo;
  BOOST_TEST(refusal_code(error_of([&] { verify_manifest(signed_m, other.pub, vo, "3.manifest"); })) ==
             "bad_signature");
  std::string altered = signed_m;
  altered.replace(altered.find("version 3"), 9, "version 4");
  BOOST_TEST(refusal_code(error_of([&] { verify_manifest(altered, k.pub, vo, "3.manifest"); })) == "bad_signature");
  BOOST_TEST(refusal_code(error_of([&] { verify_manifest(signed_m, k.pub, vo, "3.manifest"); })) == "expired");
  BOOST_TEST(refusal_code(error_of([&] { parse_manifest("distd-manifest 1\nchannel c\n", "3.manifest"); })) ==
             "corrupt");
  BOOST_TEST(refusal_code(error_of([&] { parse_manifest("", "3.manifest"); })) == "corrupt");
  BOOST_TEST(refusal_code(error_of([&] { check_safe_path("a/../../etc/passwd", "manifest 3.manifest line 9"); })) ==
             "unsafe_path");
  // regional/channel_install.cpp's wording (a replayed manifest needs a journal to refuse it).
  BOOST_TEST(refusal_code("HQ offered version 2 of channel 'c', but version 3 is already installed; refusing to go "
                          "back") == "rollback");
  BOOST_TEST(refusal_code("could not connect to http://hq:8750: Connection refused") == "");
  BOOST_TEST(refusal_code("2 files of channel 'c' could not be installed; first: a.txt: digest mismatch") == "");
  BOOST_TEST(refusal_code("disk full writing '/srv/x'") == "");
}

BOOST_AUTO_TEST_CASE(fleet_flags_stuck_expiring_refusing_and_replica_from_stored_reports) {
  SyncSite s;
  write_file(s.src() + "/a.txt", "one\n");
  s.publish();  // version 1: the crafted sites are not behind
  const int64_t day = 86400;
  // stuck: files pending, the plan began 3 days ago, no success since (stale after 48 h).
  store_crafted(s, "stuck", {{"pending_files", 5}, {"plan_started", utc_in(-3 * day)}, {"last_success", utc_in(-4 * day)}});
  store_crafted(s, "busy", {{"pending_files", 5}, {"plan_started", utc_in(-3600)}, {"last_success", utc_in(-4 * day)}});
  store_crafted(s, "refusing",
                {{"last_error", "HQ offered version 1 of channel 'c', but version 2 is already installed; refusing to go back"},
                 {"last_error_code", "rollback"}});
  store_crafted(s, "failing", {{"last_error", "could not connect"}, {"last_error_code", nullptr}});
  // expiring: within 3 days, or within the center's own expiry_warning_days.
  store_crafted(s, "expiring-soon", {{"manifest_expires", utc_in(2 * day)}}, {{"expiry_warning_days", 0}});
  store_crafted(s, "expiring-window", {{"manifest_expires", utc_in(10 * day)}}, {{"expiry_warning_days", 14}});
  store_crafted(s, "expired", {{"manifest_expires", utc_in(-day)}});
  store_crafted(s, "fresh", {{"manifest_expires", utc_in(30 * day)}}, {{"expiry_warning_days", 14}});
  store_crafted(s, "replica-lag", {}, {{"replica", {{"configured", true}, {"ok", true}, {"seconds_behind", 7200}}}});
  store_crafted(s, "replica-down", {}, {{"replica", {{"configured", true}, {"ok", false}, {"error", "refused"}}}});
  store_crafted(s, "replica-none", {}, {{"replica", {{"configured", false}}}});
  store_crafted(s, "replica-fine", {}, {{"replica", {{"configured", true}, {"ok", true}, {"seconds_behind", 2}}}});

  Fleet f = fleet(s);
  BOOST_TEST(f.status == 1);
  auto flags = [&](const std::string& site) { return site_of(f, site)["flags"]; };
  using A = nlohmann::json;
  BOOST_TEST(flags("stuck") == A::array({"stuck"}));
  BOOST_TEST(site_of(f, "stuck")["channels"][0]["flags"] == A::array({"stuck"}));
  BOOST_TEST(flags("busy").empty());
  BOOST_TEST(flags("refusing") == A::array({"refusing", "error"}));
  BOOST_TEST(flags("failing") == A::array({"error"}));
  BOOST_TEST(flags("expiring-soon") == A::array({"expiring"}));
  BOOST_TEST(flags("expiring-window") == A::array({"expiring"}));
  BOOST_TEST(flags("expired") == A::array({"expiring"}));
  BOOST_TEST(flags("fresh").empty());
  BOOST_TEST(flags("replica-lag") == A::array({"replica"}));
  BOOST_TEST(flags("replica-down") == A::array({"replica"}));
  BOOST_TEST(flags("replica-none").empty());
  BOOST_TEST(flags("replica-fine").empty());
  BOOST_TEST(site_of(f, "replica-lag")["replica"]["lag_seconds"] == 7200);
  // --stale-after moves the stuck line too.
  RunResult r = run({"distctl", "fleet", "--config", s.hq_cfg, "--json", "--stale-after", "100"});
  auto sites = nlohmann::json::parse(r.out);
  for (const auto& v : sites)
    if (v["site"] == "stuck") BOOST_TEST(v["flags"].empty());
  RunResult text = run({"distctl", "fleet", "--config", s.hq_cfg});
  BOOST_TEST_MESSAGE("distctl fleet, crafted reports:\n" << text.out);
  BOOST_TEST(text.out.find("last error (rollback): HQ offered version 1") != std::string::npos);
  BOOST_TEST(text.out.find("replica: ok, 7200 s behind") != std::string::npos);

  s.start_hq();
  Answer m = curl(s, "/metrics", false);
  BOOST_TEST(m.body.find("distd_site_replica_lag_seconds{site=\"replica-lag\"} 7200\n") != std::string::npos);
  BOOST_TEST(m.body.find("distd_site_replica_ok{site=\"replica-down\"} 0\n") != std::string::npos);
  BOOST_TEST(m.body.find("distd_site_replica_ok{site=\"replica-fine\"} 1\n") != std::string::npos);
  BOOST_TEST(m.body.find("distd_site_replica_ok{site=\"replica-none\"}") == std::string::npos);
}
