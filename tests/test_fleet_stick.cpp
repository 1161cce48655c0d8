// A center reached only by stick is on HQ's map (docs/hq.md "The fleet", docs/sneakernet.md):
// its request carries its status report under the request's signature, and `bundle export
// --request` stores it with how "stick", last seen when the center wrote it. A stick report
// older than the stored one (the link's) does not replace it; a report about another site is
// not stored (the export goes on); a request without a report (distd-request 1) still exports.
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "distd/bundle/format.h"
#include "tests/support/bundle_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

nlohmann::json fleet(BundleSite& s) {
  RunResult r = run({"distctl", "fleet", "--config", s.hq_cfg, "--json"});
  BOOST_TEST_INFO("fleet stderr: " << r.err);
  BOOST_REQUIRE(r.status == 0 || r.status == 1);
  nlohmann::json sites = nlohmann::json::parse(r.out);
  BOOST_REQUIRE_EQUAL(sites.size(), 1u);
  return sites[0];
}

std::string request_file(BundleSite& s) { return s.stick + "/distd-request.txt"; }
std::string fleet_file(BundleSite& s) { return s.hq_state + "/fleet/center-1.json"; }

bundle::Request parse(const std::string& file) {
  Digest kid{};
  Signature sig{};
  std::string body;
  return bundle::parse_request(distd::test::read_file(file), file, &kid, &body, &sig);
}

// Rewrites the stick's request as the center would have signed it, after edit.
void resign(BundleSite& s, const std::function<void(bundle::Request&)>& edit) {
  bundle::Request r = parse(request_file(s));
  edit(r);
  write_file(request_file(s),
             bundle::sign_text(bundle::render_request_body(r), load_secret_key(s.reg_state + "/site.key")));
}

void wait_next_second() { std::this_thread::sleep_for(std::chrono::milliseconds(1100)); }

}  // namespace

BOOST_AUTO_TEST_CASE(a_center_reached_only_by_stick_is_seen_with_its_versions) {
  BundleSite s;
  write_file(s.src() + "/a.txt", "one\n");
  BOOST_REQUIRE_EQUAL(s.publish(), 1u);
  s.enroll_center();  // the site key, enrolled: the fleet lists it
  BOOST_TEST(fleet(s)["flags"] == nlohmann::json::array({"never-seen"}));

  const auto before = static_cast<int64_t>(::time(nullptr));
  nlohmann::json e = s.round();
  BOOST_TEST(e["status_report"] == "stored", e.dump());
  const std::string text = distd::test::read_file(request_file(s));
  BOOST_TEST(text.rfind("distd-request 2\n", 0) == 0);
  const bundle::Request req = parse(request_file(s));
  const nlohmann::json carried = nlohmann::json::parse(req.report);
  BOOST_TEST(carried["format"] == "distd-report 1");
  BOOST_TEST(carried["site"] == "center-1");
  BOOST_TEST(carried["time"].get<int64_t>() == req.created);
  BOOST_TEST(req.created >= before);

  nlohmann::json site = fleet(s);
  BOOST_TEST(site["how"] == "stick");
  BOOST_TEST(site["last_seen_unix"].get<int64_t>() == req.created);  // when the center wrote it
  BOOST_REQUIRE_EQUAL(site["channels"].size(), 1u);
  BOOST_TEST(site["channels"][0]["installed_version"] == 0);
  BOOST_TEST(site["channels"][0]["hq_latest_version"] == 1);
  BOOST_TEST(site["flags"] == nlohmann::json::array({"behind"}));
  auto stored = nlohmann::json::parse(distd::test::read_file(fleet_file(s)));
  BOOST_TEST(stored["how"] == "stick");
  BOOST_TEST(stored["received"].get<int64_t>() == req.created);

  // The bundle goes home; the next request says version 1 is installed.
  RunResult i = s.import_();
  BOOST_TEST_INFO(i.err);
  BOOST_REQUIRE_EQUAL(i.status, 0);
  e = s.round();
  BOOST_TEST(e["status_report"] == "stored", e.dump());
  site = fleet(s);
  BOOST_TEST(site["how"] == "stick");
  BOOST_TEST(site["channels"][0]["installed_version"] == 1);
  BOOST_TEST(site["flags"].empty(), site.dump());
  RunResult txt = run({"distctl", "fleet", "--config", s.hq_cfg});
  BOOST_TEST(txt.status == 0);
  BOOST_TEST(txt.out.find("by stick") != std::string::npos, txt.out);
  std::string hist = distd::test::read_file(s.hq_state + "/fleet/center-1.history.jsonl");
  BOOST_TEST(std::count(hist.begin(), hist.end(), '\n') == 2);
}

BOOST_AUTO_TEST_CASE(a_stale_stick_report_does_not_replace_a_newer_link_report) {
  BundleSite s;
  write_file(s.src() + "/a.txt", "one\n");
  BOOST_REQUIRE_EQUAL(s.publish(), 1u);
  RunResult q = s.request();  // the center at version 0 writes a request ...
  BOOST_REQUIRE_EQUAL(q.status, 0);
  s.enroll();
  wait_next_second();
  s.start_hq();
  s.sync_ok();  // ... then the link comes back: version 1, reported by link
  BOOST_TEST(fleet(s)["how"] == "link");

  nlohmann::json e = s.export_ok({"--request", request_file(s)});  // the old stick reaches HQ
  BOOST_TEST(e["status_report"] == "older", e.dump());
  nlohmann::json site = fleet(s);
  BOOST_TEST(site["how"] == "link");
  BOOST_TEST(site["channels"][0]["installed_version"] == 1);
  std::string hist = distd::test::read_file(s.hq_state + "/fleet/center-1.history.jsonl");
  BOOST_TEST(std::count(hist.begin(), hist.end(), '\n') == 1);

  // A newer request replaces the link's report.
  wait_next_second();
  e = s.round();
  BOOST_TEST(e["status_report"] == "stored", e.dump());
  site = fleet(s);
  BOOST_TEST(site["how"] == "stick");
  BOOST_TEST(site["channels"][0]["installed_version"] == 1);
}

BOOST_AUTO_TEST_CASE(a_report_about_another_site_is_not_stored_and_the_export_goes_on) {
  BundleSite s;
  write_file(s.src() + "/a.txt", "one\n");
  BOOST_REQUIRE_EQUAL(s.publish(), 1u);
  RunResult q = s.request();
  BOOST_REQUIRE_EQUAL(q.status, 0);
  s.enroll();
  fs::copy_file(s.hq_state + "/sites/center-1.pub", s.hq_state + "/sites/center-2.pub");
  resign(s, [](bundle::Request& r) {  // signed by center-1, about center-2
    auto j = nlohmann::json::parse(r.report);
    j["site"] = "center-2";
    r.report = j.dump();
  });
  RunResult x = s.export_({"--request", request_file(s)});
  BOOST_TEST_INFO(x.err);
  BOOST_REQUIRE_EQUAL(x.status, 0);
  BOOST_TEST(nlohmann::json::parse(x.out)["status_report"] == "refused");
  BOOST_TEST(x.err.find("warning: the status report in the request of site 'center-1' was not stored: it is about "
                        "site 'center-2'") != std::string::npos);
  BOOST_TEST(fs::exists(s.stick + "/distd-bundle.idx"));
  BOOST_TEST(!fs::exists(fleet_file(s)));
  BOOST_TEST(!fs::exists(s.hq_state + "/fleet/center-2.json"));

  // The report is under the request's signature: altered without the site key, the request is refused.
  RunResult again = s.request();
  BOOST_REQUIRE_EQUAL(again.status, 0);
  std::string text = distd::test::read_file(request_file(s));
  const std::string from = "\"installed_version\":0";
  BOOST_REQUIRE(text.find(from) != std::string::npos);
  write_file(request_file(s), text.replace(text.find(from), from.size(), "\"installed_version\":1"));
  RunResult bad = s.export_({"--request", request_file(s)});
  BOOST_TEST(bad.status == 6);
  BOOST_TEST(bad.err.find("does not verify") != std::string::npos, bad.err);
  BOOST_TEST(!fs::exists(fleet_file(s)));
}

BOOST_AUTO_TEST_CASE(an_old_request_without_a_report_still_exports) {
  BundleSite s;
  write_file(s.src() + "/a.txt", "one\n");
  BOOST_REQUIRE_EQUAL(s.publish(), 1u);
  RunResult q = s.request();
  BOOST_REQUIRE_EQUAL(q.status, 0);
  s.enroll();
  resign(s, [](bundle::Request& r) { r.report.clear(); });  // as a center before the report wrote it
  const std::string text = distd::test::read_file(request_file(s));
  BOOST_TEST(text.rfind("distd-request 1\n", 0) == 0);
  BOOST_TEST(text.find("\nreport ") == std::string::npos);

  nlohmann::json e = s.export_ok({"--request", request_file(s)});
  BOOST_TEST(e["status_report"] == "none");
  BOOST_TEST(e["objects"].get<uint64_t>() == 1u);
  BOOST_TEST(!fs::exists(fleet_file(s)));
  BOOST_TEST(fleet(s)["flags"] == nlohmann::json::array({"never-seen"}));
  RunResult i = s.import_();
  BOOST_TEST_INFO(i.err);
  BOOST_TEST(i.status == 0);
  s.check_converged(1);
}
