// Hashing a file while another thread is still writing it (the center's downloads).
#pragma once

#include <atomic>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "manifest/digest.h"
#include "manifest/error.h"

namespace distd {

// Hashes a staged download on a second thread while it is being written (reading the page
// cache behind the writer), so verifying costs no second pass over the file and the digest is
// ready soon after the last byte arrives. Also covers a prefix kept from an earlier run.
class BackgroundHasher {
 public:
  BackgroundHasher(int fd, std::string path) : fd_(fd), path_(std::move(path)), th_([this] { run(); }) {}
  ~BackgroundHasher() { stop(); }
  BackgroundHasher(const BackgroundHasher&) = delete;
  BackgroundHasher& operator=(const BackgroundHasher&) = delete;

  // The digest of the file's first `size` bytes, once the thread read them. Throws what the
  // thread met (Error{io}).
  Digest finish(uint64_t size) {
    {
      std::lock_guard<std::mutex> g(mu_);
      size_ = size;
      sized_ = true;
    }
    if (th_.joinable()) th_.join();
    if (error_) std::rethrow_exception(error_);
    if (at_ != size) throw Error(Errc::io, "'" + path_ + "' is shorter than it was written", "run the sync again");
    return h_.finish();
  }
  void stop() {
    stop_ = true;
    if (th_.joinable()) th_.join();
  }

 private:
  void run() {
    try {
      std::vector<char> buf(1 << 20);
      for (;;) {
        if (stop_) return;
        uint64_t limit = UINT64_MAX;
        bool sized;
        {
          std::lock_guard<std::mutex> g(mu_);
          sized = sized_;
          if (sized_) limit = size_;
        }
        if (at_ >= limit) return;
        ssize_t n = ::pread(fd_, buf.data(), static_cast<size_t>(std::min<uint64_t>(buf.size(), limit - at_)),
                            static_cast<off_t>(at_));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("cannot read", path_, errno);
        if (n == 0) {
          if (sized) return;  // shorter than the download said: finish() reports it
          std::this_thread::sleep_for(std::chrono::microseconds(500));  // caught up with the writer
          continue;
        }
        h_.update(buf.data(), static_cast<size_t>(n));
        at_ += static_cast<uint64_t>(n);
      }
    } catch (...) {
      error_ = std::current_exception();
    }
  }

  int fd_;
  std::string path_;
  Hasher h_;
  uint64_t at_ = 0;
  std::mutex mu_;
  uint64_t size_ = 0;
  bool sized_ = false;
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;
  std::thread th_;  // last: starts after the members it uses
};

}  // namespace distd
