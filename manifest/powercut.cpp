#include "manifest/powercut.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "manifest/fs.h"

namespace distd::powercut {

namespace {

using Key = std::pair<dev_t, ino_t>;

// A file written since its last sync: the length it is cut back to, and every path it was seen at.
struct Dirty {
  off_t synced = 0;
  std::vector<std::string> paths;
};

// A change of names not yet durable: undone at the cut unless `dir` is synced first.
struct Op {
  enum Kind { rename, remove_file, remove_dir, create_file, create_dir } kind;
  Key dir;               // the directory whose fsync makes it durable
  std::string path;      // rename: the destination; otherwise the path changed
  std::string from;      // rename: the source
  std::string keep;      // hard link of what the rename replaced or the unlink removed
  Key node{};            // the inode renamed or created
};

struct Tracker {
  std::mutex mu;
  std::map<Key, Dirty> dirty;
  std::vector<Op> ops;
  std::string keep_dir;
  unsigned long keeps = 0;
};

std::atomic<bool> cutting{false};

Tracker& tracker() {
  static Tracker* t = new Tracker;  // never destroyed: used until the last moment of the process
  return *t;
}

bool active() { return on() && !cutting.load(); }

std::string fd_path(int fd) {
  char buf[PATH_MAX];
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

// The absolute path of (dir_fd, name).
std::string resolve(int dir_fd, const std::string& name) {
  if (!name.empty() && name[0] == '/') return name;
  std::string base;
  if (dir_fd == AT_FDCWD) {
    char buf[PATH_MAX];
    if (!::getcwd(buf, sizeof buf)) return name;
    base = buf;
  } else {
    base = fd_path(dir_fd);
  }
  return base == "/" ? "/" + name : base + "/" + name;
}

bool key_of(const std::string& path, Key* k, bool follow = false) {
  struct stat st {};
  if ((follow ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st)) != 0) return false;
  *k = {st.st_dev, st.st_ino};
  return true;
}

Key parent_key(const std::string& abs) {
  Key k{};
  key_of(dir_name(abs), &k, true);
  return k;
}

void log_line(const std::string& line) {
  const char* log = std::getenv("DISTD_POWERCUT_LOG");
  if (!log || !*log) return;
  int fd = ::open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  std::string l = line + "\n";
  (void)!::write(fd, l.data(), l.size());
  ::close(fd);
}

void remove_keeps() {
  Tracker& t = tracker();
  if (!t.keep_dir.empty()) remove_tree(t.keep_dir);
}

// A hard link of the regular file at abs under the keep directory (a copy across file systems).
// REQUIRES: t.mu held.
std::string keep_copy(Tracker& t, const std::string& abs) {
  struct stat st {};
  if (::lstat(abs.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return "";
  if (t.keep_dir.empty()) {
    const char* d = std::getenv("DISTD_POWERCUT_DIR");
    t.keep_dir = (d && *d) ? std::string(d) + "/keep." + std::to_string(::getpid())
                           : "/tmp/distd-powercut." + std::to_string(::getpid());
    (void)::mkdir(t.keep_dir.c_str(), 0700);
    std::atexit(remove_keeps);
  }
  std::string keep = t.keep_dir + "/" + std::to_string(++t.keeps);
  if (::link(abs.c_str(), keep.c_str()) == 0) return keep;
  try {  // another file system: a copy keeps the bytes (not the inode)
    std::string bytes = read_file(abs, UINT64_MAX);
    UniqueFd out(::open(keep.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777));
    if (!out) return "";
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::write(out.get(), bytes.data() + off, bytes.size() - off);
      if (n <= 0) return "";
      off += static_cast<size_t>(n);
    }
    return keep;
  } catch (...) {
    return "";
  }
}

// Everything in directory d (or, with whole_fs, on file system d.first) is durable now.
void make_durable(Key d, bool whole_fs) {
  Tracker& t = tracker();
  std::vector<Op> left;
  for (auto& op : t.ops) {
    bool done = whole_fs ? op.dir.first == d.first : op.dir == d;
    if (!done) left.push_back(std::move(op));
    else if (!op.keep.empty()) discard_file(op.keep);
  }
  t.ops = std::move(left);
}

void undo(const Op& op) {
  Key now{};
  switch (op.kind) {
    case Op::rename:
      if (key_of(op.path, &now) && now == op.node) {
        if (try_rename(op.path, op.from) != 0) break;
        log_line("undo rename " + op.from + " -> " + op.path);
      }
      if (!op.keep.empty() && ::link(op.keep.c_str(), op.path.c_str()) == 0)
        log_line("restore replaced " + op.path);
      break;
    case Op::remove_file:
      if (!op.keep.empty() && ::link(op.keep.c_str(), op.path.c_str()) == 0) log_line("undo unlink " + op.path);
      break;
    case Op::remove_dir:
      if (::mkdir(op.path.c_str(), 0755) == 0) log_line("undo rmdir " + op.path);
      break;
    case Op::create_file:
      if (key_of(op.path, &now) && now == op.node && try_remove_file(op.path) == 0)
        log_line("undo create " + op.path);
      break;
    case Op::create_dir:
      if (key_of(op.path, &now) && now == op.node) {
        remove_tree(op.path);
        log_line("undo mkdir " + op.path);
      }
      break;
  }
}

}  // namespace

bool on() {
  static const bool active = [] {
    const char* env = std::getenv("DISTD_FAULT");
    return env && std::strncmp(env, "powercut:", 9) == 0;
  }();
  return active;
}

void before_write(int fd) {
  if (!active()) return;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
  Tracker& t = tracker();
  std::lock_guard<std::mutex> lock(t.mu);
  auto [it, fresh] = t.dirty.try_emplace(Key{st.st_dev, st.st_ino});
  if (!fresh) return;
  it->second.synced = st.st_size;
  it->second.paths.push_back(fd_path(fd));
}

void synced(int fd) {
  if (!active()) return;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return;
  Tracker& t = tracker();
  std::lock_guard<std::mutex> lock(t.mu);
  if (S_ISDIR(st.st_mode)) make_durable({st.st_dev, st.st_ino}, false);
  else t.dirty.erase(Key{st.st_dev, st.st_ino});
}

void synced_filesystem(int fd) {
  if (!active()) return;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return;
  Tracker& t = tracker();
  std::lock_guard<std::mutex> lock(t.mu);
  for (auto it = t.dirty.begin(); it != t.dirty.end();)
    it = it->first.first == st.st_dev ? t.dirty.erase(it) : std::next(it);
  make_durable({st.st_dev, 0}, true);
}

void synced_dir(const std::string& path) {
  if (!active()) return;
  Key k{};
  if (!key_of(path, &k, true)) return;
  Tracker& t = tracker();
  std::lock_guard<std::mutex> lock(t.mu);
  make_durable(k, false);
}

Pending before_replace(int dir_fd, const std::string& name) {
  Pending p;
  if (!active()) return p;
  p.active = true;
  Tracker& t = tracker();
  std::lock_guard<std::mutex> lock(t.mu);
  p.keep = keep_copy(t, resolve(dir_fd, name));
  return p;
}

void after_rename(Pending p, int from_dir, const std::string& from, int to_dir, const std::string& to, int err) {
  if (!p.active) return;
  if (err != 0) {
    if (!p.keep.empty()) discard_file(p.keep);
    return;
  }
  Op op{Op::rename, {}, resolve(to_dir, to), resolve(from_dir, from), p.keep, {}};
  op.dir = parent_key(op.path);
  key_of(op.path, &op.node);
  Tracker& t = tracker();
  std::lock_guard<std::mutex> lock(t.mu);
  if (auto it = t.dirty.find(op.node); it != t.dirty.end()) it->second.paths.push_back(op.path);
  t.ops.push_back(std::move(op));
}

void after_remove(Pending p, int dir_fd, const std::string& name, bool as_dir, int err) {
  if (!p.active) return;
  if (err != 0) {
    if (!p.keep.empty()) discard_file(p.keep);
    return;
  }
  Op op{as_dir ? Op::remove_dir : Op::remove_file, {}, resolve(dir_fd, name), "", p.keep, {}};
  op.dir = parent_key(op.path);
  Tracker& t = tracker();
  std::lock_guard<std::mutex> lock(t.mu);
  t.ops.push_back(std::move(op));
}

void created(int dir_fd, const std::string& name, bool is_dir) {
  if (!active()) return;
  Op op{is_dir ? Op::create_dir : Op::create_file, {}, resolve(dir_fd, name), "", "", {}};
  op.dir = parent_key(op.path);
  if (!key_of(op.path, &op.node)) return;
  Tracker& t = tracker();
  std::lock_guard<std::mutex> lock(t.mu);
  t.ops.push_back(std::move(op));
}

void cut() {
  Tracker& t = tracker();
  t.mu.lock();  // held until the end: other threads stop at their next seam call
  cutting.store(true);
  log_line("power cut in pid " + std::to_string(::getpid()) + ": " + std::to_string(t.ops.size()) +
           " name changes and " + std::to_string(t.dirty.size()) + " files not durable");
  for (auto it = t.ops.rbegin(); it != t.ops.rend(); ++it) undo(*it);
  for (const auto& [key, d] : t.dirty) {
    for (const auto& p : d.paths) {
      struct stat st {};
      if (::lstat(p.c_str(), &st) != 0 || Key{st.st_dev, st.st_ino} != key) continue;
      if (st.st_size > d.synced && ::truncate(p.c_str(), d.synced) == 0)
        log_line("cut " + p + " from " + std::to_string(st.st_size) + " to " + std::to_string(d.synced) + " bytes");
      break;
    }
  }
  remove_keeps();
  ::kill(::getpid(), SIGKILL);
  for (;;) ::pause();
}

}  // namespace distd::powercut
