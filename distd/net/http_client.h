// A small HTTP client for the flaky link (libcurl easy interface): bounded GETs into memory,
// resumable downloads into a file, and POSTs of a blob.
//
// Every transfer has a connect timeout, a low-speed abort (a stalled link fails instead of
// hanging), an overall deadline (a server that drips just above the low-speed limit cannot hold a
// request forever), an optional receive-rate cap, and a stop flag. Nothing here trusts the
// server: every answer is capped at a byte limit the caller derives from signed sizes (a
// Content-Length over it is refused before the body is read), and an error answer's body is
// read no further than 4 KiB.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "manifest/keys.h"

namespace distd {

// Who signs this client's POSTs (manifest/request_auth.h): HQ's smart endpoints answer only
// enrolled sites.
struct RequestSigner {
  std::string site;
  SecretKey key;
};

struct HttpOptions {
  long connect_timeout_s = 30;
  long low_speed_limit = 64;     // bytes/s; below this for low_speed_time seconds -> abort
  long low_speed_time = 60;      // seconds
  long request_timeout_s = 0;    // the most one request may take, all of it; 0 = no deadline
  uint64_t max_recv_speed = 0;   // bytes/s per transfer; 0 = unlimited
  std::string user_agent = "distd/0.1";
  const std::atomic<bool>* stop = nullptr;      // when it becomes true, the transfer aborts
  std::function<void(uint64_t)> on_wire_bytes;  // body bytes as they arrive (progress)
  std::shared_ptr<const RequestSigner> signer;  // signs every POST; none = unsigned
};

struct HttpAnswer {
  long status = 0;
  std::string body;
  std::string content_encoding;  // the answer's Content-Encoding ("" when none), as sent
};

// The outcome of download_to_fd.
struct DownloadResult {
  uint64_t size = 0;       // bytes now in the file (== its durable offset)
  uint64_t received = 0;   // body bytes received in this call
  bool restarted = false;  // the server ignored Range (200): the file was restarted from 0
};

class HttpClient {
 public:
  // base_url: "http://hq.example:8080" (a trailing '/' is ignored).
  HttpClient(std::string base_url, HttpOptions opts);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  std::string url(const std::string& path) const;  // path starts with '/'

  // GET into memory. Returns any HTTP status with its body (an error body is cut at 4 KiB).
  // Throws Error{corrupt} when a 2xx body exceeds max_bytes (the transfer is aborted at the
  // limit), Error{network} when the transfer fails (naming the URL and what to do).
  // accept_encoding, when not empty, is sent as "Accept-Encoding:"; the body comes as sent (the
  // caller decodes it; HttpAnswer::content_encoding says how). max_bytes caps the sent form.
  HttpAnswer get(const std::string& path, uint64_t max_bytes, const std::string& accept_encoding = {});
  // HEAD: only the status. Throws Error{network} when HQ cannot be reached.
  long head(const std::string& path);
  // POST body (application/octet-stream). Returns status and body (capped at max_answer, counted
  // after decoding). accept_gzip: offer "Accept-Encoding: gzip" and decode a gzip answer.
  // With options().signer, every POST carries a signed Authorization header; a 401 that brings
  // HQ's time (X-Distd-Time) far from this clock is sent once more, signed with HQ's time (a
  // center without a real-time clock may boot with a wrong one).
  HttpAnswer post(const std::string& path, const std::string& body, uint64_t max_answer, bool accept_gzip = false);

  // Downloads path into fd, whose first `offset` bytes are already there (durable). Sends
  // "Range: bytes=offset-" when offset > 0 and checks the 206's Content-Range start; a 200
  // restarts the file from 0. Never lets the file grow past max_total bytes: the transfer is
  // aborted and Error{mismatch} thrown. Every 2 s the file is fsynced and
  // on_durable(new_offset) called (also once at the end, even on failure), so a journal can
  // record how far a cut or a kill may resume; write-back of each 8 MiB is started as it
  // arrives, so those fsyncs find little to do. Throws Error{not_found} on 404,
  // Error{network} on other failures, Error{io,no_space} when the file cannot be written.
  DownloadResult download_to_fd(const std::string& path, int fd, const std::string& file_for_errors,
                                uint64_t offset, uint64_t max_total,
                                const std::function<void(uint64_t)>& on_durable);

  // POST body and hand a 2xx answer's body to sink as it arrives (the sink throws to abort,
  // e.g. Error{mismatch} when it gets more than it expects). Returns the status; a non-2xx
  // answer's body (at most 4 KiB) is returned in HttpAnswer::body and not given to sink.
  // Throws Error{network} when the transfer fails (whatever the sink took is kept by it).
  // accept_encoding, when not empty, is sent as "Accept-Encoding:"; the sink then gets the body
  // as sent (not decoded here: HttpAnswer::content_encoding says how, once the answer is in;
  // content_encoding_seen, when given, is set from the headers before the sink sees a byte).
  HttpAnswer post_stream(const std::string& path, const std::string& body,
                         const std::function<void(const char*, size_t)>& sink,
                         const std::string& accept_encoding = {}, std::string* content_encoding_seen = nullptr);

  // Body bytes received by this client so far (all transfers), as they crossed the wire: a
  // gzip-encoded answer counts compressed (headers are not counted).
  uint64_t bytes_received() const { return received_total_; }
  uint64_t bytes_sent() const { return sent_total_; }
  HttpOptions& options() { return opts_; }

  struct Transfer;  // one request's state (implementation detail, public for the C callbacks)
  // Holds the caller back so that all transfers of this client together stay under
  // max_recv_speed (curl's own limit averages per transfer over seconds and overshoots on
  // short transfers). Sleeping here stalls the socket reads, so TCP slows the sender.
  void pace(size_t len);

 private:
  void setup(Transfer& t, const std::string& path);
  long perform(Transfer& t, const std::string& what);
  // POSTs body (application/octet-stream, no "Expect: 100-continue") with t already set up.
  HttpAnswer send_post(Transfer& t, const std::string& path, const std::string& body);
  // After a POST's answer: true when it was refused for this clock and is worth one more try
  // (clock_offset_ is then HQ's time minus this clock's).
  bool learn_hq_clock(const Transfer& t);

  std::string base_;
  HttpOptions opts_;
  void* curl_ = nullptr;  // CURL*
  uint64_t received_total_ = 0;
  uint64_t sent_total_ = 0;
  int64_t clock_offset_ = 0;  // seconds to add to this clock when signing (learned from HQ)
  std::chrono::steady_clock::time_point pace_start_{}, pace_last_{};
  uint64_t pace_bytes_ = 0;
};

}  // namespace distd
