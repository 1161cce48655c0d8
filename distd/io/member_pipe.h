// Hashing (BLAKE2b-256) and writing archive members on a second thread while the caller
// inflates or reads the next bytes, so that reading and hashing+writing overlap on two cores.
// Used by the course publisher (.mbz members), the bundle importer (tar members) and the bundle
// exporter (hash only, while the main thread writes the volume).
//
// The caller, for each member: begin(); then buffer() + commit() per chunk it reads; then end().
// After finish(), result(id) holds every member's digest and size (and SHA-1 on request); or
// take(id) waits for one member only. Memory is bounded: a few fixed buffers circulate between
// the two threads (buffer() waits while all are in flight).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "manifest/digest.h"
#include "manifest/fs.h"

namespace distd {

class MemberPipe {
 public:
  struct Result {
    Digest digest{};
    uint64_t size = 0;
    std::string sha1_hex;  // SHA-1 of the content, when begin() asked for it
  };

  MemberPipe();
  ~MemberPipe();  // stops the worker; work still queued is dropped, open files are closed
  MemberPipe(const MemberPipe&) = delete;
  MemberPipe& operator=(const MemberPipe&) = delete;

  // Starts member id. out: the file its bytes go to (invalid: hash only); when it is valid the
  // file's mtime is set to mtime_s (seconds, the archive member's; negative: left as is) after
  // the last byte, its write-back is started, and it is closed. With sha1 the member's SHA-1 is computed too.
  void begin(size_t id, UniqueFd out, std::string out_path, int64_t mtime_s, bool sha1 = false);
  // Starts member id whose bytes go to a new file at path (0600, truncated), created on the
  // second thread too (creating inodes costs as much as writing small files); its time is left
  // as is. A failure to create it is thrown like a write error: "cannot create staged file".
  void begin_new_file(size_t id, std::string path);
  // A free buffer of buffer_size() bytes. Throws what the worker threw (e.g. Error{no_space}).
  char* buffer();
  size_t buffer_size() const { return kBufSize; }
  // The buffer from the last buffer() now holds n bytes of the current member.
  void commit(size_t n);
  void end();
  // Waits until everything queued is done; throws what the worker threw.
  void finish();
  // REQUIRES: finish() returned and member id was begun and ended.
  const Result& result(size_t id) const { return results_.at(id); }
  // Waits until member id (begun and ended) is done, its file closed, and hands its result over
  // (result(id) no longer has it). Throws what the worker threw.
  Result take(size_t id);

 private:
  static constexpr size_t kBufSize = 256 * 1024;
  static constexpr size_t kBuffers = 8;
  struct Task {
    enum Kind { begin, data, end };
    explicit Task(Kind k) : kind(k) {}
    Kind kind;
    size_t id = 0;
    char* buf = nullptr;
    size_t n = 0;
    UniqueFd out;
    std::string out_path;
    int64_t mtime_s = 0;
    bool sha1 = false;
    bool create = false;
  };
  void push(Task t);
  void run();
  void rethrow_locked();

  std::vector<std::vector<char>> storage_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  std::vector<char*> free_;
  char* lent_ = nullptr;
  bool stop_ = false;
  bool busy_ = false;
  std::exception_ptr error_;
  std::unordered_map<size_t, Result> results_;  // written by the worker under mu_
  std::thread worker_;
};

}  // namespace distd
