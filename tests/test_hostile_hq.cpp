// A center facing a hostile "HQ" (issue 14): a loopback server that serves HQ's published
// layout honestly, except for the one answer each case makes hostile. In every case the sync
// must end on its own, in a bounded time, with a clear error, having read no more than its caps,
// and with the center's peak RSS (wait4's ru_maxrss of distctl) at most 64 MiB.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;

namespace {

constexpr uint64_t kRssLimitKib = 64 * 1024;

struct Request {
  std::string method, target;
  std::string headers;  // raw, lower-cased
  std::string body;
};

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// The hostile server. handler(fd, request) answers; returning false means "serve it honestly".
class HostileHq {
 public:
  using Handler = std::function<bool(int fd, const Request&)>;

  HostileHq(std::string public_dir, Handler h) : dir_(std::move(public_dir)), handler_(std::move(h)) {
    lfd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    BOOST_REQUIRE(::listen(lfd_, 64) == 0);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~HostileHq() {
    stop_ = true;
    ::shutdown(lfd_, SHUT_RDWR);
    acceptor_.join();
    {
      std::lock_guard<std::mutex> g(mu_);
      for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : workers_) t.join();
    ::close(lfd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  bool stopping() const { return stop_; }
  uint64_t bytes_sent() const { return sent_; }
  int requests(const std::string& prefix) const {
    std::lock_guard<std::mutex> g(mu_);
    int n = 0;
    for (const auto& t : targets_) n += t.rfind(prefix, 0) == 0;
    return n;
  }
  // Sends data, counting it; false when the peer is gone.
  bool send(int fd, std::string_view data) {
    if (!send_all(fd, data)) return false;
    sent_ += data.size();
    return true;
  }

 private:
  void accept_loop() {
    while (!stop_) {
      int fd = ::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      std::lock_guard<std::mutex> g(mu_);
      open_.push_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }

  bool read_request(int fd, std::string& buf, Request& rq) {
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      char tmp[8192];
      ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      buf.append(tmp, static_cast<size_t>(n));
    }
    std::string head = buf.substr(0, end + 2);
    buf.erase(0, end + 4);
    size_t sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
    rq.method = head.substr(0, sp1);
    rq.target = head.substr(sp1 + 1, sp2 - sp1 - 1);
    rq.headers = head;
    for (char& c : rq.headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t cl = rq.headers.find("content-length:");
    size_t want = cl == std::string::npos ? 0 : std::stoul(rq.headers.substr(cl + 15));
    while (buf.size() < want) {
      char tmp[65536];
      ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      buf.append(tmp, static_cast<size_t>(n));
    }
    rq.body = buf.substr(0, want);
    buf.erase(0, want);
    return true;
  }

  // nginx-like: the static layout with Range; POSTs are 405.
  bool honest(int fd, const Request& rq) {
    if (rq.method == "POST") return send(fd, "HTTP/1.1 405 Not Allowed\r\nContent-Length: 0\r\n\r\n");
    std::string path = dir_ + rq.target;
    if (rq.target.find("..") != std::string::npos || !exists(path))
      return send(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    std::string data = read_file(path);
    size_t from = 0;
    size_t r = rq.headers.find("range: bytes=");
    if (r != std::string::npos) from = std::stoul(rq.headers.substr(r + 13));
    if (from > data.size()) return send(fd, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n");
    std::string head = r == std::string::npos
                           ? "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(data.size()) + "\r\n\r\n"
                           : "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes " + std::to_string(from) + "-" +
                                 std::to_string(data.size() - 1) + "/" + std::to_string(data.size()) +
                                 "\r\nContent-Length: " + std::to_string(data.size() - from) + "\r\n\r\n";
    if (!send(fd, head)) return false;
    return rq.method == "HEAD" || send(fd, std::string_view(data).substr(from));
  }

  void serve(int fd) {
    std::string buf;
    Request rq;
    while (!stop_ && read_request(fd, buf, rq)) {
      {
        std::lock_guard<std::mutex> g(mu_);
        targets_.push_back(rq.method + " " + rq.target);
      }
      bool hostile = handler_(fd, rq);
      if (hostile || !honest(fd, rq)) break;  // a hostile answer ends its connection
    }
    ::shutdown(fd, SHUT_RDWR);
    std::lock_guard<std::mutex> g(mu_);
    std::erase(open_, fd);
    ::close(fd);
  }

  std::string dir_;
  Handler handler_;
  int lfd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> sent_{0};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<int> open_;
  std::vector<std::thread> workers_;
  std::vector<std::string> targets_;
};

bool is_manifest_get(const Request& rq) { return rq.method == "GET" && rq.target.find("latest.manifest") != std::string::npos; }
// A GET of an object itself (its stored zstd form, <hex>.zst, is served honestly: these objects
// are random and have none, so the center gets a 404 and asks for the object).
bool is_object_get(const Request& rq) {
  return rq.method == "GET" && rq.target.rfind("/objects/", 0) == 0 && !rq.target.ends_with(".zst");
}

// Sends `chunk` until the peer goes, the server stops, or `limit` bytes are out.
void flood(HostileHq& h, int fd, const std::string& chunk, uint64_t limit = UINT64_MAX) {
  for (uint64_t n = 0; n < limit && !h.stopping(); n += chunk.size())
    if (!h.send(fd, chunk)) return;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// A published channel with one small file (and its first sync done honestly when first_sync).
struct Hostile {
  SyncSite s;
  explicit Hostile(const std::string& extra = "") : s(extra) {
    write_file(s.src() + "/small.txt", "small\n");
    s.publish();
  }
  RunResult sync_against(HostileHq& h, int timeout_s = 120) {
    s.set_hq_url(h.url());
    return s.sync({}, {}, timeout_s);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(manifest_with_a_huge_content_length_is_refused_unread) {
  Hostile t;
  HostileHq h(t.s.public_dir(), [&](int fd, const Request& rq) {
    if (!is_manifest_get(rq)) return false;
    h.send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1100000000\r\n\r\n");
    flood(h, fd, std::string(1 << 20, 'x'), uint64_t(1100) << 20);
    return true;
  });
  auto t0 = std::chrono::steady_clock::now();
  RunResult r = t.sync_against(h);
  BOOST_TEST_MESSAGE("1.1 GB Content-Length: exit " << r.status << " after " << seconds_since(t0) << " s, "
                                                    << h.bytes_sent() << " B sent, peak RSS " << r.max_rss_kib << " KiB");
  BOOST_TEST(r.status != 0);
  BOOST_TEST(r.err.find("max_manifest_size") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("before the body, by its Content-Length") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("signed size") == std::string::npos, r.err);
  BOOST_TEST(r.max_rss_kib <= kRssLimitKib);
  BOOST_TEST(h.requests("GET /channels/c/latest.manifest") == 1);  // not retried: it is no link problem
}

BOOST_AUTO_TEST_CASE(an_endless_manifest_stops_at_max_manifest_size) {
  Hostile t;
  HostileHq h(t.s.public_dir(), [&](int fd, const Request& rq) {
    if (!is_manifest_get(rq)) return false;
    h.send(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");  // no length: ends when the server closes
    flood(h, fd, std::string(1 << 20, 'x'), uint64_t(1100) << 20);
    return true;
  });
  RunResult r = t.sync_against(h);
  BOOST_TEST_MESSAGE("endless manifest: exit " << r.status << ", " << h.bytes_sent() << " B sent, peak RSS "
                                               << r.max_rss_kib << " KiB");
  BOOST_TEST(r.status != 0);
  BOOST_TEST(r.err.find("larger than [regional] max_manifest_size = 33554432 bytes") != std::string::npos, r.err);
  BOOST_TEST(h.bytes_sent() < (uint64_t(64) << 20));  // the cap plus what the sockets buffer
  BOOST_TEST(r.max_rss_kib <= kRssLimitKib);
}

BOOST_AUTO_TEST_CASE(a_gzip_bomb_as_manifest_delta_stops_at_max_manifest_size) {
  Hostile t;
  HostileHq* hp = nullptr;
  std::string bomb;
  bool armed = false;
  HostileHq h(t.s.public_dir(), [&](int fd, const Request& rq) {
    if (!armed || rq.method != "POST" || rq.target.find("latest.manifest") == std::string::npos) return false;
    hp->send(fd, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + std::to_string(bomb.size()) +
                     "\r\n\r\n");
    hp->send(fd, bomb);
    return true;
  });
  hp = &h;
  RunResult first = t.sync_against(h);  // honest: the center now holds a manifest to ask a delta against
  BOOST_REQUIRE_EQUAL(first.status, 0);
  write_file(t.s.src() + "/second.txt", "second\n");
  t.s.publish();
  TempDir tmp("bomb");
  RunResult g = run({"sh", "-c", "head -c 400000000 /dev/zero | gzip -1 > " + (tmp / "bomb.gz")});
  BOOST_REQUIRE_EQUAL(g.status, 0);
  bomb = read_file(tmp / "bomb.gz");
  armed = true;
  RunResult r = t.sync_against(h);
  BOOST_TEST_MESSAGE("gzip bomb (" << bomb.size() << " B inflating to 400 MB): exit " << r.status << ", peak RSS "
                                   << r.max_rss_kib << " KiB");
  BOOST_TEST(r.status != 0);
  BOOST_TEST(r.err.find("max_manifest_size") != std::string::npos, r.err);
  BOOST_TEST(r.max_rss_kib <= kRssLimitKib);
}

BOOST_AUTO_TEST_CASE(a_server_that_ignores_range_and_cuts_cannot_loop_the_center) {
  Hostile t;
  std::string big = random_bytes(5'000'000, 14);
  write_file(t.s.src() + "/big.bin", big);
  t.s.publish();
  HostileHq* hp = nullptr;
  HostileHq h(t.s.public_dir(), [&](int fd, const Request& rq) {
    if (!is_object_get(rq) || read_file(t.s.public_dir() + rq.target).size() != big.size()) return false;
    // Range or not: everything from byte 0, cut after 1 MiB.
    hp->send(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n");
    hp->send(fd, std::string_view(big).substr(0, 1 << 20));
    return true;
  });
  hp = &h;
  auto t0 = std::chrono::steady_clock::now();
  RunResult r = t.sync_against(h);
  int gets = h.requests("GET /objects/");
  BOOST_TEST_MESSAGE("Range ignored, cut at 1 MiB: exit " << r.status << " after " << seconds_since(t0) << " s, "
                                                          << gets << " object GETs, " << h.bytes_sent() << " B sent");
  BOOST_TEST(r.status != 0);       // before: 2,057 reconnects in 45 s, and no end
  BOOST_TEST(gets <= 3 + 3);       // the first try (which got further), then max_attempts = 3 retries
  BOOST_TEST(r.err.find("link to HQ failed while fetching 'big.bin'") != std::string::npos, r.err);
  BOOST_TEST(r.max_rss_kib <= kRssLimitKib);
}

BOOST_AUTO_TEST_CASE(an_error_answer_is_read_no_further_than_4_kib) {
  Hostile t;
  HostileHq* hp = nullptr;
  HostileHq h(t.s.public_dir(), [&](int fd, const Request& rq) {
    if (!is_object_get(rq)) return false;
    hp->send(fd, "HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\n");
    flood(*hp, fd, std::string(1 << 20, 'e'), uint64_t(2) << 30);
    return true;
  });
  hp = &h;
  auto t0 = std::chrono::steady_clock::now();
  RunResult r = t.sync_against(h);
  int gets = h.requests("GET /objects/");
  BOOST_TEST_MESSAGE("endless 500 body: exit " << r.status << " after " << seconds_since(t0) << " s, " << gets
                                               << " GETs, " << h.bytes_sent() << " B sent");
  BOOST_TEST(r.status != 0);
  BOOST_TEST(r.err.find("HQ answered 500") != std::string::npos, r.err);
  // Each answer is cut after 4 KiB: what went out is what loopback sockets buffer (before: 275 MB per attempt).
  BOOST_TEST(h.bytes_sent() < static_cast<uint64_t>(gets) * (uint64_t(16) << 20));
  BOOST_TEST(r.max_rss_kib <= kRssLimitKib);
}

BOOST_AUTO_TEST_CASE(a_drip_above_the_low_speed_limit_ends_at_request_timeout) {
  Hostile t("request_timeout = 3");
  HostileHq* hp = nullptr;
  HostileHq h(t.s.public_dir(), [&](int fd, const Request& rq) {
    if (!is_manifest_get(rq)) return false;
    hp->send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n");
    for (int i = 0; i < 2000 && !hp->stopping(); ++i) {  // 2,000 B/s, above low_speed_limit = 1000
      if (!hp->send(fd, std::string(200, 'd'))) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return true;
  });
  hp = &h;
  auto t0 = std::chrono::steady_clock::now();
  RunResult r = t.sync_against(h);
  double took = seconds_since(t0);
  BOOST_TEST_MESSAGE("2 kB/s drip: exit " << r.status << " after " << took << " s");
  BOOST_TEST(r.status != 0);
  BOOST_TEST(r.err.find("request_timeout = 3 s") != std::string::npos, r.err);
  BOOST_TEST(took < 40.0);  // 3 attempts of 3 s and their pauses (before: the whole 500 s of the drip)
  BOOST_TEST(h.requests("GET /channels/c/latest.manifest") == 3);
}

// HQ busy with other deltas ([hq] max_delta_jobs) answers 503: the center asks again after a
// pause instead of downloading the whole file at once (regional/delta_request.h).
BOOST_AUTO_TEST_CASE(a_busy_delta_service_is_asked_again) {
  Hostile t;
  std::string big = random_bytes(300'000, 21);
  write_file(t.s.src() + "/big.bin", big);
  t.s.publish();
  int busy = 2;
  HostileHq* hp = nullptr;
  HostileHq h(t.s.public_dir(), [&](int fd, const Request& rq) {
    if (rq.method != "POST" || rq.target.rfind("/deltas", 0) != 0 || busy == 0) return false;
    --busy;
    hp->send(fd, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n");
    return true;
  });
  hp = &h;
  BOOST_REQUIRE_EQUAL(t.sync_against(h).status, 0);
  write_file(t.s.src() + "/big.bin", mutate(big, 1000, "changed at HQ"));
  t.s.publish();
  auto t0 = std::chrono::steady_clock::now();
  RunResult r = t.sync_against(h);
  BOOST_TEST_MESSAGE("two 503s: exit " << r.status << " after " << seconds_since(t0) << " s");
  BOOST_TEST(r.status == 0, r.err);
  BOOST_TEST(h.requests("POST /deltas") == 3);  // 503, 503, then the honest 405 of a static server
  BOOST_TEST(seconds_since(t0) >= 9.0);        // two pauses of 5 s
}
