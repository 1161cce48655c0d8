// docs/hq.md "Serving with nginx", as written: a real nginx with the block from the docs (only
// its listen, root and distd's port changed) in front of distd. A center syncs through it with
// batches (POST /objects), deltas (POST /deltas) and manifest deltas (POST latest.manifest), and
// follows a key rotation (GET /keys/2.keys) and reports its status (POST /report), every one
// answered 200 through nginx.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/support/nginx_server.h"
#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

// The ```nginx block of docs/hq.md's "Serving with nginx", pointed at this test's HQ.
std::string docs_server_block(const SyncSite& s) {
  const std::string doc = read_file(source_path("docs/hq.md"));
  const size_t section = doc.find("## Serving with nginx");
  BOOST_REQUIRE(section != std::string::npos);
  const size_t from = doc.find("```nginx\n", section);
  BOOST_REQUIRE(from != std::string::npos);
  const size_t to = doc.find("```", from + 9);
  std::string block = doc.substr(from + 9, to - from - 9);
  auto swap = [&](const std::string& a, const std::string& b) {
    size_t n = 0;
    for (size_t at; (at = block.find(a)) != std::string::npos; ++n) block.replace(at, a.size(), b);
    BOOST_REQUIRE_MESSAGE(n > 0, "docs/hq.md's nginx block has no '" << a << "'");
  };
  swap("listen 80;", "listen 127.0.0.1:@PORT@;");
  swap("root /var/lib/distd/public;", "root " + s.public_dir() + ";");
  swap("http://127.0.0.1:8750", "http://127.0.0.1:" + std::to_string(s.hq_port));
  return block;
}

// True when nginx logged `request` (a method and the start of a target) answered 200.
bool answered(const std::string& access_log, const std::string& request) {
  for (size_t at = 0; (at = access_log.find("\"" + request, at)) != std::string::npos; ++at) {
    const size_t end = access_log.find('"', at + 1);
    if (end != std::string::npos && access_log.compare(end, 6, "\" 200 ") == 0) return true;
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_center_syncs_through_the_documented_nginx_block) {
  if (!exists("/usr/sbin/nginx")) {
    BOOST_TEST_MESSAGE("skipped: /usr/sbin/nginx is not installed");
    return;
  }
  SyncSite s;
  std::string big = random_bytes(600'000, 11);
  write_file(s.src() + "/big.bin", big);
  for (int i = 0; i < 20; ++i) write_file(s.src() + "/small/" + std::to_string(i), random_bytes(3000 + i, 20 + i));
  BOOST_REQUIRE_EQUAL(s.publish(), 1u);
  s.start_hq();
  NginxOptions front;
  front.server_block = docs_server_block(s);
  NginxServer web(s.public_dir(), front);
  s.set_hq_url(web.url());
  s.pin_own_key_copy();

  BOOST_TEST(s.sync_ok()["to_version"] == 1);
  // v2: a small edit inside the big file comes as a delta, the manifest as a manifest delta.
  big.replace(300'000, 5, "EDIT!");
  write_file(s.src() + "/big.bin", big);
  BOOST_REQUIRE_EQUAL(s.publish(), 2u);
  nlohmann::json j = s.sync_ok();
  BOOST_TEST(j["to_version"] == 2);
  BOOST_TEST(j["delta"] == 1);
  // HQ rotates its key: the center follows the record through nginx and installs the re-signed v3.
  RunResult rot = run({"distctl", "key", "rotate", "--config", s.hq_cfg});
  BOOST_REQUIRE_MESSAGE(rot.status == 0, rot.err);
  BOOST_TEST(s.sync_ok()["to_version"] == 3);
  BOOST_TEST(exists(s.reg_state + "/trust/2.keys"));
  s.check_converged(3);
  BOOST_TEST(run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", web.url() + "/fleet"}).out == "200");

  const std::string log = read_file(web.dir() + "/access.log");
  BOOST_TEST_INFO("nginx access log:\n" << log);
  BOOST_TEST(answered(log, "POST /objects"));
  BOOST_TEST(answered(log, "POST /deltas?target="));
  BOOST_TEST(answered(log, "POST /channels/c/latest.manifest"));
  BOOST_TEST(answered(log, "GET /channels/c/latest.manifest"));
  BOOST_TEST(answered(log, "GET /keys/2.keys"));
  BOOST_TEST(answered(log, "POST /report"));
  BOOST_TEST(answered(log, "GET /fleet"));  // HQ's page of its centers, through nginx
  BOOST_TEST(log.find("\"GET /keys/3.keys HTTP/1.1\" 404 ") != std::string::npos);
}
