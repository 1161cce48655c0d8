// Reading a file while another thread is still writing it (the center's downloads): hashing it,
// or decoding it (zstd_stream.h), behind the writer.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "manifest/digest.h"
#include "manifest/error.h"

namespace distd {

// A thread that reads a file from its start while another thread writes it (from the page cache,
// behind the writer, sleeping 500 us whenever it caught up) and hands each chunk to a consumer,
// until it reached the size finish() says. Also covers a prefix kept from an earlier run.
// finish() and stop() are for the thread that owns the follower.
class FileFollower {
 public:
  using Consumer = std::function<void(const char*, size_t)>;
  // take runs on the follower's thread; what it throws is rethrown by finish().
  FileFollower(int fd, std::string path, Consumer take)
      : fd_(fd), path_(std::move(path)), take_(std::move(take)), th_([this] { run(); }) {}
  ~FileFollower() { stop(); }
  FileFollower(const FileFollower&) = delete;
  FileFollower& operator=(const FileFollower&) = delete;

  // Returns once the first `size` bytes went to the consumer. Throws what the reads or the
  // consumer threw, Error{io} when the file is shorter than size.
  void finish(uint64_t size) {
    {
      std::lock_guard<std::mutex> g(mu_);
      size_ = size;
      sized_ = true;
    }
    if (th_.joinable()) th_.join();
    if (error_) std::rethrow_exception(error_);
    if (at_ != size) throw Error(Errc::io, "'" + path_ + "' is shorter than it was written", "run the sync again");
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
          if (sized) return;  // shorter than the writer said: finish() reports it
          std::this_thread::sleep_for(std::chrono::microseconds(500));  // caught up with the writer
          continue;
        }
        take_(buf.data(), static_cast<size_t>(n));
        at_ += static_cast<uint64_t>(n);
      }
    } catch (...) {
      error_ = std::current_exception();
    }
  }

  int fd_;
  std::string path_;
  Consumer take_;
  uint64_t at_ = 0;
  std::mutex mu_;
  uint64_t size_ = 0;
  bool sized_ = false;
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;
  std::thread th_;  // last: starts after the members it uses
};

// Hashes a staged download on a second thread while it is being written, so verifying costs no
// second pass over the file and the digest is ready soon after the last byte arrives.
class BackgroundHasher {
 public:
  BackgroundHasher(int fd, std::string path) : follower_(fd, std::move(path), [this](const char* p, size_t n) {
    h_.update(p, n);
  }) {}

  // The digest of the file's first `size` bytes, once the thread read them. Throws what the
  // thread met (Error{io}).
  Digest finish(uint64_t size) {
    follower_.finish(size);
    return h_.finish();
  }
  void stop() { follower_.stop(); }

 private:
  Hasher h_;
  FileFollower follower_;  // last: its thread uses h_
};

}  // namespace distd
