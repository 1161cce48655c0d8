// HQ's smart endpoints (POST /deltas, POST /objects, the manifest-delta POST) answer only
// requests signed by an enrolled site (docs/formats/http.md, "Signed requests"); the static
// layout stays public. An enrolled center gets its deltas, also with a clock hours off; an
// unenrolled one still converges on whole files and is told why; unsigned, forged, moved,
// replayed and stale requests are refused, the unsigned ones before their body is read.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "manifest/request_auth.h"
#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

// A site whose v2 changes a little of one big file: a delta pays.
void two_versions(SyncSite& s) {
  write_file(s.src() + "/big.bin", random_bytes(2'000'000, 1));
  write_file(s.src() + "/small.txt", "v1\n");
  s.publish();
  s.start_hq();
}
void change_a_little(SyncSite& s) {
  std::string b = random_bytes(2'000'000, 1);
  b.replace(1000, 5, "HELLO");
  write_file(s.src() + "/big.bin", b);
  write_file(s.src() + "/small.txt", "v2\n");
  s.publish();
}

// curl POST of body to target with extra headers; returns "<status>\n<headers>".
struct Answer {
  std::string status, headers;
};
Answer post(SyncSite& s, const std::string& target, const std::string& body, const std::vector<std::string>& headers) {
  write_file(s.tmp / "body", body);
  std::vector<std::string> argv = {"curl", "-s", "-D", s.tmp / "hdr", "-o", s.tmp / "out", "-w", "%{http_code}"};
  for (const auto& h : headers) argv.insert(argv.end(), {"-H", h});
  argv.insert(argv.end(), {"--data-binary", "@" + (s.tmp / "body"), s.hq_url() + target});
  RunResult r = run(argv);
  return {r.out, distd::test::read_file(s.tmp / "hdr") + distd::test::read_file(s.tmp / "out")};
}

size_t deltas_stored(SyncSite& s) {
  size_t n = 0;
  if (fs::exists(s.public_dir() + "/deltas"))
    for (auto& e : fs::directory_iterator(s.public_dir() + "/deltas")) n += e.is_regular_file();
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(an_enrolled_center_gets_deltas_an_unenrolled_one_whole_files) {
  SyncSite s;
  two_versions(s);
  s.auto_enroll = false;  // the center has a key (made by its first sync) that HQ does not know
  s.sync_ok();
  change_a_little(s);
  RunResult r = s.sync();
  BOOST_TEST_INFO("sync stderr: " << r.err);
  BOOST_REQUIRE_EQUAL(r.status, 0);
  s.check_converged(2);
  auto j = nlohmann::json::parse(r.out)["channels"][0];
  BOOST_TEST(j["delta"].get<int>() == 0);
  BOOST_TEST(j["full"].get<int>() == 2);
  BOOST_TEST(r.err.find("only for enrolled sites") != std::string::npos);
  BOOST_TEST(r.err.find("is not enrolled at HQ") != std::string::npos);
  BOOST_TEST(deltas_stored(s) == 0u);  // HQ computed and stored nothing for it
  auto status = nlohmann::json::parse(run({"curl", "-s", s.hq_url() + "/status"}).out);
  BOOST_TEST(status["limits"]["unsigned_refused"].get<int>() >= 1);

  // Enrolled: the next change comes as a delta.
  s.enroll_center();
  std::string b = random_bytes(2'000'000, 1);
  b.replace(5000, 5, "WORLD");
  write_file(s.src() + "/big.bin", b);
  s.publish();
  auto k = s.sync_ok();
  s.check_converged(3);
  BOOST_TEST(k["delta"].get<int>() == 1);
  BOOST_TEST(deltas_stored(s) == 1u);
}

BOOST_AUTO_TEST_CASE(a_center_whose_clock_is_hours_off_learns_hqs_time) {
  if (!fs::exists("/usr/bin/faketime")) {
    BOOST_TEST_MESSAGE("skipped: faketime is not installed (scripts/setup.sh installs it)");
    return;
  }
  SyncSite s;
  two_versions(s);
  s.sync_ok();
  change_a_little(s);
  s.enroll_center();
  // A Pi without a real-time clock, booted after a power cut: 5 hours behind.
  RunResult r = run({"faketime", "-f", "-5h", bin("distctl"), "sync", "--config", s.reg_cfg, "--json"}, {}, {}, 120);
  BOOST_TEST_INFO("sync stderr: " << r.err);
  BOOST_REQUIRE_EQUAL(r.status, 0);
  s.check_converged(2);
  BOOST_TEST(nlohmann::json::parse(r.out)["channels"][0]["delta"].get<int>() == 1);
  BOOST_TEST(r.err.find("enrolled sites") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(unsigned_forged_moved_replayed_and_stale_requests_are_refused) {
  SyncSite s;
  two_versions(s);
  s.enroll_center();
  const std::string target = "/deltas?target=" + file_digest_hex(s.src() + "/big.bin");
  const std::string body = "not a signature";

  // Unsigned: 401 from the headers, the body never read (a 60 MB claim, none of it sent).
  RunResult raw = run({"bash", "-c",
                       "exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(s.hq_port) +
                           "; printf 'POST /deltas?target=%s HTTP/1.1\\r\\nHost: hq\\r\\nContent-Length: 60000000\\r\\n\\r\\n' " + std::string(64, 'a') + " >&3;"
                           " timeout 5 head -c 12 <&3"});
  BOOST_TEST(raw.out == "HTTP/1.1 401");
  Answer a = post(s, target, body, {});
  BOOST_TEST(a.status == "401");
  BOOST_TEST(a.headers.find("answers only enrolled sites") != std::string::npos);

  // Signed properly: through the gate (400: the body is no signature).
  std::string good = s.auth_header("POST", target, body);
  BOOST_TEST(post(s, target, body, {good}).status == "400");
  // The same header again: a replay.
  a = post(s, target, body, {good});
  BOOST_TEST(a.status == "401");
  BOOST_TEST(a.headers.find("already answered") != std::string::npos);
  // Moved to another target, or another body: the signature does not cover it.
  BOOST_TEST(post(s, "/deltas?target=" + std::string(64, 'b'), body, {s.auth_header("POST", target, body)}).status ==
             "401");
  BOOST_TEST(post(s, target, body + "!", {s.auth_header("POST", target, body)}).status == "401");
  // Signed by another key in the site's name.
  SecretKey other = generate_keypair().sec;
  a = post(s, target, body, {"Authorization: " + sign_request("center-1", other, ::time(nullptr), "POST", target, body)});
  BOOST_TEST(a.status == "401");
  BOOST_TEST(a.headers.find("not signed by the enrolled key of site 'center-1'") != std::string::npos);
  // A site HQ has not enrolled: 403 naming the file to create.
  a = post(s, target, body, {"Authorization: " + sign_request("center-9", other, ::time(nullptr), "POST", target, body)});
  BOOST_TEST(a.status == "403");
  BOOST_TEST(a.headers.find("sites/center-9.pub") != std::string::npos);
  // An hour old: 401 with HQ's time, so that a center can correct its clock.
  SecretKey mine = load_secret_key(s.reg_state + "/site.key");
  a = post(s, target, body, {"Authorization: " + sign_request("center-1", mine, ::time(nullptr) - 3600, "POST", target, body)});
  BOOST_TEST(a.status == "401");
  BOOST_TEST(a.headers.find("X-Distd-Time: ") != std::string::npos);
  BOOST_TEST(a.headers.find("from HQ's clock") != std::string::npos);
  // The access log names the site of a signed request.
  BOOST_TEST(s.hqd->log().find("site=center-1 \"POST " + target + "\" 400 ") != std::string::npos);
  // Malformed.
  BOOST_TEST(post(s, target, body, {"Authorization: Distd-Ed25519 site=center-1, time=1"}).status == "401");
  // The static layout stays public.
  BOOST_TEST(run({"curl", "-s", "-f", "-o", "/dev/null", s.hq_url() + "/channels/c/latest.manifest"}).status == 0);
}

BOOST_AUTO_TEST_CASE(require_signed_requests_false_opens_the_smart_endpoints) {
  SyncSite s;
  std::string cfg = distd::test::read_file(s.hq_cfg);
  write_file(s.hq_cfg, cfg.replace(cfg.find("[hq]\n"), 5, "[hq]\nrequire_signed_requests = false\n"));
  two_versions(s);
  BOOST_TEST(post(s, "/deltas?target=" + file_digest_hex(s.src() + "/big.bin"), "x", {}).status == "400");
}

// [hq] max_delta_jobs holds one slot per enrolled site, whatever address it comes from (behind
// nginx every center is 127.0.0.1): a second delta request of the same site from another address
// is told 503 while the first uploads, another site's is served.
BOOST_AUTO_TEST_CASE(delta_slots_are_one_per_site_not_per_address) {
  SyncSite s;
  two_versions(s);
  const std::string target = "/deltas?target=" + file_digest_hex(s.src() + "/big.bin");
  const std::string body(1000, 'x');
  std::string mine = s.auth_header("POST", target, body);
  KeyPair other = generate_keypair();
  write_keypair(other, s.tmp / "c2.key", s.hq_state + "/sites/center-2.pub");
  std::string theirs =
      "Authorization: " + sign_request("center-2", other.sec, ::time(nullptr), "POST", target, body);
  const std::string script = R"PY(
import socket, sys
port, target, mine, theirs = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def conn(addr, auth, body):
    c = socket.socket(); c.bind((addr, 0)); c.connect(("127.0.0.1", port)); c.settimeout(10)
    c.sendall(("POST %s HTTP/1.1\r\nHost: hq\r\n%s\r\nContent-Length: 1000\r\n\r\n" % (target, auth)).encode() + body)
    return c
def status(c):
    return c.recv(64).split(b" ")[1].decode()
a = conn("127.0.0.2", mine, b"")            # holds center-1's slot while its body is "uploading"
import time; time.sleep(0.5)
b = conn("127.0.0.3", mine, b"")            # center-1 again, from another address
print("same-site", status(b))
c = conn("127.0.0.4", theirs, b"x" * 1000)  # center-2: served (400: the body is no signature)
print("other-site", status(c))
a.sendall(b"x" * 1000)
print("first", status(a))
)PY";
  RunResult r = run({"python3", "-c", script, std::to_string(s.hq_port), target, mine, theirs});
  BOOST_TEST_INFO("python stderr: " << r.err);
  BOOST_TEST(r.out == "same-site 503\nother-site 400\nfirst 400\n");
}
