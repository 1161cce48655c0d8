// HQ's answers as the center reads them: the input is the raw bytes a hostile HQ sends back
// (status line, headers, body) over a loopback socket, read by the center's real HttpClient
// (libcurl; distd/net/http_client.h, its Content-Range check included) for three requests:
// the delta ticket of POST /deltas (JSON; distd/regional/delta_request.h), a bounded GET, and a
// resumed download (Range from byte 10). Every call returns or throws distd::Error; the ticket,
// when given, passes the size rules; nothing grows past its cap.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <thread>

#include "distd/delta/rsync.h"
#include "distd/net/http_client.h"
#include "distd/regional/delta_request.h"
#include "manifest/digest.h"
#include "manifest/error.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

// A one-thread HTTP "server": reads one request (headers and Content-Length body), sends the
// current answer bytes, closes.
class FakeHq {
 public:
  FakeHq() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      std::abort();
    port_ = ntohs(a.sin_port);
    std::thread([this] { serve(); }).detach();
  }
  int port() const { return port_; }
  void set_answer(std::string a) {
    std::lock_guard<std::mutex> g(mu_);
    answer_ = std::move(a);
  }

 private:
  void serve() {
    for (;;) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      timeval tv{2, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      read_request(c);
      std::string a;
      {
        std::lock_guard<std::mutex> g(mu_);
        a = answer_;
      }
      for (size_t at = 0; at < a.size();) {
        ssize_t n = ::send(c, a.data() + at, a.size() - at, MSG_NOSIGNAL);
        if (n <= 0) break;
        at += static_cast<size_t>(n);
      }
      ::shutdown(c, SHUT_WR);
      char drain[4096];
      while (::recv(c, drain, sizeof drain, 0) > 0) {
      }
      ::close(c);
    }
  }
  static void read_request(int c) {
    std::string req;
    char buf[8192];
    size_t end = std::string::npos;
    while (end == std::string::npos) {
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) return;
      req.append(buf, static_cast<size_t>(n));
      end = req.find("\r\n\r\n");
    }
    size_t body = 0;
    for (const char* key : {"Content-Length: ", "content-length: "}) {
      size_t p = req.find(key);
      if (p != std::string::npos && p < end) body = std::strtoull(req.c_str() + p + std::strlen(key), nullptr, 10);
    }
    size_t have = req.size() - end - 4;
    while (have < body) {
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) return;
      have += static_cast<size_t>(n);
    }
  }

  int fd_ = -1, port_ = 0;
  std::mutex mu_;
  std::string answer_;
};

constexpr uint64_t kTargetSize = 100000;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static FakeHq hq;
  static const std::string target_hex = distd::digest_hex(distd::digest_bytes("the target"));
  static const std::string signature(600, 's');
  static const int fd = ::memfd_create("download", MFD_CLOEXEC);
  hq.set_answer(std::string(distd::fuzz::as_text(data, size)));
  distd::HttpOptions opts;
  opts.connect_timeout_s = 2;
  opts.low_speed_time = 2;
  distd::HttpClient http("http://127.0.0.1:" + std::to_string(hq.port()), opts);

  try {
    distd::DeltaDeclined declined;
    auto t = distd::request_delta(http, signature, target_hex, kTargetSize, &declined);
    if (t) {
      FUZZ_CHECK(distd::parse_digest_hex(t->id).has_value());
      FUZZ_CHECK(t->size <= distd::delta_size_cap(kTargetSize));
      FUZZ_CHECK(distd::delta_pays(t->size, signature.size(), kTargetSize));
    }
  } catch (const distd::Error&) {
  }

  try {
    distd::HttpAnswer a = http.get("/channels/c/latest.manifest", 4096);
    FUZZ_CHECK(a.body.size() <= 4096);
  } catch (const distd::Error&) {
  }

  FUZZ_CHECK(::ftruncate(fd, 0) == 0 && ::pwrite(fd, "0123456789", 10, 0) == 10);
  try {
    distd::DownloadResult r = http.download_to_fd("/objects/x", fd, "fuzz-download", 10, 4096, [](uint64_t) {});
    FUZZ_CHECK(r.size <= 4096);
    FUZZ_CHECK(static_cast<uint64_t>(::lseek(fd, 0, SEEK_END)) <= 4096);
  } catch (const distd::Error&) {
  }
  return 0;
}
