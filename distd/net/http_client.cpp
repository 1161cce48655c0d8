#include "distd/net/http_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <ctime>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/fault.h"
#include "manifest/fs.h"
#include "manifest/request_auth.h"

namespace distd {

namespace {

// fsync + journal every 2 s: a kill or power cut costs at most 2 s of transfer, whatever the
// link's speed. (Every 1 MiB, as before, held a fast link up with an fsync and a WAL commit per
// MiB: a third of the loopback throughput of a 1 GiB download.)
constexpr auto kSyncInterval = std::chrono::seconds(2);
constexpr uint64_t kWritebackBytes = uint64_t(8) << 20;  // start write-back of every 8 MiB at once
constexpr long kRecvBuffer = 256 * 1024;                 // curl's receive buffer (default 16 KiB)
constexpr size_t kErrorBodyMax = 4096;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// A request's extra headers, freed however the request ends.
// Every request's own headers. It drops curl's "Accept: */*" (and a POST drops its Content-Type):
// distd reads neither, and on a link of tens of kbit/s every request's bytes count.
struct HeaderList {
  curl_slist* list = nullptr;
  HeaderList() { add("Accept:"); }
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;
  ~HeaderList() { curl_slist_free_all(list); }
  void add(const std::string& header) { list = curl_slist_append(list, header.c_str()); }
};

}  // namespace

struct HttpClient::Transfer {
  HttpClient* self = nullptr;
  // answer
  long status = 0;
  std::optional<uint64_t> range_start;  // from Content-Range
  std::optional<uint64_t> range_total;  // from Content-Range ("bytes */N" of a 416, or ".../N")
  std::optional<int64_t> hq_time;       // from X-Distd-Time (a refused signed request)
  std::string body;                     // memory mode, or an error body in file mode
  std::string content_encoding;         // from Content-Encoding
  std::string accept_encoding;          // sent as Accept-Encoding when not empty
  // limits
  uint64_t max_bytes = 0;
  bool over_cap = false;
  bool error_cut = false;  // an error answer's body reached kErrorBodyMax: the rest is not read
  bool bad_range = false;
  bool decided = false;
  std::exception_ptr error;
  // file mode
  bool to_file = false;
  int fd = -1;
  std::string file;
  uint64_t offset = 0;  // where the request started
  uint64_t pos = 0;     // bytes in the file
  uint64_t durable = 0;
  bool restarted = false;
  uint64_t received = 0;
  uint64_t written_back = 0;  // write-back started up to here
  std::chrono::steady_clock::time_point last_sync = std::chrono::steady_clock::now();
  const std::function<void(uint64_t)>* on_durable = nullptr;
  // stream mode
  const std::function<void(const char*, size_t)>* sink = nullptr;

  bool ok_status() const { return status >= 200 && status < 300; }

  void commit() {
    if (pos == durable) return;
    sync_file(fd, file);
    fault_point("chunk_written");
    if (on_durable && *on_durable) (*on_durable)(pos);
    durable = pos;
    last_sync = std::chrono::steady_clock::now();
  }
};

namespace {

size_t header_cb(char* data, size_t size, size_t n, void* ud) {
  auto* t = static_cast<HttpClient::Transfer*>(ud);
  std::string_view line(data, size * n);
  if (starts_with_ci(line, "HTTP/")) {
    auto sp = line.find(' ');
    t->status = sp == std::string_view::npos ? 0 : std::atol(std::string(line.substr(sp + 1, 3)).c_str());
    t->range_start.reset();
    t->range_total.reset();
    t->hq_time.reset();
    t->content_encoding.clear();
  } else if (starts_with_ci(line, "content-encoding:")) {
    t->content_encoding = trim(line.substr(17));
  } else if (starts_with_ci(line, "x-distd-time:")) {
    if (auto v = parse_u64(trim(line.substr(13))); v && *v < (uint64_t(1) << 62)) t->hq_time = static_cast<int64_t>(*v);
  } else if (starts_with_ci(line, "content-range:")) {
    std::string v = trim(line.substr(14));  // "bytes 100-999/1000"
    if (auto slash = v.find('/'); starts_with_ci(v, "bytes ") && slash != std::string::npos)
      t->range_total = parse_u64(trim(std::string_view(v).substr(slash + 1)));
    if (starts_with_ci(v, "bytes ")) {
      auto dash = v.find('-');
      if (dash != std::string::npos) {
        try {
          t->range_start = std::stoull(v.substr(6, dash - 6));
        } catch (...) {
          t->range_start.reset();
        }
      }
    }
  }
  return size * n;
}

size_t write_cb(char* data, size_t size, size_t n, void* ud) {
  auto* t = static_cast<HttpClient::Transfer*>(ud);
  size_t len = size * n;
  try {
    t->received += len;
    if (t->self->options().on_wire_bytes) t->self->options().on_wire_bytes(len);
    t->self->pace(len);
    if (!t->ok_status()) {  // an error page: keep a little for the message, read no more
      t->body.append(data, std::min(len, kErrorBodyMax - t->body.size()));
      if (t->body.size() < kErrorBodyMax) return len;
      t->error_cut = true;
      return 0;
    }
    if (t->sink) {
      (*t->sink)(data, len);
      return len;
    }
    if (!t->to_file) {
      if (t->body.size() + len > t->max_bytes) {
        t->over_cap = true;
        return 0;
      }
      // Grow by doubling until half the cap, then straight to the cap: the old buffer and the
      // copy of it together never exceed the cap, and no buffer exceeds it (an endless answer
      // peaked at 83 MiB of RSS for a 32 MiB cap; now cap + ~19 MiB). A fresh string, since
      // reserve() on a grown one rounds up to twice its old capacity.
      if (t->body.size() + len > t->body.capacity()) {
        uint64_t want = std::max<uint64_t>(t->body.size() + len, 2 * t->body.capacity());
        if (want > t->max_bytes / 2) want = t->max_bytes;
        std::string grown;
        grown.reserve(want);
        grown.append(t->body);
        t->body.swap(grown);
      }
      t->body.append(data, len);
      return len;
    }
    if (!t->decided) {
      t->decided = true;
      if (t->status == 206) {
        if (!t->range_start || *t->range_start != t->offset) {
          t->bad_range = true;
          return 0;
        }
      } else if (t->pos > 0) {  // 200 to a Range request: the server sends everything again
        if (::ftruncate(t->fd, 0) != 0) throw_errno("cannot truncate", t->file, errno);
        if (::lseek(t->fd, 0, SEEK_SET) != 0) throw_errno("cannot seek", t->file, errno);
        sync_file(t->fd, t->file);
        t->pos = t->durable = t->written_back = 0;
        t->restarted = true;
        if (t->on_durable && *t->on_durable) (*t->on_durable)(0);
      }
    }
    if (t->pos + len > t->max_bytes) {
      t->over_cap = true;
      return 0;
    }
    write_all(t->fd, std::string_view(data, len), t->file);
    t->pos += len;
    if (t->pos - t->written_back >= kWritebackBytes) {
      // Asynchronous: the disk writes while the network delivers; the next fsync waits less.
      ::sync_file_range(t->fd, static_cast<off_t>(t->written_back), static_cast<off_t>(t->pos - t->written_back),
                        SYNC_FILE_RANGE_WRITE);
      t->written_back = t->pos;
    }
    if (std::chrono::steady_clock::now() - t->last_sync >= kSyncInterval) t->commit();
    return len;
  } catch (...) {
    t->error = std::current_exception();
    return 0;
  }
}

int xferinfo_cb(void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<HttpClient::Transfer*>(ud);
  const auto* stop = t->self->options().stop;
  return stop && stop->load() ? 1 : 0;
}

}  // namespace

HttpClient::HttpClient(std::string base_url, HttpOptions opts) : base_(std::move(base_url)), opts_(std::move(opts)) {
  while (!base_.empty() && base_.back() == '/') base_.pop_back();
  global_init();
  curl_ = curl_easy_init();
  if (!curl_) throw Error(Errc::internal, "curl_easy_init failed", "out of memory?");
}

HttpClient::~HttpClient() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

std::string HttpClient::url(const std::string& path) const { return base_ + path; }

void HttpClient::pace(size_t len) {
  if (opts_.max_recv_speed == 0) return;
  using namespace std::chrono;
  auto now = steady_clock::now();
  // A pause of over a second starts a new window: idle time is not banked as credit.
  if (pace_bytes_ == 0 || now - pace_last_ > seconds(1)) {
    pace_start_ = now;
    pace_bytes_ = 0;
  }
  pace_bytes_ += len;
  auto due = pace_start_ + duration_cast<steady_clock::duration>(
                               duration<double>(static_cast<double>(pace_bytes_) / static_cast<double>(opts_.max_recv_speed)));
  while (now < due && !(opts_.stop && opts_.stop->load())) {
    std::this_thread::sleep_for(std::min<steady_clock::duration>(due - now, milliseconds(100)));
    now = steady_clock::now();
  }
  pace_last_ = now;
}

void HttpClient::setup(Transfer& t, const std::string& path) {
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);  // keeps the connection cache
  t.self = this;
  curl_easy_setopt(c, CURLOPT_URL, url(path).c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, opts_.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, opts_.low_speed_limit);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, opts_.low_speed_time);
  if (opts_.request_timeout_s > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT, opts_.request_timeout_s);
  if (opts_.max_recv_speed > 0)
    curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE, static_cast<curl_off_t>(opts_.max_recv_speed));
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, opts_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
}

long HttpClient::perform(Transfer& t, const std::string& what) {
  CURL* c = static_cast<CURL*>(curl_);
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(c);
  // Bytes on the wire: for a gzip answer (CURLOPT_ACCEPT_ENCODING) the body as it came,
  // compressed, not the decoded bytes t.received counts (CURLINFO_SIZE_DOWNLOAD_T is the
  // encoded size; for other answers it equals t.received).
  curl_off_t wire = 0;
  received_total_ += curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &wire) == CURLE_OK && wire >= 0
                         ? static_cast<uint64_t>(wire)
                         : t.received;
  if (t.to_file && t.ok_status() && !t.bad_range) {
    try {
      t.commit();  // whatever arrived before a cut is kept for the next resume
    } catch (...) {
      if (!t.error) t.error = std::current_exception();
    }
  }
  if (t.error) std::rethrow_exception(t.error);
  if (rc == CURLE_FILESIZE_EXCEEDED) {  // Content-Length over the cap: nothing of the body was read
    if (t.ok_status())
      t.over_cap = true;
    else
      rc = CURLE_OK;  // an error answer: its status is what counts
  }
  if (t.error_cut && rc == CURLE_WRITE_ERROR) rc = CURLE_OK;  // we stopped reading an error page
  if (t.over_cap && t.to_file)  // a download has a signed size: more is not the signed object
    throw Error(Errc::mismatch,
                "HQ sent more than the " + std::to_string(t.max_bytes) + " bytes allowed for " + what + " (" +
                    url(what) + ")",
                "the server's copy does not match the signed size; it is refetched on the next run, and "
                "if this persists republish at HQ");
  if (t.over_cap)  // an answer read into memory has only distd's own limit
    throw Error(Errc::corrupt,
                "HQ's answer for " + url(what) + " is larger than " + std::to_string(t.max_bytes) +
                    " bytes, the most distd accepts for it (the transfer was stopped " +
                    (t.received == 0 ? std::string("before the body, by its Content-Length)") : std::string("there)")),
                "check what HQ serves at that address; the next run tries again");
  if (t.bad_range)
    throw Error(Errc::network,
                "HQ answered a resume request for " + url(what) + " with the wrong byte range",
                "check the proxy or web server in front of HQ: it must honour Range requests");
  if (rc != CURLE_OK) {
    if (rc == CURLE_ABORTED_BY_CALLBACK && opts_.stop && opts_.stop->load())
      throw Error(Errc::network, "transfer of " + url(what) + " stopped: distd is shutting down",
                  "the next run resumes where this one stopped");
    std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    std::string hint = "check the link to HQ and [regional] hq_url; the next run resumes where this one stopped";
    if (rc == CURLE_OPERATION_TIMEDOUT)
      hint = "the link stalled (less than " + std::to_string(opts_.low_speed_limit) + " B/s for " +
             std::to_string(opts_.low_speed_time) + " s, no connection within " +
             std::to_string(opts_.connect_timeout_s) + " s" +
             (opts_.request_timeout_s > 0
                  ? ", or the request took longer than [regional] request_timeout = " +
                        std::to_string(opts_.request_timeout_s) + " s"
                  : std::string()) +
             "); " + hint;
    throw Error(Errc::network, "transfer of " + url(what) + " failed: " + detail, hint);
  }
  return t.status;
}

HttpAnswer HttpClient::get(const std::string& path, uint64_t max_bytes, const std::string& accept_encoding) {
  Transfer t;
  t.max_bytes = max_bytes;
  t.accept_encoding = accept_encoding;
  setup(t, path);
  curl_easy_setopt(static_cast<CURL*>(curl_), CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_bytes));
  HeaderList headers;
  if (!t.accept_encoding.empty()) headers.add("Accept-Encoding: " + t.accept_encoding);
  curl_easy_setopt(static_cast<CURL*>(curl_), CURLOPT_HTTPHEADER, headers.list);
  perform(t, path);
  return {t.status, std::move(t.body), t.content_encoding};
}

long HttpClient::head(const std::string& path) {
  Transfer t;
  setup(t, path);
  curl_easy_setopt(static_cast<CURL*>(curl_), CURLOPT_NOBODY, 1L);
  HeaderList headers;
  curl_easy_setopt(static_cast<CURL*>(curl_), CURLOPT_HTTPHEADER, headers.list);
  return perform(t, path);
}

HttpAnswer HttpClient::send_post(Transfer& t, const std::string& path, const std::string& body) {
  CURL* c = static_cast<CURL*>(curl_);
  HeaderList headers;
  headers.add("Content-Type:");
  headers.add("Expect:");
  if (!t.accept_encoding.empty()) headers.add("Accept-Encoding: " + t.accept_encoding);
  if (opts_.signer) {
    const int64_t now = static_cast<int64_t>(::time(nullptr)) + clock_offset_;
    headers.add("Authorization: " + sign_request(opts_.signer->site, opts_.signer->key, now, "POST", path, body));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.list);
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  perform(t, path);
  sent_total_ += body.size();
  return {t.status, std::move(t.body), t.content_encoding};
}

bool HttpClient::learn_hq_clock(const Transfer& t) {
  if (t.status != 401 || !opts_.signer || !t.hq_time) return false;
  const int64_t offset = *t.hq_time - static_cast<int64_t>(::time(nullptr));
  if (offset - clock_offset_ < 30 && clock_offset_ - offset < 30) return false;  // the clock was not the reason
  clock_offset_ = offset;
  return true;
}

HttpAnswer HttpClient::post(const std::string& path, const std::string& body, uint64_t max_answer, bool accept_gzip) {
  for (int round = 0;; ++round) {
    Transfer t;
    t.max_bytes = max_answer;
    setup(t, path);
    // Content-Length is of the encoded form; the decoded bytes are capped as they arrive.
    curl_easy_setopt(static_cast<CURL*>(curl_), CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_answer));
    if (accept_gzip) curl_easy_setopt(static_cast<CURL*>(curl_), CURLOPT_ACCEPT_ENCODING, "gzip");
    HttpAnswer a = send_post(t, path, body);
    if (round > 0 || !learn_hq_clock(t)) return a;
  }
}

HttpAnswer HttpClient::post_stream(const std::string& path, const std::string& body,
                                   const std::function<void(const char*, size_t)>& sink,
                                   const std::string& accept_encoding, std::string* content_encoding_seen) {
  for (int round = 0;; ++round) {
    Transfer t;
    t.accept_encoding = accept_encoding;
    // Given only a 2xx answer's body, so a refused first try feeds it nothing; told the encoding
    // of the answer before its first byte.
    std::function<void(const char*, size_t)> tell_then_sink = [&](const char* p, size_t n) {
      if (content_encoding_seen) *content_encoding_seen = t.content_encoding;
      sink(p, n);
    };
    t.sink = &tell_then_sink;
    setup(t, path);
    curl_easy_setopt(static_cast<CURL*>(curl_), CURLOPT_BUFFERSIZE, kRecvBuffer);
    HttpAnswer a = send_post(t, path, body);
    if (round > 0 || !learn_hq_clock(t)) return a;
  }
}

DownloadResult HttpClient::download_to_fd(const std::string& path, int fd, const std::string& file_for_errors,
                                          uint64_t offset, uint64_t max_total,
                                          const std::function<void(uint64_t)>& on_durable) {
  DownloadResult res;
  for (int round = 0; round < 2; ++round) {
    Transfer t;
    t.to_file = true;
    t.fd = fd;
    t.file = file_for_errors;
    t.offset = t.pos = t.durable = offset;
    t.max_bytes = max_total;
    t.on_durable = &on_durable;
    t.written_back = offset;
    if (::lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0) throw_errno("cannot seek", file_for_errors, errno);
    setup(t, path);
    curl_easy_setopt(static_cast<CURL*>(curl_), CURLOPT_BUFFERSIZE, kRecvBuffer);
    curl_easy_setopt(static_cast<CURL*>(curl_), CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_total));
    std::string range = std::to_string(offset) + "-";  // curl sends "Range: bytes=<offset>-"
    if (offset > 0) curl_easy_setopt(static_cast<CURL*>(curl_), CURLOPT_RANGE, range.c_str());
    HeaderList headers;
    curl_easy_setopt(static_cast<CURL*>(curl_), CURLOPT_HTTPHEADER, headers.list);
    long status = perform(t, path);
    res.received += t.received;
    res.restarted = res.restarted || t.restarted;
    if (status == 416 && offset > 0 && t.range_total == offset) {
      res.size = offset;  // an earlier run received all of it (and died before using it)
      return res;
    }
    if (status == 416 && offset > 0 && round == 0) {
      // Our offset is past the server's end: the staged prefix is not of this object. Start over.
      if (::ftruncate(fd, 0) != 0) throw_errno("cannot truncate", file_for_errors, errno);
      if (on_durable) on_durable(0);
      offset = 0;
      res.restarted = true;
      continue;
    }
    if (status == 404)
      throw Error(Errc::not_found, "HQ has no " + url(path) + " (404)",
                  "HQ may have pruned it after a newer publish; run the sync again to fetch the latest manifest");
    if (status != 200 && status != 206)
      throw Error(Errc::network,
                  "HQ answered " + std::to_string(status) + " for " + url(path) +
                      (t.body.empty() ? std::string() : ": " + trim(t.body.substr(0, 200))),
                  "check HQ's logs; the next run resumes where this one stopped");
    res.size = t.pos;
    return res;
  }
  throw Error(Errc::network, "HQ keeps refusing the byte range for " + url(path), "check the web server at HQ");
}

}  // namespace distd
