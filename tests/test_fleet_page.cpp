// GET /fleet (docs/hq.md "The fleet"): HQ's view of its centers as one HTML page. The renderer
// escapes every text a report carries (a center's report is attacker-influenced), shows each flag
// as a badge with its name, and says so when the fleet is empty; the route answers text/html,
// no-store, with a policy that allows no script. tests/browser/test_fleet_page.py looks at the
// page in headless Chromium (desktop and a 360 px phone).
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "distd/fleet/page.h"
#include "manifest/encoding.h"
#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;

namespace {

constexpr int64_t kNow = 1'800'000'000;

fleet::SiteView site(const std::string& name, std::vector<std::string> flags, int64_t ago = 600) {
  fleet::SiteView v;
  v.site = name;
  v.enrolled = true;
  v.seen = true;
  v.received = kNow - ago;
  v.how = "link";
  v.distd_version = "0.1.0";
  v.flags = std::move(flags);
  fleet::SiteChannel c;
  c.channel = "moodledata";
  c.installed = 3;
  c.latest_known = 3;
  c.hq_latest = 3;
  v.channels.push_back(c);
  return v;
}

fleet::PageContext ctx() {
  fleet::PageContext c;
  c.now = kNow;
  c.hq_site = "hq";
  c.hq_latest = {{"moodledata", 3}};
  return c;
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = 0; (at = hay.find(needle, at)) != std::string::npos; at += needle.size()) ++n;
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_script_in_a_report_is_shown_as_text) {
  auto evil = site("center-1", {"error"});
  evil.channels[0].last_error = "<script>alert('x')</script> & \"quoted\"";
  evil.channels[0].warnings = {"<img src=x onerror=alert(1)>"};
  evil.channels[0].channel = "<b>ch</b>";
  evil.distd_version = "0.1.0<iframe>";
  evil.how = "<i>link</i>";
  const std::string page = fleet::render_fleet_page({evil}, ctx());
  BOOST_TEST(page.find("<script") == std::string::npos);
  BOOST_TEST(page.find("<img") == std::string::npos);
  BOOST_TEST(page.find("<iframe") == std::string::npos);
  BOOST_TEST(page.find("<b>ch</b>") == std::string::npos);
  BOOST_TEST(page.find("<i>link") == std::string::npos);
  BOOST_TEST(page.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;") !=
             std::string::npos);
  BOOST_TEST(page.find("&lt;img src=x onerror=alert(1)&gt;") != std::string::npos);
  BOOST_TEST(fleet::html_escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;");
}

BOOST_AUTO_TEST_CASE(each_flag_is_a_badge_with_its_name_and_flagged_sites_come_first) {
  auto a = site("center-a", {});
  auto b = site("center-b", {"stale", "behind"}, 3 * 86400);
  b.channels[0].installed = 2;
  b.channels[0].pending_files = 12;
  b.channels[0].pending_bytes = 3 * 1024 * 1024;
  auto c = site("center-c", {"error"});
  c.channels[0].last_error = "HQ answered 503";
  fleet::SiteView never;
  never.site = "center-d";
  never.enrolled = true;
  never.flags = {"never-seen"};
  auto e = site("center-e", {"some-new-flag"});  // a flag the page does not know yet: still shown
  const std::string page = fleet::render_fleet_page({a, b, c, never, e}, ctx());
  BOOST_TEST_MESSAGE(page);

  BOOST_TEST(page.find("<b>5 sites</b>, <b class=\"attention\">4 need attention</b>") != std::string::npos);
  BOOST_TEST(page.find("<span class=\"flag warn\">stale</span>") != std::string::npos);
  BOOST_TEST(page.find("<span class=\"flag warn\">behind</span>") != std::string::npos);
  BOOST_TEST(page.find("<span class=\"flag bad\">error</span>") != std::string::npos);
  BOOST_TEST(page.find("<span class=\"flag none\">never-seen</span>") != std::string::npos);
  BOOST_TEST(page.find("<span class=\"flag warn\">some-new-flag</span>") != std::string::npos);
  BOOST_TEST(page.find("<span class=\"flag ok\">ok</span>") != std::string::npos);
  // The rows: the flagged ones first, in the fleet's order; the one without a flag last.
  const size_t rb = page.find("id=\"site-center-b\""), rc = page.find("id=\"site-center-c\""),
               rd = page.find("id=\"site-center-d\""), ra = page.find("id=\"site-center-a\"");
  BOOST_TEST((rb < rc && rc < rd && rd < ra));
  BOOST_TEST(page.find("<tr class=\"row-bad\" id=\"site-center-c\"") != std::string::npos);
  BOOST_TEST(page.find("<tr class=\"row-ok\" id=\"site-center-a\"") != std::string::npos);
  // Last seen: relative, the UTC time beside it; a site never seen says so.
  BOOST_TEST(page.find("title=\"2027-01-12T08:00:00Z\">3 d ago</time>") != std::string::npos);
  BOOST_TEST(page.find("\">10 min ago</time>") != std::string::npos);
  BOOST_TEST(page.find(">never<") != std::string::npos);
  // Installed against HQ's latest, and what is pending.
  BOOST_TEST(page.find("<span class=\"v behind\">2</span> <span class=\"of\">of HQ 3</span>") != std::string::npos);
  BOOST_TEST(page.find("pending 12 files, 3.0 MiB") != std::string::npos);
  BOOST_TEST(page.find("<b>moodledata:</b> HQ answered 503") != std::string::npos);
  BOOST_TEST(page.find("<span class=\"how\">link</span>") != std::string::npos);
  // Self-contained and phone-sized: one inline style, no script, no external asset.
  BOOST_TEST(page.find("<meta name=\"viewport\" content=\"width=device-width\">") != std::string::npos);
  BOOST_TEST(count(page, "<style>") == 1u);
  BOOST_TEST(page.find("@media (max-width:600px)") != std::string::npos);
  BOOST_TEST(page.find("<script") == std::string::npos);
  BOOST_TEST(page.find("src=") == std::string::npos);
  BOOST_TEST(page.find("<link") == std::string::npos);
  BOOST_TEST(page.find("http") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_empty_fleet_says_so_and_a_long_error_is_cut_at_a_character) {
  const std::string empty = fleet::render_fleet_page({}, ctx());
  BOOST_TEST(empty.find("<b>0 sites</b>, none needs attention") != std::string::npos);
  BOOST_TEST(empty.find("No site is enrolled and none has reported") != std::string::npos);
  BOOST_TEST(empty.find("<table") == std::string::npos);

  auto s = site("center-1", {"error"});
  s.channels[0].last_error = std::string(399, 'x') + "é" + std::string(1000, 'y');  // é: 2 bytes at 399..400
  const std::string page = fleet::render_fleet_page({s}, ctx());
  BOOST_TEST(page.find(std::string(399, 'x') + "…") != std::string::npos);
  BOOST_TEST(page.find("yyy") == std::string::npos);
  BOOST_TEST(page.find("<b>1 site</b>, <b class=\"attention\">1 needs attention</b>") != std::string::npos);

  BOOST_TEST(fleet::relative_age(0) == "just now");
  BOOST_TEST(fleet::relative_age(42) == "42 s ago");
  BOOST_TEST(fleet::relative_age(3 * 3600 + 5) == "3 h ago");
  BOOST_TEST(fleet::relative_age(-300) == "in 5 min");
}

BOOST_AUTO_TEST_CASE(get_fleet_at_hq_serves_the_page_uncached_and_without_scripts) {
  SyncSite s;
  write_file(s.src() + "/a.txt", "one\n");
  BOOST_REQUIRE_EQUAL(s.publish(), 1u);
  s.start_hq();
  s.sync_ok();  // the center reports
  RunResult r = run({"curl", "-s", "-D", s.tmp / "headers", "-o", s.tmp / "page", "-w", "%{http_code}",
                     s.hq_url() + "/fleet"});
  BOOST_REQUIRE_EQUAL(r.out, "200");
  const std::string headers = read_file(s.tmp / "headers"), page = read_file(s.tmp / "page");
  BOOST_TEST_INFO("headers:\n" << headers);
  BOOST_TEST(headers.find("Content-Type: text/html; charset=utf-8\r\n") != std::string::npos);
  BOOST_TEST(headers.find("Cache-Control: no-store\r\n") != std::string::npos);
  BOOST_TEST(count(headers, "Cache-Control:") == 1u);
  BOOST_TEST(headers.find("Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline';") !=
             std::string::npos);
  BOOST_TEST(page.find("id=\"site-center-1\"") != std::string::npos);
  BOOST_TEST(page.find("<b>1 site</b>, none needs attention") != std::string::npos);
  BOOST_TEST(page.find("HQ's latest: <span class=\"ch\">c</span> 1") != std::string::npos);
  // /metrics keeps its own header.
  r = run({"curl", "-s", "-D", s.tmp / "headers", "-o", "/dev/null", s.hq_url() + "/metrics"});
  BOOST_TEST(read_file(s.tmp / "headers").find("Cache-Control: no-cache\r\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_replica_the_outbox_and_the_manifest_expiry_are_shown) {
  auto a = site("center-a", {"replica", "expiring"});
  fleet::SiteReplica r;
  r.configured = true;
  r.reachable = true;
  r.lag_seconds = 7200;
  r.error = "<lag> above 3600 s";
  a.replica = r;
  a.outbox_posts = 2;
  a.channels[0].manifest_expires = kNow + 86400;
  a.channels[0].flags = {"expiring"};
  auto b = site("center-b", {});
  fleet::SiteReplica ok;
  ok.configured = true;
  ok.ok = ok.reachable = true;
  ok.lag_seconds = 0;
  b.replica = ok;
  b.outbox_posts = 0;
  const std::string page = fleet::render_fleet_page({a, b}, ctx());
  BOOST_TEST(page.find("replica NOT OK, 7200 s behind") != std::string::npos);
  BOOST_TEST(page.find("&lt;lag&gt; above 3600 s") != std::string::npos);
  BOOST_TEST(page.find("2 posts wait for HQ") != std::string::npos);
  BOOST_TEST(page.find("replica ok, 0 s behind") != std::string::npos);
  BOOST_TEST(page.find("0 posts wait for HQ") != std::string::npos);
  BOOST_TEST(page.find("<span class=\"expires soon\">expires " + format_utc(kNow + 86400).substr(0, 10)) !=
             std::string::npos);
  for (const char* f : {"replica", "expiring", "stuck", "refusing"})  // each flag has its legend line
    BOOST_TEST(page.find(std::string(">") + f + "</span>") != std::string::npos, f);
}
