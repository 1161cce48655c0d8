#include "tests/support/test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace distd::test {

TempDir::TempDir(const std::string& tag) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/distd-" + tag + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (std::getenv("DISTD_KEEP_TMP")) {
    std::cerr << "kept " << path_ << "\n";
    return;
  }
  std::error_code ec;
  // Make read-only directories removable again.
  for (auto it = fs::recursive_directory_iterator(path_, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_directory(ec)) ::chmod(it->path().c_str(), 0755);
  }
  fs::remove_all(path_, ec);
}

std::string bin(const std::string& name) {
  const char* env = std::getenv("DISTD_BIN");
  std::string root = env && *env ? env : DISTD_BINARY_DIR;
  for (const char* sub : {"", "/tests", "/bench"}) {
    std::string p = root + sub + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return name;
}

std::string source_path(const std::string& rel) { return std::string(DISTD_SOURCE_DIR) + "/" + rel; }

// In a forked child: wires stdin/stdout/stderr, adds env ("K=V"), and execs prog with argv
// (argv[0] replaced by prog). Never returns.
[[noreturn]] static void exec_child(const std::string& prog, const std::vector<std::string>& argv,
                                    const std::vector<std::string>& env, int in, int out, int err) {
  ::dup2(in, 0);
  ::dup2(out, 1);
  ::dup2(err, 2);
  for (auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args[0] = const_cast<char*>(prog.c_str());
  args.push_back(nullptr);
  ::execvp(prog.c_str(), args.data());
  std::fprintf(stderr, "exec %s: %s\n", prog.c_str(), std::strerror(errno));
  ::_exit(127);
}

static void drain(int fd, std::string& into) {
  char buf[65536];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n > 0) into.append(buf, static_cast<size_t>(n));
}

RunResult run(const std::vector<std::string>& argv, const std::string& stdin_data,
              const std::vector<std::string>& env, int timeout_s) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC))
    throw std::runtime_error("pipe failed");
  std::string prog = argv.at(0);
  if (prog.find('/') == std::string::npos) prog = bin(prog);
  pid_t pid = ::fork();
  if (pid == 0) {
    exec_child(prog, argv, env, in[0], out[1], err[1]);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  // Feed stdin from a writer thread-free loop: small inputs only (tests), so write then close.
  if (!stdin_data.empty()) {
    ::signal(SIGPIPE, SIG_IGN);
    size_t off = 0;
    while (off < stdin_data.size()) {
      ssize_t n = ::write(in[1], stdin_data.data() + off, stdin_data.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
  }
  ::close(in[1]);
  RunResult r;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  bool out_open = true, err_open = true;
  while (out_open || err_open) {
    pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
    if (ms <= 0) {
      ::kill(pid, SIGKILL);
      break;
    }
    ::poll(p, 2, std::min(ms, 1000));
    for (int i = 0; i < 2; ++i) {
      if (p[i].revents & (POLLIN | POLLHUP)) {
        std::string& dst = i == 0 ? r.out : r.err;
        size_t before = dst.size();
        drain(p[i].fd, dst);
        if (dst.size() == before) (i == 0 ? out_open : err_open) = false;
      }
    }
  }
  ::close(out[0]);
  ::close(err[0]);
  int st = 0;
  struct rusage ru {};
  ::wait4(pid, &st, 0, &ru);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.max_rss_kib = static_cast<uint64_t>(ru.ru_maxrss);
  return r;
}

void write_file(const std::string& path, const std::string& data) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  for (; i < n; ++i) s[i] = static_cast<char>(rng());
  return s;
}

std::string file_digest_hex(const std::string& path) {
  std::string data = read_file(path);
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(data.data()), data.size(), nullptr, 0);
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : h) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(s);
  return port;
}

}  // namespace distd::test

namespace distd::test {

Process::Process(const std::vector<std::string>& argv, const std::string& log_path,
                 const std::vector<std::string>& env)
    : log_path_(log_path) {
  std::string prog = argv.at(0);
  if (prog.find('/') == std::string::npos) prog = bin(prog);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::setpgid(0, 0);
    int fd = ::open(log_path.empty() ? "/dev/null" : log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int nul = ::open("/dev/null", O_RDONLY);
    exec_child(prog, argv, env, nul, fd, fd);
  }
}

Process::~Process() { stop(); }

bool Process::running() {
  if (pid_ <= 0) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    pid_ = -1;
    return false;
  }
  return true;
}

int Process::stop(int sig, int wait_s) {
  if (!running()) return status_;
  ::kill(pid_, sig);
  for (int i = 0; i < wait_s * 20; ++i) {
    if (!running()) return status_;
    ::usleep(50'000);
  }
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  pid_ = -1;
  return status_;
}

std::string Process::log() const {
  if (log_path_.empty() || !exists(log_path_)) return {};
  return read_file(log_path_);
}

bool wait_for_port(int port, double timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int>(timeout_s * 1000));
  while (std::chrono::steady_clock::now() < deadline) {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    int rc = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::close(s);
    if (rc == 0) return true;
    ::usleep(50'000);
  }
  return false;
}

}  // namespace distd::test
