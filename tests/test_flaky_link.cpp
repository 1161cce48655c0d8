// The test tree's flaky link (tests/tools/flaky_proxy.cpp) and private nginx do what
// docs/testing.md says: bandwidth cap, reproducible seeded cuts, black holes, down/up, half-close,
// no busy loop; nginx serves ranges. Clients are curl and plain sockets, as a user would run them.
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/flaky_link.h"
#include "tests/support/nginx_server.h"
#include "tests/support/test_support.h"

using namespace distd::test;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// curl -C - until it exits 0; returns every attempt's exit status.
std::vector<int> fetch_resuming(const std::string& url, const std::string& out, int max_attempts = 30,
                                std::vector<std::string> extra = {}) {
  std::vector<int> statuses;
  for (int i = 0; i < max_attempts; ++i) {
    std::vector<std::string> argv = {"curl", "-sS", "-C", "-", "--max-time", "20", "-o", out};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(url);
    auto r = run(argv, {}, {}, 30);
    statuses.push_back(r.status);
    if (r.status == 0) break;
  }
  return statuses;
}

// Served tree with one random file of `size` bytes at /f.bin.
struct Site {
  TempDir tmp{"site"};
  std::string data;
  std::unique_ptr<NginxServer> nginx;
  explicit Site(size_t size, uint64_t seed = 1) : data(random_bytes(size, seed)) {
    write_file(tmp / "www/f.bin", data);
    nginx = std::make_unique<NginxServer>(tmp / "www");
  }
  std::string out(const std::string& name) const { return tmp / name; }
};

long cpu_ticks(int pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream in(stat.substr(stat.rfind(')') + 2));
  std::string f;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15; ++i) {  // fields 14 and 15 of proc(5)
    in >> f;
    if (i == 14) utime = std::stol(f);
    if (i == 15) stime = std::stol(f);
  }
  return utime + stime;
}

int connect_to(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return -1;
  }
  timeval tv{10, 0};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return s;
}

bool send_all(int s, const std::string& d) {
  size_t off = 0;
  while (off < d.size()) {
    ssize_t n = ::send(s, d.data() + off, d.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string recv_all(int s) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(s, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// A tiny server that reads each connection until the client's FIN (half-close), then answers
// "<bytes received> <sum of bytes>" and closes. It serves connections one after another.
class CountServer {
 public:
  CountServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 128);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~CountServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  static std::string answer_for(const std::string& d) {
    uint64_t sum = 0;
    for (unsigned char c : d) sum += c;
    return std::to_string(d.size()) + " " + std::to_string(sum);
  }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      timeval tv{10, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string got = recv_all(c);
      send_all(c, answer_for(got));
      ::close(c);
    }
  }
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(nginx_serves_ranges_and_refuses_post) {
  Site site(1'000'000);
  auto out = site.out("tail");
  auto r = run({"curl", "-sS", "-o", out, "-w", "%{http_code}", "-H", "Range: bytes=600000-",
                site.nginx->url() + "/f.bin"});
  BOOST_TEST(r.status == 0, r.err);
  BOOST_TEST(r.out == "206");
  BOOST_TEST((read_file(out) == site.data.substr(600000)));

  r = run({"curl", "-sS", "-o", out, "-w", "%{http_code}", site.nginx->url() + "/f.bin"});
  BOOST_TEST(r.out == "200");
  BOOST_TEST((read_file(out) == site.data));

  r = run({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "sig",
           site.nginx->url() + "/deltas?target=00"});
  BOOST_TEST(r.out == "405");
  r = run({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", site.nginx->url() + "/objects/no/such"});
  BOOST_TEST(r.out == "404");
  BOOST_TEST(site.nginx->access_log().find("\"GET /f.bin HTTP/1.1\" 206") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(rate_cap_holds_within_30_percent) {
  Site site(900'000);
  const double rate = 300'000;
  FlakyLink link(site.nginx->port(), {.seed = 3, .rate = rate});
  auto t0 = Clock::now();
  auto r = run({"curl", "-sS", "-o", site.out("f"), "--max-time", "20", link.url() + "/f.bin"});
  double secs = seconds_since(t0);
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  BOOST_TEST((read_file(site.out("f")) == site.data));
  double measured = static_cast<double>(site.data.size()) / secs;
  BOOST_TEST_MESSAGE("rate cap " << rate << " B/s, measured " << measured << " B/s over " << secs << " s");
  BOOST_TEST(measured > rate * 0.7);
  BOOST_TEST(measured < rate * 1.3);
  auto s = link.stats();
  BOOST_TEST(s.bytes_down >= static_cast<int64_t>(site.data.size()));
  BOOST_TEST(s.bytes_up > 0);
  BOOST_TEST(s.connections == 1);

  // The cap can be changed between phases.
  link.set_rate(1'000'000);
  t0 = Clock::now();
  r = run({"curl", "-sS", "-o", site.out("g"), "--max-time", "20", link.url() + "/f.bin"});
  secs = seconds_since(t0);
  BOOST_TEST(r.status == 0, r.err);
  BOOST_TEST(secs < 2.0, "at 1 MB/s, 900 kB took " << secs << " s (3 s at the old cap)");
  BOOST_TEST(secs > 0.9 * 0.7);
}

BOOST_AUTO_TEST_CASE(cut_every_cuts_at_seeded_reproducible_offsets) {
  Site site(3'000'000);
  auto download = [&](uint64_t seed) {
    FlakyLink link(site.nginx->port(), {.seed = seed, .cut_every = 400'000});
    auto out = site.out("cut-" + std::to_string(seed));
    ::unlink(out.c_str());
    auto statuses = fetch_resuming(link.url() + "/f.bin", out);
    BOOST_TEST(statuses.back() == 0);
    BOOST_TEST((read_file(out) == site.data), "resumed download differs, seed " << seed);
    auto s = link.stats();
    BOOST_TEST(s.cuts >= 5);
    BOOST_TEST(s.cuts == static_cast<int64_t>(statuses.size()) - 1, "every cut costs exactly one curl run");
    // Every byte before a cut reached the client (the reset waits for them), so resuming never
    // refetches: only response headers come on top of the file.
    BOOST_TEST(s.bytes_down < static_cast<int64_t>(site.data.size()) + 1000 * static_cast<int64_t>(statuses.size()));
    // Finished and cut connections are all gone: nothing lingers half-open in the proxy.
    for (int i = 0; i < 40 && s.active != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      s = link.stats();
    }
    BOOST_TEST(s.active == 0);
    for (auto off : s.cut_offsets)
      BOOST_TEST(link.log().find("at bytes_down=" + std::to_string(off)) != std::string::npos);
    return s.cut_offsets;
  };
  auto a = download(7);
  auto b = download(7);
  auto c = download(8);
  BOOST_TEST(a == b, "same seed, same cut points");
  BOOST_TEST(a != c, "another seed, other cut points");
  // Points are 400 kB +/- 25% apart.
  for (size_t i = 1; i < a.size(); ++i) {
    BOOST_TEST(a[i] - a[i - 1] >= 300'000);
    BOOST_TEST(a[i] - a[i - 1] <= 500'000);
  }
}

BOOST_AUTO_TEST_CASE(cut_after_and_control_cut) {
  Site site(1'000'000);
  FlakyLink link(site.nginx->port(), {.cut_after = 250'000});
  auto out = site.out("f");
  auto statuses = fetch_resuming(link.url() + "/f.bin", out);
  BOOST_TEST((read_file(out) == site.data));
  BOOST_TEST(statuses.size() == 2u);  // cut once, then resumed to the end
  auto s = link.stats();
  BOOST_TEST(s.cuts == 1);
  BOOST_TEST((s.cut_offsets == std::vector<int64_t>{250'000}));

  // "cut" resets what is open right now: a slow download dies with a reset.
  link.set_rate(100'000);
  std::thread cutter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    link.cut();
  });
  auto r = run({"curl", "-sS", "-o", site.out("g"), "--max-time", "20", link.url() + "/f.bin"});
  cutter.join();
  BOOST_TEST(r.status == 56, "curl: " << r.status << " " << r.err);  // recv failure: connection reset
  BOOST_TEST(link.stats().cuts == 2);
}

BOOST_AUTO_TEST_CASE(blackhole_stalls_then_recovers) {
  Site site(1'000'000);
  FlakyLink link(site.nginx->port(), {.blackhole_after = 300'000, .blackhole_secs = 2.5});
  // A patient client hangs through the black hole and finishes after it.
  auto t0 = Clock::now();
  auto r = run({"curl", "-sS", "-o", site.out("f"), "--max-time", "20", link.url() + "/f.bin"});
  double secs = seconds_since(t0);
  BOOST_TEST(r.status == 0, r.err);
  BOOST_TEST((read_file(site.out("f")) == site.data));
  BOOST_TEST(secs >= 2.4, "took " << secs << " s");
  BOOST_TEST(secs < 10);
  BOOST_TEST(link.stats().blackholes == 1);
  BOOST_TEST(link.log().find("blackhole start: 2.500 s (blackhole-after) at bytes_down=300000") != std::string::npos);

  // A client with a low-speed limit gives up inside a black hole: new connections are accepted
  // but never answered. After it, the same client resumes.
  link.blackhole(3);
  BOOST_TEST(link.stats().blackholed);
  t0 = Clock::now();
  r = run({"curl", "-sS", "-o", site.out("g"), "--speed-limit", "1000", "--speed-time", "1", "--max-time", "20",
           link.url() + "/f.bin"});
  BOOST_TEST(r.status == 28, "curl: " << r.status << " " << r.err);  // operation too slow
  BOOST_TEST(seconds_since(t0) < 3);
  while (link.stats().blackholed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto statuses = fetch_resuming(link.url() + "/f.bin", site.out("g"), 3, {"--speed-limit", "1000", "--speed-time", "1"});
  BOOST_TEST(statuses.back() == 0);
  BOOST_TEST((read_file(site.out("g")) == site.data));
}

BOOST_AUTO_TEST_CASE(down_and_up_via_control) {
  Site site(200'000);
  FlakyLink link(site.nginx->port(), {.down = true});
  auto get = [&] {
    return run({"curl", "-sS", "-o", site.out("f"), "--max-time", "5", link.url() + "/f.bin"}).status;
  };
  BOOST_TEST(get() != 0);
  link.up();
  BOOST_TEST(get() == 0);
  BOOST_TEST((read_file(site.out("f")) == site.data));
  link.down();
  BOOST_TEST(get() != 0);
  auto s = link.stats();
  BOOST_TEST(s.down);
  BOOST_TEST(s.refused == 2);
  link.up();
  BOOST_TEST(get() == 0);
  BOOST_CHECK_THROW(link.control("fly away"), std::runtime_error);
  BOOST_TEST(link.stop() == 0);  // SIGTERM: clean exit
  BOOST_TEST(link.log().find("exiting on signal") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(half_close_many_connections_latency_and_no_busy_loop) {
  CountServer server;
  FlakyLink link(server.port(), {.seed = 5, .delay_ms = 100});

  // 40 connections at once, each sends its data, half-closes, and reads the answer.
  std::vector<int> socks;
  std::vector<std::string> sent;
  for (int i = 0; i < 40; ++i) {
    int s = connect_to(link.port());
    BOOST_TEST_REQUIRE(s >= 0);
    socks.push_back(s);
    sent.push_back(random_bytes(50'000 + 1000 * static_cast<size_t>(i), static_cast<uint64_t>(i)));
  }
  auto t0 = Clock::now();
  for (size_t i = 0; i < socks.size(); ++i) {
    BOOST_TEST(send_all(socks[i], sent[i]));
    ::shutdown(socks[i], SHUT_WR);
  }
  for (size_t i = 0; i < socks.size(); ++i) {
    BOOST_TEST(recv_all(socks[i]) == CountServer::answer_for(sent[i]));
    ::close(socks[i]);
  }
  // 100 ms each way, at the very least.
  BOOST_TEST(seconds_since(t0) >= 0.2);

  // Idle connections, one of them half-closed, and a black hole: the proxy sleeps.
  int idle1 = connect_to(link.port()), idle2 = connect_to(link.port());
  ::shutdown(idle2, SHUT_WR);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  long before = cpu_ticks(link.pid());
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  link.blackhole(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  long used = cpu_ticks(link.pid()) - before;
  BOOST_TEST(used <= 10, "proxy used " << used << " clock ticks while idle");
  ::close(idle1);
  ::close(idle2);
  auto s = link.stats();
  BOOST_TEST(s.connections == 42);
  BOOST_TEST(s.cuts == 0);
}
