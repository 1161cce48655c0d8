// Helpers for tests that speak from the user's side: temporary trees, running the real
// binaries (distctl, distd, tools), and reading files back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace distd::test {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction
// unless DISTD_KEEP_TMP is set (then its path is printed for post-mortems).
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "t");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

struct RunResult {
  int status = -1;   // exit status, or 128+signal
  std::string out;   // stdout
  std::string err;   // stderr
  uint64_t max_rss_kib = 0;  // peak resident set of the process (wait4's ru_maxrss)
};

// Runs argv[0] (a program name found in the build tree's bin dirs, or a path, or on PATH)
// with arguments, optional stdin, extra environment ("K=V"), and a timeout in seconds
// (killed with SIGKILL after it; status 137).
RunResult run(const std::vector<std::string>& argv, const std::string& stdin_data = {},
              const std::vector<std::string>& env = {}, int timeout_s = 300);

// Path of a binary built by this project: "distctl", "distd", "flaky_proxy", ...
std::string bin(const std::string& name);
// Path inside the source tree.
std::string source_path(const std::string& rel);

void write_file(const std::string& path, const std::string& data);  // creates parent dirs
std::string read_file(const std::string& path);
bool exists(const std::string& path);
// Deterministic pseudo-random bytes.
std::string random_bytes(size_t n, uint64_t seed);
// BLAKE2b-256 hex of a file's content.
std::string file_digest_hex(const std::string& path);
// A free TCP port on 127.0.0.1.
int free_port();

}  // namespace distd::test

namespace distd::test {

// A background process (a server, the flaky proxy, a daemon) owned by a test. The destructor
// sends SIGTERM, waits up to 5 s, then SIGKILLs. stdout+stderr go to log_path (or /dev/null).
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::string& log_path = {},
          const std::vector<std::string>& env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  int pid() const { return pid_; }
  bool running();                       // not exited yet
  int stop(int sig = 15, int wait_s = 5);  // returns exit status (or 128+signal)
  void kill9() { stop(9, 5); }
  std::string log() const;              // the log so far

 private:
  int pid_ = -1;
  int status_ = -1;
  std::string log_path_;
};

// Waits until something accepts TCP connections on 127.0.0.1:port; false after timeout_s.
bool wait_for_port(int port, double timeout_s = 10);

}  // namespace distd::test
