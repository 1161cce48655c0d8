// HQ's HTTP server through a real `distd` process: the static layout with Range, path safety,
// the librsync delta endpoint, /status, sd_notify, and `systemd-analyze verify` of the units.
#include <arpa/inet.h>
#include <librsync.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <filesystem>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "manifest/digest.h"
#include "manifest/keys.h"
#include "manifest/manifest.h"
#include "tests/support/test_support.h"

namespace fs = std::filesystem;
using namespace distd;
using distd::test::Process;
using distd::test::RunResult;
using distd::test::TempDir;

namespace {

std::string slurp(const std::string& p) { return distd::test::read_file(p); }
void put(const std::string& p, const std::string& data) { distd::test::write_file(p, data); }

// A published HQ (channel "c": a few files, one of 1 MiB) and a running distd serving it.
struct Server {
  TempDir tmp{"hqsrv"};
  int port = distd::test::free_port();
  std::string cfg = tmp / "distd.toml";
  std::string big = distd::test::random_bytes(1 << 20, 11);
  std::string big_hex;
  std::unique_ptr<Process> proc;

  explicit Server(const std::vector<std::string>& env = {}, const std::string& hq_extra = "") {
    write_keypair(generate_keypair(), tmp / "hq.key", tmp / "hq.pub");
    put(cfg, "role = \"hq\"\nstate_dir = \"state\"\n[hq]\n" + hq_extra +
             // these tests speak raw HTTP; test_signed_requests covers the site gate
             "\nrequire_signed_requests = false" + "\nlisten = \"127.0.0.1:" + std::to_string(port) +
                 "\"\nsecret_key = \"hq.key\"\npublic_key = \"hq.pub\"\n[[channel]]\nname = \"c\"\npath = \"src\"\n");
    put(tmp / "src/big.bin", big);
    put(tmp / "src/small.txt", "hello from HQ\n");
    put(tmp / "src/empty", "");
    big_hex = distd::test::file_digest_hex(tmp / "src/big.bin");
    RunResult r = distd::test::run({"distctl", "publish", "--channel", "c", "--config", cfg});
    BOOST_TEST_INFO(r.err);
    BOOST_REQUIRE_EQUAL(r.status, 0);
    start(env);
  }
  void start(const std::vector<std::string>& env = {}) {
    proc = std::make_unique<Process>(std::vector<std::string>{"distd", "--config", cfg}, tmp / "distd.log", env);
    BOOST_REQUIRE_MESSAGE(distd::test::wait_for_port(port, 10), "distd did not listen: " << proc->log());
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    return c;
  }
  std::string obj_url(const std::string& hex) const { return "/objects/" + hex.substr(0, 2) + "/" + hex; }
  nlohmann::json status() const {
    auto r = client().Get("/status");
    BOOST_REQUIRE(r);
    BOOST_REQUIRE_EQUAL(r->status, 200);
    return nlohmann::json::parse(r->body);
  }
};

// Sends a raw request line (no client-side normalisation); returns the status code, 0 on error.
int raw_status(int port, const std::string& target, std::string* body = nullptr) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return 0;
  }
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: hq\r\nConnection: close\r\n\r\n";
  (void)::send(s, req.data(), req.size(), MSG_NOSIGNAL);
  std::string resp;
  char buf[4096];
  for (;;) {
    pollfd p{s, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) break;
    ssize_t n = ::recv(s, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  ::close(s);
  if (body) *body = resp;
  std::smatch m;
  if (!std::regex_search(resp, m, std::regex("^HTTP/1\\.[01] ([0-9]{3})"))) return 0;
  return std::stoi(m[1]);
}

// librsync through its FILE* API, as a regional center would use it.
std::string make_signature(const std::string& basis_path) {
  rs_magic_number magic = RS_RK_BLAKE2_SIG_MAGIC;
  size_t block_len = 0, strong_len = 0;
  BOOST_REQUIRE_EQUAL(rs_sig_args(static_cast<rs_long_t>(fs::file_size(basis_path)), &magic, &block_len, &strong_len),
                      RS_DONE);
  FILE* in = std::fopen(basis_path.c_str(), "rb");
  std::string sig_path = basis_path + ".sig";
  FILE* out = std::fopen(sig_path.c_str(), "wb");
  BOOST_REQUIRE(in && out);
  BOOST_REQUIRE_EQUAL(rs_sig_file(in, out, block_len, strong_len, magic, nullptr), RS_DONE);
  std::fclose(in);
  std::fclose(out);
  return slurp(sig_path);
}

std::string rs_apply(const std::string& basis_path, const std::string& delta, const std::string& dir) {
  put(dir + "/delta", delta);
  FILE* basis = std::fopen(basis_path.c_str(), "rb");
  FILE* d = std::fopen((dir + "/delta").c_str(), "rb");
  FILE* out = std::fopen((dir + "/patched").c_str(), "wb");
  BOOST_REQUIRE(basis && d && out);
  rs_result r = rs_patch_file(basis, d, out, nullptr);
  std::fclose(basis);
  std::fclose(d);
  std::fclose(out);
  BOOST_REQUIRE_EQUAL(r, RS_DONE);
  return slurp(dir + "/patched");
}

}  // namespace

BOOST_AUTO_TEST_CASE(serves_manifests_and_objects_with_range) {
  Server s;
  auto c = s.client();
  auto latest = c.Get("/channels/c/latest.manifest");
  BOOST_REQUIRE(latest);
  BOOST_TEST(latest->status == 200);
  BOOST_TEST(latest->body == slurp(s.tmp / "state/public/channels/c/latest.manifest"));
  SignedManifest sm = verify_manifest(latest->body, load_public_key(s.tmp / "hq.pub"), {}, "served manifest");
  BOOST_TEST(sm.manifest.version == 1u);
  auto v1 = c.Get("/channels/c/manifests/1.manifest");
  BOOST_REQUIRE(v1);
  BOOST_TEST(v1->status == 200);
  BOOST_TEST(v1->body == latest->body);

  for (const auto& e : sm.manifest.entries) {
    auto r = c.Get(s.obj_url(digest_hex(e.digest)));
    BOOST_REQUIRE(r);
    BOOST_TEST(r->status == 200);
    BOOST_TEST(r->body.size() == e.size);
    BOOST_TEST(digest_hex(digest_bytes(r->body)) == digest_hex(e.digest));
  }

  // Resume: the exact tail, with a correct Content-Range.
  const uint64_t cut = 654321;
  auto tail = c.Get(s.obj_url(s.big_hex), {{"Range", "bytes=" + std::to_string(cut) + "-"}});
  BOOST_REQUIRE(tail);
  BOOST_TEST(tail->status == 206);
  BOOST_TEST(tail->get_header_value("Content-Range") ==
             "bytes " + std::to_string(cut) + "-" + std::to_string(s.big.size() - 1) + "/" + std::to_string(s.big.size()));
  BOOST_TEST(tail->body == s.big.substr(cut));
  auto mid = c.Get(s.obj_url(s.big_hex), {{"Range", "bytes=100-199"}});
  BOOST_REQUIRE(mid);
  BOOST_TEST(mid->status == 206);
  BOOST_TEST(mid->body == s.big.substr(100, 100));
  auto suffix = c.Get(s.obj_url(s.big_hex), {{"Range", "bytes=-10"}});
  BOOST_REQUIRE(suffix);
  BOOST_TEST(suffix->body == s.big.substr(s.big.size() - 10));
  auto past = c.Get(s.obj_url(s.big_hex), {{"Range", "bytes=" + std::to_string(s.big.size()) + "-"}});
  BOOST_REQUIRE(past);
  BOOST_TEST(past->status == 416);
  BOOST_TEST(past->get_header_value("Content-Range") == "bytes */" + std::to_string(s.big.size()));

  auto head = c.Head(s.obj_url(s.big_hex));
  BOOST_REQUIRE(head);
  BOOST_TEST(head->status == 200);
  BOOST_TEST(head->get_header_value("Content-Length") == std::to_string(s.big.size()));
  BOOST_TEST(head->get_header_value("Accept-Ranges") == "bytes");
  BOOST_TEST(head->body.empty());

  // 404s: unknown object, channel, version, delta.
  std::string unknown(64, '0');
  for (const std::string& url : {s.obj_url(unknown), std::string("/channels/nope/latest.manifest"),
                                 std::string("/channels/c/manifests/7.manifest"), "/deltas/" + unknown,
                                 std::string("/"), std::string("/objects/"), std::string("/state")}) {
    auto r = c.Get(url);
    BOOST_REQUIRE(r);
    BOOST_TEST_INFO(url);
    BOOST_TEST(r->status == 404);
  }

  auto st = s.status();
  BOOST_TEST(st["role"] == "hq");
  BOOST_TEST(st["channels"][0]["name"] == "c");
  BOOST_TEST(st["channels"][0]["version"].get<uint64_t>() == 1u);
  BOOST_TEST(st["channels"][0]["files"].get<uint64_t>() == 3u);

  // A new version appears in /status and at latest.manifest without a restart.
  put(s.tmp / "src/small.txt", "changed\n");
  BOOST_REQUIRE_EQUAL(distd::test::run({"distctl", "publish", "--channel", "c", "--config", s.cfg}).status, 0);
  BOOST_TEST(s.status()["channels"][0]["version"].get<uint64_t>() == 2u);

  BOOST_TEST(s.proc->stop(15) == 0);  // SIGTERM: clean exit
}

BOOST_AUTO_TEST_CASE(path_traversal_is_refused) {
  Server s;
  put(s.tmp / "state/secret.txt", "do not serve me");
  const std::string hex = s.big_hex;
  const std::vector<std::string> attacks = {
      "/objects/../../hq.key",
      "/objects/../secret.txt",
      "/objects/%2e%2e/%2e%2e/hq.key",
      "/objects/" + hex.substr(0, 2) + "/..%2f..%2f..%2fsecret.txt",
      "/channels/../../secret.txt",
      "/channels/..%2f..%2fsecret.txt/latest.manifest",
      "/channels/c/manifests/../../../../secret.txt",
      "/channels/c/manifests/..%2F..%2F..%2F..%2Fsecret.txt",
      "/channels/c/latest.manifest/../../../../secret.txt",
      "/deltas/../../secret.txt",
      "/deltas/..%2F..%2Fsecret.txt",
      "//etc/passwd",
      "/objects/" + hex.substr(0, 2) + "/" + hex + "/../../../secret.txt",
      "/objects/AB/" + std::string(64, 'A'),
      "/objects/00/" + hex,  // wrong shard
      "/public/objects/" + hex.substr(0, 2) + "/" + hex,
      "/channels/c/manifests/01.manifest",
      "/channels/c/manifests/1.manifest%00",
      "/secret.txt",
      "/../secret.txt",
  };
  for (const auto& a : attacks) {
    std::string body;
    int status = raw_status(s.port, a, &body);
    BOOST_TEST_INFO(a << " -> " << status);
    const bool refused = status == 404 || status == 400;
    BOOST_TEST(refused);
    BOOST_TEST(body.find("do not serve me") == std::string::npos);
    BOOST_TEST(body.find("ed25519-secret") == std::string::npos);
  }
  BOOST_TEST(raw_status(s.port, s.obj_url(hex)) == 200);  // the server is still fine
}

BOOST_AUTO_TEST_CASE(delta_endpoint_computes_once_and_patches_exactly) {
  Server s({}, "max_delta_jobs = 4");
  auto c = s.client();
  // The regional center's basis: the old version of the file, edited in the middle and shorter.
  std::string basis = s.big;
  for (size_t i = 0; i < 300; ++i) basis[400000 + i] = 'x';
  basis.erase(900000, 5000);
  const std::string basis_path = s.tmp / "regional/basis.bin";
  put(basis_path, basis);
  const std::string sig = make_signature(basis_path);

  auto r = c.Post("/deltas?target=" + s.big_hex, sig, "application/octet-stream");
  BOOST_REQUIRE(r);
  BOOST_TEST_INFO(r->body);
  BOOST_REQUIRE_EQUAL(r->status, 200);
  auto j = nlohmann::json::parse(r->body);
  const std::string id = j["id"];
  Digest target = *parse_digest_hex(s.big_hex);
  Hasher h;
  h.update(target.data(), target.size());
  h.update(sig);
  BOOST_TEST(id == digest_hex(h.finish()));
  BOOST_TEST(j["target"] == s.big_hex);
  BOOST_TEST(j["target_size"].get<uint64_t>() == s.big.size());
  const uint64_t size = j["size"];
  BOOST_TEST(size < s.big.size() / 10);  // a small edit costs a small delta

  // Download it in two parts (a cut and a Range resume), then patch.
  auto first = c.Get("/deltas/" + id, {{"Range", "bytes=0-999"}});
  auto rest = c.Get("/deltas/" + id, {{"Range", "bytes=1000-"}});
  BOOST_REQUIRE(first && rest);
  BOOST_TEST(first->status == 206);
  BOOST_TEST(rest->status == 206);
  std::string delta = first->body + rest->body;
  BOOST_TEST(delta.size() == size);
  BOOST_TEST(rs_apply(basis_path, delta, s.tmp / "regional") == s.big);

  // The same request again: the same id, nothing recomputed (the same file; its mtime moves:
  // it records the last use for the delta cache's eviction).
  struct stat before {}, after {};
  BOOST_REQUIRE(::stat((s.tmp / ("state/public/deltas/" + id)).c_str(), &before) == 0);
  auto again = c.Post("/deltas?target=" + s.big_hex, sig, "application/octet-stream");
  BOOST_REQUIRE(again);
  BOOST_TEST(again->status == 200);
  BOOST_TEST(nlohmann::json::parse(again->body)["id"] == id);
  BOOST_REQUIRE(::stat((s.tmp / ("state/public/deltas/" + id)).c_str(), &after) == 0);
  BOOST_TEST(after.st_ino == before.st_ino);
  auto st = s.status();
  BOOST_TEST(st["deltas"]["computed"].get<uint64_t>() == 1u);
  BOOST_TEST(st["deltas"]["reused"].get<uint64_t>() == 1u);

  // Four centers (four addresses: one delta job per address) ask for the same new delta at
  // once: computed once.
  put(basis_path, basis.substr(0, 700000));
  const std::string sig2 = make_signature(basis_path);
  std::vector<std::string> ids(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      auto cl = s.client();
      cl.set_interface("127.0.0." + std::to_string(2 + i));
      auto rr = cl.Post("/deltas?target=" + s.big_hex, sig2, "application/octet-stream");
      if (rr && rr->status == 200) ids[i] = nlohmann::json::parse(rr->body)["id"];
    });
  for (auto& t : threads) t.join();
  for (const auto& x : ids) BOOST_TEST(x == ids[0]);
  BOOST_TEST(!ids[0].empty());
  st = s.status();
  BOOST_TEST(st["deltas"]["computed"].get<uint64_t>() == 2u);
  BOOST_TEST(st["deltas"]["reused"].get<uint64_t>() == 4u);
  auto d2 = c.Get("/deltas/" + ids[0]);
  BOOST_REQUIRE(d2);
  BOOST_TEST(rs_apply(basis_path, d2->body, s.tmp / "regional") == s.big);
}

BOOST_AUTO_TEST_CASE(delta_endpoint_rejects_bad_requests) {
  Server s;
  auto c = s.client();
  put(s.tmp / "b", s.big.substr(0, 5000));
  const std::string sig = make_signature(s.tmp / "b");

  auto bad = c.Post("/deltas?target=" + s.big_hex, "this is not a signature", "application/octet-stream");
  BOOST_REQUIRE(bad);
  BOOST_TEST(bad->status == 400);
  auto truncated = c.Post("/deltas?target=" + s.big_hex, sig.substr(0, sig.size() / 2 + 3), "application/octet-stream");
  BOOST_REQUIRE(truncated);
  BOOST_TEST(truncated->status == 400);
  auto empty = c.Post("/deltas?target=" + s.big_hex, "", "application/octet-stream");
  BOOST_REQUIRE(empty);
  BOOST_TEST(empty->status == 400);
  auto unknown = c.Post("/deltas?target=" + std::string(64, 'e'), sig, "application/octet-stream");
  BOOST_REQUIRE(unknown);
  BOOST_TEST(unknown->status == 404);
  auto no_target = c.Post("/deltas", sig, "application/octet-stream");
  BOOST_REQUIRE(no_target);
  BOOST_TEST(no_target->status == 400);
  auto bad_target = c.Post("/deltas?target=../../hq.key", sig, "application/octet-stream");
  BOOST_REQUIRE(bad_target);
  BOOST_TEST(bad_target->status == 400);
  std::string huge((64u << 20) + 1, 'x');
  auto too_big = c.Post("/deltas?target=" + s.big_hex, huge, "application/octet-stream");
  BOOST_REQUIRE(too_big);
  BOOST_TEST(too_big->status == 413);
  // Nothing was stored for any of them.
  const bool none = !fs::exists(s.tmp / "state/public/deltas") || fs::is_empty(s.tmp / "state/public/deltas");
  BOOST_TEST(none);
  BOOST_TEST(s.status()["deltas"]["computed"].get<uint64_t>() == 0u);
}

BOOST_AUTO_TEST_CASE(tells_systemd_ready_and_pings_the_watchdog) {
  TempDir tmp("notify");
  std::string sock_path = tmp / "notify.sock";
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", sock_path.c_str());
  BOOST_REQUIRE_EQUAL(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  std::string got;
  {
    Server s({"NOTIFY_SOCKET=" + sock_path, "WATCHDOG_USEC=200000"});
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline && got.find("WATCHDOG=1") == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 200) > 0) {
        char buf[512];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) got.append(buf, static_cast<size_t>(n)).append("\n");
      }
    }
    BOOST_TEST(s.proc->stop(15) == 0);
  }
  char buf[512];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) got.append(buf, static_cast<size_t>(n)).append("\n");
  ::close(fd);
  BOOST_TEST_INFO(got);
  BOOST_TEST(got.find("READY=1") != std::string::npos);
  BOOST_TEST(got.find("STATUS=serving on 127.0.0.1:") != std::string::npos);
  BOOST_TEST(got.find("WATCHDOG=1") != std::string::npos);
  BOOST_TEST(got.find("STOPPING=1") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(clear_error_when_the_port_is_taken) {
  TempDir tmp("busy");
  int l = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE_EQUAL(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  BOOST_REQUIRE_EQUAL(::listen(l, 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
  put(tmp / "distd.toml", "role = \"hq\"\nstate_dir = \"state\"\n[hq]\nlisten = \"127.0.0.1:" +
                              std::to_string(ntohs(a.sin_port)) + "\"\n");
  RunResult r = distd::test::run({"distd", "--config", tmp / "distd.toml"}, {}, {}, 20);
  ::close(l);
  BOOST_TEST(r.status == 12);
  BOOST_TEST(r.err.find("distd: error: cannot listen on 127.0.0.1:") != std::string::npos);
  BOOST_TEST(r.err.find("  what to do: ") != std::string::npos);
}

// Every unit in systemd/ passes `systemd-analyze verify`. It checks that ExecStart= binaries
// exist, so it runs on copies whose /usr/bin/distd and /usr/bin/distctl point into the build.
BOOST_AUTO_TEST_CASE(systemd_units_verify) {
  if (distd::test::run({"systemd-analyze", "--version"}).status != 0) {
    BOOST_TEST_MESSAGE("systemd-analyze is not installed; skipped");
    return;
  }
  TempDir tmp("units");
  std::vector<std::string> units;
  for (auto& f : fs::directory_iterator(distd::test::source_path("systemd"))) {
    std::string ext = f.path().extension();
    if (ext != ".service" && ext != ".timer" && ext != ".socket" && ext != ".path" && ext != ".mount") continue;
    std::string text = slurp(f.path());
    text = std::regex_replace(text, std::regex("/usr/bin/distctl\\b"), distd::test::bin("distctl"));
    text = std::regex_replace(text, std::regex("/usr/bin/distd\\b"), distd::test::bin("distd"));
    put(tmp / f.path().filename().string(), text);
    units.push_back(tmp / f.path().filename().string());
  }
  BOOST_REQUIRE(!units.empty());
  std::vector<std::string> argv = {"systemd-analyze", "verify", "--man=no"};
  argv.insert(argv.end(), units.begin(), units.end());
  RunResult r = distd::test::run(argv, {}, {}, 60);
  BOOST_TEST_INFO("systemd-analyze verify: " << r.out << r.err);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.err.find("distd") == std::string::npos);  // not even a warning about our units
  const std::string unit = slurp(distd::test::source_path("systemd/distd.service"));
  for (const char* key : {"Type=notify", "WatchdogSec=", "Restart=on-failure", "ProtectSystem=strict",
                          "NoNewPrivileges=yes", "User=distd", "ExecStart=/usr/bin/distd --config /etc/distd/distd.toml"})
    BOOST_TEST(unit.find(key) != std::string::npos, key);
}

BOOST_AUTO_TEST_CASE(publishes_periodically_when_configured) {
  Server s({}, "publish_interval = 1");
  put(s.tmp / "src/new.txt", "published by the daemon itself");
  uint64_t version = 0;
  for (int i = 0; i < 100 && version < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto v = s.status()["channels"][0]["version"];
    if (v.is_number()) version = v.get<uint64_t>();
  }
  BOOST_TEST(version == 2u);
  auto r = s.client().Get("/channels/c/latest.manifest");
  BOOST_REQUIRE(r);
  BOOST_TEST(r->body.find("new.txt") != std::string::npos);
  BOOST_TEST(s.proc->stop(15) == 0);
  BOOST_TEST(s.proc->log().find("published c version 2") != std::string::npos);
}

// A second distd on a port the first one holds refuses to start (httplib's SO_REUSEPORT let it
// bind beside the first and answer half the requests), and the first keeps serving.
BOOST_AUTO_TEST_CASE(a_second_distd_on_a_busy_port_refuses_to_start) {
  Server s;
  RunResult r = distd::test::run({"distd", "--config", s.cfg}, {}, {}, 10);
  BOOST_TEST(r.status != 0);
  BOOST_TEST(r.status != 137);  // it exits by itself, it is not left running
  BOOST_TEST(r.err.find("cannot listen on 127.0.0.1:" + std::to_string(s.port)) != std::string::npos);
  BOOST_TEST(s.status()["role"] == "hq");
}

// One access-log line per request ([hq] access_log, default on): address, method and target,
// status, bytes and time; with access_log = false only failures are logged.
BOOST_AUTO_TEST_CASE(every_request_gets_one_access_log_line) {
  Server s;
  auto c = s.client();
  auto r = c.Get(s.obj_url(s.big_hex));
  BOOST_REQUIRE(r);
  BOOST_REQUIRE(c.Get("/status"));
  BOOST_REQUIRE(c.Get("/no/such/thing"));
  // The line is written once the answer is sent: the client may see the answer first.
  auto log_with = [](Process& p, const std::string& needle) {
    for (int i = 0; i < 100 && p.log().find(needle) == std::string::npos; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return p.log();
  };
  // Each request may come on its own connection, served by its own thread: the lines may be
  // written in any order, so wait for each.
  log_with(*s.proc, "\"GET /status\"");
  log_with(*s.proc, "\"GET " + s.obj_url(s.big_hex) + "\"");
  const std::string log = log_with(*s.proc, "/no/such/thing");
  BOOST_TEST(log.find("distd: 127.0.0.1 \"GET " + s.obj_url(s.big_hex) + "\" 200 1048576 B ") != std::string::npos);
  BOOST_TEST(log.find("\"GET /status\" 200 ") != std::string::npos);
  BOOST_TEST(log.find("\"GET /no/such/thing\" 404 ") != std::string::npos);

  Server quiet({}, "access_log = false");
  auto q = quiet.client();
  BOOST_REQUIRE(q.Get("/status"));
  BOOST_REQUIRE(q.Post("/objects", "short", "application/octet-stream"));
  const std::string qlog = log_with(*quiet.proc, "POST /objects");
  BOOST_TEST(qlog.find("\"GET /status\"") == std::string::npos);
  BOOST_TEST(qlog.find("\"POST /objects\" 400 ") != std::string::npos);
}

// distd --check-config reads the config the way a start would (keys, the signing key pair,
// listen) without binding; DISTD_CONFIG names the config when --config is not given.
BOOST_AUTO_TEST_CASE(check_config_and_distd_config) {
  Server s;
  RunResult r = distd::test::run({"distd", "--check-config", "--config", s.cfg});
  BOOST_TEST_INFO(r.err);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.out.find("OK (role hq") != std::string::npos);
  BOOST_TEST(r.out.find("listening on 127.0.0.1:" + std::to_string(s.port)) != std::string::npos);
  r = distd::test::run({"distd", "--check-config"}, {}, {"DISTD_CONFIG=" + s.cfg});
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.out.find("config " + s.cfg) != std::string::npos);
  std::string bad = s.tmp / "bad.toml";
  put(bad, "role = \"hq\"\nstate_dir = \"state\"\n[hq]\nlisten = \"nowhere\"\n");
  r = distd::test::run({"distd", "--check-config", "--config", bad});
  BOOST_TEST(r.status == 2);
  BOOST_TEST(r.err.find("listen = \"nowhere\" is not HOST:PORT") != std::string::npos);
}
