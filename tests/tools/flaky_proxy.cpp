// flaky_proxy: a seeded, fault-injecting TCP proxy for tests (the kernel here has no tc netem).
//
// One process, one thread, one poll() loop. Every byte between a client and the upstream
// passes through per-direction queues, so the proxy can cap bandwidth (one token bucket shared
// by all connections and both directions), add latency, cut a connection with a TCP reset at
// exact, seeded offsets of the downstream byte stream, black-hole the link for a while, or
// refuse connections. A text control port lets a test change all of that between phases.
// See docs/testing.md ("The flaky link").

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <limits>
#include <list>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

constexpr size_t kReadSize = 64 * 1024;       // largest single read
constexpr size_t kMaxQueue = 256 * 1024;      // per direction, before we stop reading
constexpr auto kCutDrain = std::chrono::milliseconds(200);  // let written bytes reach the client
constexpr int64_t kNoOffset = std::numeric_limits<int64_t>::max();

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

FILE* g_log = stderr;

void logf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void logf(const char* fmt, ...) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  ::gmtime_r(&ts.tv_sec, &t);
  char stamp[64];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &t);
  std::fprintf(g_log, "%s.%03ldZ flaky_proxy: ", stamp, ts.tv_nsec / 1'000'000);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(g_log, fmt, ap);
  va_end(ap);
  std::fputc('\n', g_log);
  std::fflush(g_log);
}

void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Closes with a TCP reset (SO_LINGER 0): what a client sees when the link dies mid-transfer.
void close_reset(int fd) {
  if (fd < 0) return;
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

int listen_on(const std::string& host, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 512) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

struct Chunk {
  TimePoint ready;
  std::string data;
  size_t off = 0;
};

// One direction of a connection: bytes read from src wait in q until they may go to dst.
struct Pipe {
  int* src = nullptr;
  int* dst = nullptr;
  std::deque<Chunk> q;
  size_t queued = 0;
  bool eof = false;   // src sent FIN
  bool shut = false;  // we passed the FIN on (shutdown(dst, SHUT_WR))
};

struct Conn {
  uint64_t id = 0;
  int client = -1;
  int upstream = -1;
  bool connecting = true;
  Pipe up;    // client -> upstream
  Pipe down;  // upstream -> client
  bool cutting = false;  // a reset is pending: waiting (briefly) for written bytes to drain
  TimePoint cut_deadline;
  bool dead = false;
  Conn() {
    up.src = &client;
    up.dst = &upstream;
    down.src = &upstream;
    down.dst = &client;
  }
};

struct Ctl {
  int fd = -1;
  std::string in;
  bool dead = false;
};

struct Options {
  std::string listen;
  std::string upstream;
  uint64_t seed = 1;
  double rate = 0;
  int delay_ms = 0;
  int64_t cut_after = 0;
  int64_t cut_every = 0;
  double cut_prob = 0;
  int64_t blackhole_after = 0;
  double blackhole_secs = 0;
  bool down = false;
  int control = 0;
  std::string log;
};

class Proxy {
 public:
  explicit Proxy(const Options& o) : o_(o), rng_(o.seed), prob_rng_(o.seed ^ 0x9e3779b97f4a7c15ULL) {}

  int run();

 private:
  // --- configuration that the control port may change
  void set_rate(double r) {
    o_.rate = r;
    burst_ = std::max(2048.0, r / 10);
    threshold_ = std::min(burst_ / 2, 4096.0);
    tokens_ = std::min(tokens_, burst_);
  }
  void set_cut_every(int64_t n) {
    o_.cut_every = n;
    next_every_ = n > 0 ? bytes_down_ + jittered(n) : kNoOffset;
  }
  int64_t jittered(int64_t n) {
    // Seeded +/-25% so cut points differ from each other but repeat for the same seed.
    std::uniform_real_distribution<double> d(0.75, 1.25);
    return std::max<int64_t>(1, static_cast<int64_t>(std::llround(static_cast<double>(n) * d(rng_))));
  }
  int64_t next_event_offset() const {
    int64_t n = kNoOffset;
    if (cut_after_pending_) n = std::min(n, o_.cut_after);
    if (o_.cut_every > 0) n = std::min(n, next_every_);
    if (bh_after_pending_) n = std::min(n, o_.blackhole_after);
    return n;
  }

  bool blackholed(TimePoint now) const { return now < bh_until_; }
  void start_blackhole(double secs, const char* why);
  void start_cut(Conn& c, const char* why);
  void cut_all(const char* why);
  void reset_conn(Conn& c);
  void close_conn(Conn& c);

  void accept_clients(TimePoint now);
  void accept_control();
  void handle_control(Ctl& k);
  std::string command(const std::string& line);
  std::string stats_json() const;

  bool want_read(const Pipe& p) const { return !p.eof && p.queued < kMaxQueue; }
  bool tokens_ok() const { return o_.rate <= 0 || tokens_ >= threshold_; }
  static bool want_write(const Pipe& p, TimePoint now) { return !p.q.empty() && p.q.front().ready <= now; }
  void do_read(Conn& c, Pipe& p, TimePoint now);
  void do_write(Conn& c, Pipe& p, bool downstream, TimePoint now);
  void after_downstream_write(Conn& c, bool chunk_done);
  void finish_connect(Conn& c);
  void pass_fins(Conn& c);

  Options o_;
  std::mt19937_64 rng_;       // cut-every jitter only, so its offsets repeat for a seed
  std::mt19937_64 prob_rng_;  // cut-prob draws
  int lfd_ = -1, cfd_ = -1;
  std::string up_host_;
  sockaddr_storage up_addr_{};
  socklen_t up_len_ = 0;
  std::list<std::unique_ptr<Conn>> conns_;
  std::list<Ctl> ctls_;
  uint64_t next_id_ = 1;

  double tokens_ = 0, burst_ = 0, threshold_ = 0;
  TimePoint last_refill_;
  TimePoint bh_until_;
  TimePoint accept_pause_until_;

  bool cut_after_pending_ = false;
  bool bh_after_pending_ = false;
  int64_t next_every_ = kNoOffset;

  // stats
  int64_t bytes_up_ = 0, bytes_down_ = 0;
  int64_t connections_ = 0, refused_ = 0, cuts_ = 0, blackholes_ = 0;
  std::vector<int64_t> cut_offsets_;
};

void Proxy::start_blackhole(double secs, const char* why) {
  auto now = Clock::now();
  if (secs <= 0) {
    if (blackholed(now)) logf("blackhole ended early (%s)", why);
    bh_until_ = now;
    return;
  }
  bh_until_ = now + std::chrono::microseconds(static_cast<int64_t>(secs * 1e6));
  ++blackholes_;
  logf("blackhole start: %.3f s (%s) at bytes_down=%lld", secs, why, static_cast<long long>(bytes_down_));
}

void Proxy::start_cut(Conn& c, const char* why) {
  if (c.cutting || c.dead) return;
  c.cutting = true;
  c.cut_deadline = Clock::now() + kCutDrain;
  c.up.q.clear();
  c.up.queued = 0;
  c.down.q.clear();
  c.down.queued = 0;
  ++cuts_;
  if (cut_offsets_.size() < 10000) cut_offsets_.push_back(bytes_down_);
  logf("cut conn=%llu (%s) at bytes_down=%lld", static_cast<unsigned long long>(c.id), why,
       static_cast<long long>(bytes_down_));
}

void Proxy::cut_all(const char* why) {
  for (auto& c : conns_) start_cut(*c, why);
}

void Proxy::reset_conn(Conn& c) {
  close_reset(c.client);
  close_reset(c.upstream);
  c.client = c.upstream = -1;
  c.dead = true;
}

void Proxy::close_conn(Conn& c) {
  if (c.client >= 0) ::close(c.client);
  if (c.upstream >= 0) ::close(c.upstream);
  c.client = c.upstream = -1;
  c.dead = true;
}

void Proxy::accept_clients(TimePoint now) {
  for (int i = 0; i < 64; ++i) {
    int fd = ::accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        logf("accept: %s; pausing accepts for 100 ms", std::strerror(errno));
        accept_pause_until_ = now + std::chrono::milliseconds(100);
      }
      return;
    }
    ++connections_;
    if (o_.down) {
      ++refused_;
      close_reset(fd);
      continue;
    }
    int ufd = ::socket(up_addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ufd < 0) {
      logf("socket: %s", std::strerror(errno));
      close_reset(fd);
      continue;
    }
    set_nodelay(fd);
    set_nodelay(ufd);
    int rc = ::connect(ufd, reinterpret_cast<sockaddr*>(&up_addr_), up_len_);
    if (rc != 0 && errno != EINPROGRESS) {
      logf("connect to upstream %s: %s", o_.upstream.c_str(), std::strerror(errno));
      ::close(ufd);
      close_reset(fd);
      continue;
    }
    auto c = std::make_unique<Conn>();
    c->id = next_id_++;
    c->client = fd;
    c->upstream = ufd;
    c->connecting = rc != 0;
    conns_.push_back(std::move(c));
  }
}

void Proxy::finish_connect(Conn& c) {
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(c.upstream, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err == EINPROGRESS) return;
  if (err != 0) {
    logf("connect to upstream %s: %s", o_.upstream.c_str(), std::strerror(err));
    reset_conn(c);
    return;
  }
  c.connecting = false;
}

void Proxy::do_read(Conn& c, Pipe& p, TimePoint now) {
  static char buf[kReadSize];
  size_t want = std::min(kReadSize, kMaxQueue - p.queued);
  if (o_.rate > 0) want = std::min(want, static_cast<size_t>(std::max(0.0, std::floor(tokens_))));
  if (want == 0) return;
  ssize_t n = ::recv(*p.src, buf, want, 0);
  if (n > 0) {
    if (o_.rate > 0) tokens_ -= static_cast<double>(n);
    p.q.push_back(Chunk{now + std::chrono::milliseconds(o_.delay_ms), std::string(buf, static_cast<size_t>(n)), 0});
    p.queued += static_cast<size_t>(n);
  } else if (n == 0) {
    p.eof = true;
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    reset_conn(c);  // the peer reset (or worse): pass the reset on
  }
}

void Proxy::after_downstream_write(Conn& c, bool chunk_done) {
  const char* cut = nullptr;
  if (cut_after_pending_ && bytes_down_ >= o_.cut_after) {
    cut_after_pending_ = false;
    cut = "cut-after";
  }
  if (o_.cut_every > 0 && bytes_down_ >= next_every_) {
    while (next_every_ <= bytes_down_) next_every_ += jittered(o_.cut_every);
    cut = "cut-every";
  }
  if (bh_after_pending_ && bytes_down_ >= o_.blackhole_after) {
    bh_after_pending_ = false;
    start_blackhole(o_.blackhole_secs, "blackhole-after");
  }
  if (!cut && chunk_done && o_.cut_prob > 0) {
    std::bernoulli_distribution d(std::min(1.0, o_.cut_prob));
    if (d(prob_rng_)) cut = "cut-prob";
  }
  if (cut) start_cut(c, cut);
}

void Proxy::do_write(Conn& c, Pipe& p, bool downstream, TimePoint now) {
  while (!c.dead && !c.cutting && !p.q.empty() && p.q.front().ready <= now && !blackholed(now)) {
    Chunk& ch = p.q.front();
    size_t len = ch.data.size() - ch.off;
    if (downstream) {
      // Stop exactly at the next cut/blackhole offset so those offsets are reproducible.
      int64_t ev = next_event_offset();
      if (ev != kNoOffset && ev > bytes_down_) len = std::min<size_t>(len, static_cast<size_t>(ev - bytes_down_));
    }
    ssize_t n = ::send(*p.dst, ch.data.data() + ch.off, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      reset_conn(c);
      return;
    }
    ch.off += static_cast<size_t>(n);
    p.queued -= static_cast<size_t>(n);
    bool done = ch.off == ch.data.size();
    if (done) p.q.pop_front();
    if (downstream) {
      bytes_down_ += n;
      after_downstream_write(c, done);
    } else {
      bytes_up_ += n;
    }
    if (static_cast<size_t>(n) < len) return;  // socket buffer full
  }
}

void Proxy::pass_fins(Conn& c) {
  for (Pipe* p : {&c.up, &c.down}) {
    if (p->eof && p->q.empty() && !p->shut && *p->dst >= 0) {
      ::shutdown(*p->dst, SHUT_WR);
      p->shut = true;
    }
  }
  if (c.up.shut && c.down.shut) close_conn(c);
}

void Proxy::accept_control() {
  for (;;) {
    int fd = ::accept4(cfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    ctls_.push_back(Ctl{fd, {}, false});
  }
}

std::string Proxy::stats_json() const {
  nlohmann::json j;
  j["bytes_up"] = bytes_up_;
  j["bytes_down"] = bytes_down_;
  j["connections"] = connections_;
  size_t active = 0;
  for (auto& c : conns_) active += c->dead ? 0 : 1;
  j["active"] = active;
  j["refused"] = refused_;
  j["cuts"] = cuts_;
  j["cut_offsets"] = cut_offsets_;
  j["blackholes"] = blackholes_;
  j["blackholed"] = blackholed(Clock::now());
  j["down"] = o_.down;
  j["rate"] = o_.rate;
  j["cut_every"] = o_.cut_every;
  return j.dump();
}

std::string Proxy::command(const std::string& line) {
  std::istringstream in(line);
  std::string cmd;
  in >> cmd;
  if (cmd.empty()) return "err empty command";
  if (cmd == "down") {
    o_.down = true;
    logf("control: down");
    cut_all("down");
    return "ok";
  }
  if (cmd == "up") {
    o_.down = false;
    logf("control: up");
    return "ok";
  }
  if (cmd == "cut") {
    cut_all("control");
    return "ok";
  }
  if (cmd == "blackhole") {
    double secs = -1;
    if (!(in >> secs) || secs < 0) return "err usage: blackhole SECS";
    start_blackhole(secs, "control");
    return "ok";
  }
  if (cmd == "stats") return stats_json();
  if (cmd == "set") {
    std::string key;
    double v = -1;
    if (!(in >> key >> v) || v < 0) return "err usage: set rate|delay-ms|cut-after|cut-every|cut-prob VALUE";
    if (key == "rate") {
      set_rate(v);
    } else if (key == "delay-ms") {
      o_.delay_ms = static_cast<int>(v);
    } else if (key == "cut-after") {
      o_.cut_after = static_cast<int64_t>(v);
      cut_after_pending_ = o_.cut_after > bytes_down_;
    } else if (key == "cut-every") {
      set_cut_every(static_cast<int64_t>(v));
    } else if (key == "cut-prob") {
      o_.cut_prob = v;
    } else {
      return "err unknown setting '" + key + "' (rate, delay-ms, cut-after, cut-every, cut-prob)";
    }
    logf("control: set %s %s", key.c_str(), in.str().substr(in.str().find(key) + key.size()).c_str());
    return "ok";
  }
  return "err unknown command '" + cmd + "' (down, up, cut, blackhole SECS, set KEY VALUE, stats)";
}

void Proxy::handle_control(Ctl& k) {
  char buf[4096];
  ssize_t n = ::recv(k.fd, buf, sizeof buf, 0);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
    k.dead = true;
    return;
  }
  if (n < 0) return;
  k.in.append(buf, static_cast<size_t>(n));
  size_t nl;
  while ((nl = k.in.find('\n')) != std::string::npos) {
    std::string line = k.in.substr(0, nl);
    k.in.erase(0, nl + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string answer = command(line) + "\n";
    // Answers are short; a control client that does not read them loses them.
    (void)::send(k.fd, answer.data(), answer.size(), MSG_NOSIGNAL);
  }
  if (k.in.size() > 65536) k.dead = true;
}

int Proxy::run() {
  // Upstream address, resolved once.
  auto colon = o_.upstream.rfind(':');
  if (colon == std::string::npos) {
    logf("--upstream must be HOST:PORT, got '%s'", o_.upstream.c_str());
    return 2;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string host = o_.upstream.substr(0, colon), port = o_.upstream.substr(colon + 1);
  if (!host.empty() && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0 || !res) {
    logf("cannot resolve upstream '%s': %s", o_.upstream.c_str(), ::gai_strerror(rc));
    return 2;
  }
  std::memcpy(&up_addr_, res->ai_addr, res->ai_addrlen);
  up_len_ = res->ai_addrlen;
  ::freeaddrinfo(res);

  std::string lhost = "127.0.0.1";
  int lport = 0;
  try {
    auto c = o_.listen.rfind(':');
    if (c != std::string::npos) {
      lhost = o_.listen.substr(0, c);
      lport = std::stoi(o_.listen.substr(c + 1));
    } else {
      lport = std::stoi(o_.listen);
    }
  } catch (...) {
    logf("--listen must be PORT or HOST:PORT, got '%s'", o_.listen.c_str());
    return 2;
  }
  lfd_ = listen_on(lhost, lport);
  if (lfd_ < 0) {
    logf("cannot listen on %s:%d: %s", lhost.c_str(), lport, std::strerror(errno));
    return 1;
  }
  if (o_.control > 0) {
    cfd_ = listen_on("127.0.0.1", o_.control);
    if (cfd_ < 0) {
      logf("cannot listen on control port 127.0.0.1:%d: %s", o_.control, std::strerror(errno));
      return 1;
    }
  }

  set_rate(o_.rate);
  tokens_ = burst_;
  last_refill_ = Clock::now();
  cut_after_pending_ = o_.cut_after > 0;
  bh_after_pending_ = o_.blackhole_after > 0 && o_.blackhole_secs > 0;
  set_cut_every(o_.cut_every);
  logf("listening on %s:%d -> %s (seed %llu, rate %.0f B/s, delay %d ms, cut-after %lld, cut-every %lld, "
       "cut-prob %g, blackhole-after %lld for %g s%s%s)",
       lhost.c_str(), local_port(lfd_), o_.upstream.c_str(), static_cast<unsigned long long>(o_.seed), o_.rate,
       o_.delay_ms, static_cast<long long>(o_.cut_after), static_cast<long long>(o_.cut_every), o_.cut_prob,
       static_cast<long long>(o_.blackhole_after), o_.blackhole_secs, o_.down ? ", down" : "",
       cfd_ >= 0 ? (", control 127.0.0.1:" + std::to_string(local_port(cfd_))).c_str() : "");

  // SIGTERM/SIGINT are blocked except inside ppoll, so a signal can never slip in between the
  // check of g_stop and the wait.
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t block, wait_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  ::sigprocmask(SIG_BLOCK, &block, &wait_mask);
  sigdelset(&wait_mask, SIGTERM);
  sigdelset(&wait_mask, SIGINT);

  enum Kind { kListen, kControlListen, kControl, kClient, kUpstream };
  struct Slot {
    Kind kind;
    Conn* conn;
    Ctl* ctl;
  };
  std::vector<pollfd> pfds;
  std::vector<Slot> slots;

  bool was_blackholed = false;
  while (!g_stop) {
    TimePoint now = Clock::now();
    if (o_.rate > 0) {
      double dt = std::chrono::duration<double>(now - last_refill_).count();
      tokens_ = std::min(burst_, tokens_ + dt * o_.rate);
    }
    last_refill_ = now;
    bool bh = blackholed(now);
    if (was_blackholed && !bh) logf("blackhole end");
    was_blackholed = bh;

    // Pending resets: once the client has everything we wrote (or the drain time is up).
    for (auto& c : conns_) {
      if (!c->cutting || c->dead) continue;
      int outq = 0;
      if (::ioctl(c->client, SIOCOUTQ, &outq) != 0 || outq == 0 || now >= c->cut_deadline) reset_conn(*c);
    }
    for (auto& c : conns_)
      if (!bh && !c->dead && !c->cutting && !c->connecting) pass_fins(*c);
    conns_.remove_if([](const std::unique_ptr<Conn>& c) { return c->dead; });
    ctls_.remove_if([](const Ctl& k) {
      if (k.dead) ::close(k.fd);
      return k.dead;
    });

    pfds.clear();
    slots.clear();
    TimePoint wake = now + std::chrono::seconds(1);
    if (now >= accept_pause_until_) {
      pfds.push_back({lfd_, POLLIN, 0});
      slots.push_back({kListen, nullptr, nullptr});
    } else {
      wake = std::min(wake, accept_pause_until_);
    }
    if (cfd_ >= 0) {
      pfds.push_back({cfd_, POLLIN, 0});
      slots.push_back({kControlListen, nullptr, nullptr});
    }
    for (auto& k : ctls_) {
      pfds.push_back({k.fd, POLLIN, 0});
      slots.push_back({kControl, nullptr, &k});
    }
    if (bh) wake = std::min(wake, bh_until_);
    bool token_blocked = false;
    for (auto& cp : conns_) {
      Conn& c = *cp;
      if (c.cutting) {
        wake = std::min(wake, now + std::chrono::milliseconds(5));
        continue;
      }
      if (c.connecting) {
        pfds.push_back({c.upstream, POLLOUT, 0});
        slots.push_back({kUpstream, &c, nullptr});
        continue;
      }
      if (bh) continue;  // nothing moves; fds are not even watched, so no busy loop on HUP
      short ce = 0, ue = 0;
      for (Pipe* p : {&c.up, &c.down}) {
        short& se = p == &c.up ? ce : ue;
        short& de = p == &c.up ? ue : ce;
        if (want_read(*p)) {
          if (tokens_ok()) se |= POLLIN;
          else token_blocked = true;
        }
        if (want_write(*p, now)) de |= POLLOUT;
        else if (!p->q.empty()) wake = std::min(wake, p->q.front().ready);
      }
      if (ce) {
        pfds.push_back({c.client, ce, 0});
        slots.push_back({kClient, &c, nullptr});
      }
      if (ue) {
        pfds.push_back({c.upstream, ue, 0});
        slots.push_back({kUpstream, &c, nullptr});
      }
    }
    if (token_blocked && o_.rate > 0) {
      double secs = std::max(0.0, (threshold_ - tokens_) / o_.rate);
      wake = std::min(wake, now + std::chrono::microseconds(static_cast<int64_t>(secs * 1e6) + 1000));
    }

    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wake - now).count();
    if (ns < 0) ns = 0;
    timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    int rc = ::ppoll(pfds.data(), pfds.size(), &ts, &wait_mask);
    if (rc < 0) {
      if (errno == EINTR) continue;
      logf("poll: %s", std::strerror(errno));
      return 1;
    }
    now = Clock::now();
    if (o_.rate > 0) {
      double dt = std::chrono::duration<double>(now - last_refill_).count();
      tokens_ = std::min(burst_, tokens_ + dt * o_.rate);
      last_refill_ = now;
    }
    for (size_t i = 0; i < pfds.size(); ++i) {
      short re = pfds[i].revents;
      if (!re) continue;
      Slot& s = slots[i];
      switch (s.kind) {
        case kListen:
          accept_clients(now);
          break;
        case kControlListen:
          accept_control();
          break;
        case kControl:
          handle_control(*s.ctl);
          break;
        case kClient:
        case kUpstream: {
          Conn& c = *s.conn;
          if (c.dead || c.cutting) break;
          if (c.connecting) {
            finish_connect(c);
            break;
          }
          bool is_client = s.kind == kClient;
          Pipe& rp = is_client ? c.up : c.down;  // the pipe this fd feeds
          Pipe& wp = is_client ? c.down : c.up;  // the pipe that writes to this fd
          if ((pfds[i].events & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR))) do_read(c, rp, now);
          if (!c.dead && (pfds[i].events & POLLOUT) && (re & (POLLOUT | POLLHUP | POLLERR)))
            do_write(c, wp, is_client, now);
          break;
        }
      }
    }
  }
  logf("exiting on signal: bytes_up=%lld bytes_down=%lld connections=%lld cuts=%lld",
       static_cast<long long>(bytes_up_), static_cast<long long>(bytes_down_), static_cast<long long>(connections_),
       static_cast<long long>(cuts_));
  for (auto& c : conns_) close_conn(*c);
  for (auto& k : ctls_) ::close(k.fd);
  ::close(lfd_);
  if (cfd_ >= 0) ::close(cfd_);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"flaky_proxy: a seeded fault-injecting TCP proxy for tests (see docs/testing.md)"};
  app.add_option("--listen", o.listen, "PORT or HOST:PORT to accept clients on (host defaults to 127.0.0.1)")
      ->required();
  app.add_option("--upstream", o.upstream, "HOST:PORT to forward to")->required();
  app.add_option("--seed", o.seed, "seed for cut jitter and --cut-prob (default 1)");
  app.add_option("--rate", o.rate, "bandwidth cap in bytes/s, one bucket for all connections and both directions")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--delay-ms", o.delay_ms, "added latency: each chunk is forwarded MS after it arrived")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--cut-after", o.cut_after, "reset the connection carrying downstream byte N (once)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--cut-every", o.cut_every, "reset connections every N downstream bytes (+/-25% seeded jitter)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--cut-prob", o.cut_prob, "probability of a reset after each downstream chunk")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--blackhole-after", o.blackhole_after, "after N downstream bytes, stop forwarding (once)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--blackhole-secs", o.blackhole_secs, "how long the black hole lasts")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--down", o.down, "start with the link down: every connection is reset at once");
  app.add_option("--control", o.control, "control port on 127.0.0.1 (text: down, up, cut, blackhole SECS, set, stats)");
  app.add_option("--log", o.log, "append the event log here instead of stderr");
  CLI11_PARSE(app, argc, argv);
  if (!o.log.empty()) {
    g_log = std::fopen(o.log.c_str(), "a");
    if (!g_log) {
      std::fprintf(stderr, "flaky_proxy: cannot open log %s: %s\n", o.log.c_str(), std::strerror(errno));
      return 1;
    }
  }
  if (o.blackhole_after > 0 && o.blackhole_secs <= 0) {
    logf("--blackhole-after needs --blackhole-secs");
    return 2;
  }
  Proxy p(o);
  return p.run();
}
