#include "distd/hq/http_limits.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace distd::hq {

namespace {

using Clock = std::chrono::steady_clock;

// What a handler asked of the connection serving it (thread_local: one worker, one connection).
struct ConnectionState {
  bool close = false;
  std::vector<std::shared_ptr<void>> held;
};
thread_local ConnectionState* tl_state = nullptr;

std::string numeric_host(const sockaddr_storage& ss, socklen_t len, int* port) {
  char host[NI_MAXHOST] = {0}, serv[NI_MAXSERV] = {0};
  if (::getnameinfo(reinterpret_cast<const sockaddr*>(&ss), len, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return {};
  if (port) *port = std::atoi(serv);
  return host;
}

std::string peer_of(int sock, int* port = nullptr) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(sock, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return numeric_host(ss, len, port);
}

// Waits for events on sock for at most ms milliseconds; true when one of them came.
bool wait_for(int sock, short events, int64_t ms) {
  pollfd p{sock, events, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, static_cast<int>(std::clamp<int64_t>(ms, 0, 1 << 30)));
  } while (rc < 0 && errno == EINTR);
  return rc > 0 && (p.revents & (events | POLLHUP | POLLERR));
}

// The connection's byte stream for httplib, kept across its keep-alive requests (httplib's own
// SocketStream is made per request and drops what it read ahead). While a request's line and
// headers arrive (until the blank line), every wait is cut at the header deadline and the bytes
// are counted; a read past either fails, and httplib answers 400 or closes.
class DeadlineStream : public httplib::Stream {
 public:
  DeadlineStream(int sock, std::chrono::milliseconds read_timeout, std::chrono::milliseconds write_timeout,
                 const ConnectionLimits& limits)
      : sock_(sock), read_timeout_(read_timeout), write_timeout_(write_timeout), limits_(limits) {}

  // The next bytes start a request: its line and headers must be in by deadline.
  void begin_request(Clock::time_point deadline) {
    in_headers_ = true;
    deadline_ = deadline;
    header_bytes_ = 0;
    tail_ = 0;
    timed_out_ = false;
  }
  bool timed_out() const { return timed_out_; }
  bool overflowed() const { return in_headers_ && header_bytes_ >= limits_.header_bytes; }
  bool buffered() const { return off_ < len_; }

  bool is_readable() const override { return buffered() || wait_for(sock_, POLLIN, wait_ms()); }
  bool is_writable() const override { return wait_for(sock_, POLLOUT, write_timeout_.count()); }

  ssize_t read(char* ptr, size_t size) override {
    if (in_headers_ && header_bytes_ >= limits_.header_bytes) return -1;
    if (!buffered()) {
      const int64_t ms = wait_ms();
      if (!wait_for(sock_, POLLIN, ms)) {
        if (ms < read_timeout_.count()) timed_out_ = true;  // cut by a deadline, not the read timeout
        return -1;
      }
      ssize_t n;
      do {
        n = ::recv(sock_, buf_.data(), buf_.size(), 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      off_ = 0;
      len_ = static_cast<size_t>(n);
    }
    size_t n = std::min(size, len_ - off_);
    std::memcpy(ptr, buf_.data() + off_, n);
    off_ += n;
    if (in_headers_)
      scan_headers(ptr, n);
    else
      body_bytes_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do {
      n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { ip = peer_of(sock_, &port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(sock_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) ip = numeric_host(ss, len, &port);
  }
  socket_t socket() const override { return sock_; }

 private:
  // Headers: the header deadline. A body (whatever follows them): the grace, then
  // body_min_rate on average.
  Clock::time_point deadline() const {
    if (in_headers_) return deadline_;
    const uint64_t rate = std::max<uint64_t>(limits_.body_min_rate, 1);
    return body_start_ + limits_.body_grace + std::chrono::milliseconds(body_bytes_ * 1000 / rate);
  }
  int64_t wait_ms() const {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline() - Clock::now()).count();
    return std::min<int64_t>(read_timeout_.count(), std::max<int64_t>(left, 0));
  }
  // Counts header bytes and notices the blank line that ends them ("\r\n\r\n").
  void scan_headers(const char* p, size_t n) {
    header_bytes_ += n;
    for (size_t i = 0; i < n && in_headers_; ++i) {
      tail_ = (tail_ << 8) | static_cast<unsigned char>(p[i]);
      if ((tail_ & 0xffffffffu) == 0x0d0a0d0au) {
        in_headers_ = false;
        body_start_ = Clock::now();
        body_bytes_ = n - i - 1;
      }
    }
  }

  int sock_;
  std::chrono::milliseconds read_timeout_, write_timeout_;
  const ConnectionLimits& limits_;
  std::vector<char> buf_ = std::vector<char>(16 * 1024);
  size_t off_ = 0, len_ = 0;
  bool in_headers_ = false, timed_out_ = false;
  Clock::time_point deadline_{}, body_start_{};
  uint64_t body_bytes_ = 0;
  size_t header_bytes_ = 0;
  uint64_t tail_ = 0;
};

// After an answer that left a request body unread: stop sending, then read and drop what the
// client still sends (for at most 5 s, until it pauses 1 s or closes), so that closing does not
// reset the connection before the client has read the answer (a close with unread data sends
// RST, and a client that writes its whole body before reading would never see the answer).
// Nothing read is kept, so the cost is a worker for 5 s, not memory.
void linger_and_drain(int sock) {
  ::shutdown(sock, SHUT_WR);
  const auto until = Clock::now() + std::chrono::seconds(5);
  std::vector<char> buf(64 * 1024);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0 || !wait_for(sock, POLLIN, std::min<int64_t>(left, 1000))) break;
    ssize_t n = ::recv(sock, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
  }
}

}  // namespace

std::optional<BodyRefusal> refuse_body(const httplib::Request& req, uint64_t limit) {
  const std::string& m = req.method;
  if (m != "POST" && m != "PUT" && m != "PATCH" && m != "DELETE" && m != "PRI") return std::nullopt;
  if (m != "POST") return BodyRefusal{405, m + " is not served here; HQ answers GET, HEAD and POST"};
  if (req.has_header("Transfer-Encoding"))
    return BodyRefusal{411, "request bodies need a Content-Length (Transfer-Encoding is refused)"};
  const std::string enc = req.get_header_value("Content-Encoding");
  if (!enc.empty() && enc != "identity")
    return BodyRefusal{415, "Content-Encoding '" + enc + "' is refused: send the body uncompressed"};
  if (!req.has_header("Content-Length")) return BodyRefusal{411, "POST needs a Content-Length"};
  const std::string len = req.get_header_value("Content-Length");
  if (len.empty() || len.size() > 19 || len.find_first_not_of("0123456789") != std::string::npos)
    return BodyRefusal{400, "Content-Length '" + len + "' is not a number of bytes"};
  const uint64_t n = std::stoull(len);
  if (n > limit)
    return BodyRefusal{413, "the body of " + std::to_string(n) + " bytes is over this endpoint's limit of " +
                                std::to_string(limit) + " bytes"};
  return std::nullopt;
}

std::shared_ptr<void> JobSlots::try_acquire(const std::string& peer) {
  std::lock_guard<std::mutex> g(mu_);
  if (held_.size() >= size_ || held_.count(peer)) return nullptr;
  held_[peer] = 1;
  return std::shared_ptr<void>(this, [peer](JobSlots* s) {
    std::lock_guard<std::mutex> lk(s->mu_);
    s->held_.erase(peer);
  });
}

unsigned JobSlots::in_use() const {
  std::lock_guard<std::mutex> g(mu_);
  return static_cast<unsigned>(held_.size());
}

void LimitedServer::close_after_answer(httplib::Response& res) {
  res.set_header("Connection", "close");
  if (tl_state) tl_state->close = true;
}

void LimitedServer::hold_until_answered(std::shared_ptr<void> token) {
  if (tl_state) tl_state->held.push_back(std::move(token));
}

void LimitedServer::release_held() {
  if (tl_state) tl_state->held.clear();
}

bool LimitedServer::widen_backlog(int n) {
  // Linux: listen(2) on a listening socket changes its backlog (capped by net.core.somaxconn).
  return ::listen(svr_sock_, n) == 0;
}

bool LimitedServer::enter(const std::string& peer) {
  if (std::find(limits_.uncapped.begin(), limits_.uncapped.end(), peer) != limits_.uncapped.end()) return true;
  std::lock_guard<std::mutex> g(mu_);
  unsigned& n = per_peer_[peer];
  if (n >= limits_.per_peer) {
    if (n == 0) per_peer_.erase(peer);
    return false;
  }
  ++n;
  return true;
}

void LimitedServer::leave(const std::string& peer) {
  if (std::find(limits_.uncapped.begin(), limits_.uncapped.end(), peer) != limits_.uncapped.end()) return;
  std::lock_guard<std::mutex> g(mu_);
  auto it = per_peer_.find(peer);
  if (it != per_peer_.end() && --it->second == 0) per_peer_.erase(it);
}

bool LimitedServer::process_and_close_socket(socket_t sock) {
  const std::string peer = peer_of(sock);
  if (enter(peer)) {
    serve_connection(sock);
    leave(peer);
  } else {
    ++refused_;
    static const char kBusy[] =
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 10\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    (void)::send(sock, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return true;
}

void LimitedServer::serve_connection(socket_t sock) {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  DeadlineStream strm(sock, milliseconds(read_timeout_sec_ * 1000 + read_timeout_usec_ / 1000),
                      milliseconds(write_timeout_sec_ * 1000 + write_timeout_usec_ / 1000), limits_);
  const milliseconds idle = std::min<milliseconds>(seconds(keep_alive_timeout_sec_), limits_.header_timeout);
  for (size_t count = keep_alive_max_count_; count > 0 && svr_sock_ != INVALID_SOCKET; --count) {
    const auto start = Clock::now();
    if (!strm.buffered() && !wait_for(sock, POLLIN, idle.count())) return;  // idle keep-alive: close
    strm.begin_request(start + limits_.header_timeout);
    ConnectionState state;
    tl_state = &state;
    bool closed = false;
    bool ok = process_request(strm, count == 1, closed, nullptr);
    tl_state = nullptr;
    state.held.clear();  // the answer is written: free the slots it held
    if (strm.timed_out()) ++deadline_cuts_;
    if (state.close || strm.overflowed()) {
      linger_and_drain(sock);
      return;
    }
    if (!ok || closed) return;
  }
}

}  // namespace distd::hq
