// cpp-httplib's Server with the limits a public HQ needs against slow or flooding peers
// (docs/hq.md "Limits"): an absolute deadline for a request's line and headers (httplib's read
// timeout is per receive, so one byte every few seconds held a worker for ever), a cap on the
// header bytes, a cap on the open connections of each client address, and the means for a
// handler to close the connection after its answer or to hold a slot until the answer is sent.
//
// Relies on Server::process_and_close_socket being virtual (cpp-httplib 0.11.4) and on
// Server::process_request reading the request through the Stream it is given.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace distd::hq {

struct ConnectionLimits {
  std::chrono::milliseconds header_timeout{10'000};  // request line + headers, from the first wait
  unsigned per_peer = 8;                             // open connections per client address
  std::vector<std::string> uncapped;                 // addresses without that cap (a local proxy)
  size_t header_bytes = 64 * 1024;                   // request line + headers
  uint64_t body_min_rate = 1024;                     // bytes/s a body must average, after...
  std::chrono::milliseconds body_grace{30'000};      // ...this much time that is free
};

// A counting semaphore that never waits, with at most one slot per client address:
// try_acquire() or be refused. Thread-safe.
class JobSlots {
 public:
  explicit JobSlots(unsigned n) : size_(n ? n : 1) {}
  // Returns a token that frees the slot when the last copy goes, or nullptr when all are taken
  // or peer holds one already.
  std::shared_ptr<void> try_acquire(const std::string& peer);
  unsigned in_use() const;
  unsigned size() const { return size_; }

 private:
  const unsigned size_;
  mutable std::mutex mu_;
  std::map<std::string, unsigned> held_;  // peer -> 1
};

// Why a request's body is refused from its headers alone, before a byte of it is read.
struct BodyRefusal {
  int status = 0;  // 405, 411, 413, 415 or 400
  std::string message;
};
// For a request whose method carries a body (POST, PUT, PATCH, DELETE): refuses every method but
// POST (405), Transfer-Encoding (411: its length is not known in advance), a missing or malformed
// Content-Length (411, 400), a Content-Encoding other than identity (415: it could expand past the
// limit) and a Content-Length over limit (413). Returns nullopt for a body that may be read, and
// for methods without one.
std::optional<BodyRefusal> refuse_body(const httplib::Request& req, uint64_t limit);

class LimitedServer : public httplib::Server {
 public:
  explicit LimitedServer(ConnectionLimits limits) : limits_(limits) {}

  // For handlers (pre-routing included), on the worker thread serving the request:
  // the connection is closed after this answer (its unread body, if any, is never parsed as a
  // request); "Connection: close" is added to res.
  static void close_after_answer(httplib::Response& res);
  // token (e.g. from JobSlots::try_acquire) is released by release_held(), or at the latest
  // once this request's answer is written.
  static void hold_until_answered(std::shared_ptr<void> token);
  // Releases the tokens the current request holds; for the post-routing handler, which runs
  // just before the answer is written (a client that reads it may come again at once).
  static void release_held();

  // Sets the listening socket's accept queue to n connections (httplib listens with 5, so a
  // burst of connections, a flood's or 30 centers', dropped SYNs and delayed real clients by a
  // second or more). REQUIRES: bind_to_port() succeeded. Returns false when listen(2) fails.
  bool widen_backlog(int n);

  uint64_t refused_connections() const { return refused_.load(); }  // over the per-peer cap
  // Requests cut because their headers missed the deadline or their body came too slowly.
  uint64_t deadline_cuts() const { return deadline_cuts_.load(); }

 private:
  bool process_and_close_socket(socket_t sock) override;
  // Serves the requests of one connection (keep-alive) until it closes.
  void serve_connection(socket_t sock);
  bool enter(const std::string& peer);  // false: over the cap
  void leave(const std::string& peer);

  ConnectionLimits limits_;
  std::mutex mu_;
  std::map<std::string, unsigned> per_peer_;
  std::atomic<uint64_t> refused_{0}, deadline_cuts_{0};
};

}  // namespace distd::hq
