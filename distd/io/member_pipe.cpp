#include "distd/io/member_pipe.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <memory>
#include <optional>

#include "manifest/encoding.h"
#include "manifest/error.h"

namespace distd {

MemberPipe::MemberPipe() {
  storage_.resize(kBuffers);
  for (auto& b : storage_) {
    b.resize(kBufSize);
    free_.push_back(b.data());
  }
  worker_ = std::thread([this] { run(); });
}

MemberPipe::~MemberPipe() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void MemberPipe::rethrow_locked() {
  if (error_) std::rethrow_exception(error_);
}

void MemberPipe::push(Task t) {
  {
    std::lock_guard<std::mutex> g(mu_);
    rethrow_locked();
    queue_.push_back(std::move(t));
  }
  cv_.notify_all();
}

void MemberPipe::begin(size_t id, UniqueFd out, std::string out_path, int64_t mtime_s, bool sha1) {
  Task t(Task::begin);
  t.sha1 = sha1;
  t.id = id;
  t.out = std::move(out);
  t.out_path = std::move(out_path);
  t.mtime_s = mtime_s;
  push(std::move(t));
}

void MemberPipe::begin_new_file(size_t id, std::string path) {
  Task t(Task::begin);
  t.id = id;
  t.out_path = std::move(path);
  t.mtime_s = -1;
  t.create = true;
  push(std::move(t));
}

char* MemberPipe::buffer() {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return !free_.empty() || error_; });
  rethrow_locked();
  lent_ = free_.back();
  free_.pop_back();
  return lent_;
}

void MemberPipe::commit(size_t n) {
  Task t(Task::data);
  t.buf = lent_;
  t.n = n;
  lent_ = nullptr;
  if (n == 0) {
    std::lock_guard<std::mutex> g(mu_);
    free_.push_back(t.buf);
    return;
  }
  try {
    push(std::move(t));
  } catch (...) {
    std::lock_guard<std::mutex> g(mu_);
    free_.push_back(t.buf);
    throw;
  }
}

void MemberPipe::end() { push(Task(Task::end)); }

void MemberPipe::finish() {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return (queue_.empty() && !busy_) || error_; });
  rethrow_locked();
}

MemberPipe::Result MemberPipe::take(size_t id) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return results_.count(id) || error_; });
  rethrow_locked();
  auto f = results_.find(id);
  Result r = std::move(f->second);
  results_.erase(f);
  return r;
}

void MemberPipe::run() {
  std::optional<Hasher> h;
  uint64_t size = 0;
  UniqueFd out;
  std::string out_path;
  int64_t mtime_s = 0;
  size_t id = 0;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha1(nullptr, &EVP_MD_CTX_free);
  bool want_sha1 = false;
  for (;;) {
    Task t(Task::begin);
    bool failed = false;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      t = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      failed = error_ != nullptr;  // after a failure, only hand the buffers back
    }
    std::exception_ptr err;
    if (!failed) {
      try {
        switch (t.kind) {
          case Task::begin:
            h.emplace();
            id = t.id;
            size = 0;
            out = std::move(t.out);
            out_path = std::move(t.out_path);
            if (t.create) {
              out = UniqueFd(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
              if (!out) throw_errno("cannot create staged file", out_path, errno);
            }
            mtime_s = t.mtime_s;
            want_sha1 = t.sha1;
            if (want_sha1) {
              if (!sha1) sha1.reset(EVP_MD_CTX_new());
              if (!sha1 || EVP_DigestInit_ex(sha1.get(), EVP_sha1(), nullptr) != 1)
                throw Error(Errc::internal, "cannot start a SHA-1 (OpenSSL)", "please report this");
            }
            break;
          case Task::data:
            h->update(t.buf, t.n);
            if (want_sha1) EVP_DigestUpdate(sha1.get(), t.buf, t.n);
            size += t.n;
            if (out) write_all(out.get(), std::string_view(t.buf, t.n), out_path);
            break;
          case Task::end: {
            Result r;
            r.digest = h->finish();
            r.size = size;
            if (want_sha1) {
              unsigned char md[EVP_MAX_MD_SIZE];
              unsigned int len = 0;
              EVP_DigestFinal_ex(sha1.get(), md, &len);
              r.sha1_hex = to_hex(md, len);
            }
            if (out) {
              // The archive's time, in the past: the stat cache can vouch for the file at once.
              if (mtime_s >= 0) {
                struct timespec ts[2] = {{static_cast<time_t>(mtime_s), 0}, {static_cast<time_t>(mtime_s), 0}};
                ::futimens(out.get(), ts);
              }
              ::sync_file_range(out.get(), 0, 0, SYNC_FILE_RANGE_WRITE);  // synced later: start write-back now
              out = UniqueFd();
            }
            std::lock_guard<std::mutex> g(mu_);
            results_[id] = r;
            break;
          }
        }
      } catch (...) {
        err = std::current_exception();
        out = UniqueFd();
      }
    }
    {
      std::lock_guard<std::mutex> g(mu_);
      if (t.kind == Task::data) free_.push_back(t.buf);
      if (err && !error_) error_ = err;
      busy_ = false;
    }
    cv_.notify_all();
  }
}

}  // namespace distd
