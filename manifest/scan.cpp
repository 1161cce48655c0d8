#include "manifest/scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <exception>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "manifest/error.h"
#include "manifest/fs.h"
#include "manifest/path.h"
#include "manifest/stat_cache.h"

namespace distd {

const std::vector<std::string>& moodledata_excludes() {
  // moodledata's local-only areas (see docs/formats/manifest.md and shared moodle-facts):
  // only filedir/ is content that HQ publishes.
  static const std::vector<std::string> v = {"temp/",  "cache/",         "localcache/", "sessions/",
                                             "trashdir/", "lock/",        "backuptempdir/", "muc/",
                                             "antivirus_quarantine/", "*.tmp"};
  return v;
}

namespace {

bool match_one(std::string_view rel, bool is_dir, const std::string& pattern) {
  std::string pat = pattern;
  bool dir_only = !pat.empty() && pat.back() == '/';
  if (dir_only) pat.pop_back();
  if (!pat.empty() && pat.front() == '/') pat.erase(0, 1);
  if (pat.empty() || (dir_only && !is_dir)) return false;
  std::string path(rel);
  if (pat.find('/') != std::string::npos) return ::fnmatch(pat.c_str(), path.c_str(), FNM_PATHNAME) == 0;
  auto slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  return ::fnmatch(pat.c_str(), base.c_str(), 0) == 0;
}

bool excluded_here(std::string_view rel, bool is_dir, const std::vector<std::string>& patterns) {
  for (const auto& p : patterns)
    if (match_one(rel, is_dir, p)) return true;
  return false;
}

int64_t ns_of(const struct timespec& ts) { return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec; }

int64_t now_ns() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ns_of(ts);
}

struct Candidate {
  std::string path;
  uint32_t mode = 0;
  StatRecord rec;
  bool need_hash = false;
};

StatRecord record_of(const struct stat& st) { return stat_record_of(st); }

const char* kind_of(mode_t m) {
  if (S_ISLNK(m)) return "symlink";
  if (S_ISCHR(m) || S_ISBLK(m)) return "device";
  if (S_ISSOCK(m)) return "socket";
  if (S_ISFIFO(m)) return "FIFO";
  return "special file";
}

class Walker {
 public:
  Walker(const std::string& root, const ScanOptions& opts, ScanStats& stats)
      : root_(root), opts_(opts), stats_(stats) {}

  std::vector<Candidate> walk() {
    UniqueFd fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) {
      if (errno == ENOENT)
        throw Error(Errc::not_found, "tree '" + root_ + "' does not exist", "check the path (the channel's path in the config)");
      if (errno == ENOTDIR) throw Error(Errc::usage, "'" + root_ + "' is not a directory", "name a directory to scan");
      throw_errno("cannot open tree", root_, errno);
    }
    walk_dir(fd.get(), "");
    return std::move(out_);
  }

 private:
  void special(const std::string& rel, mode_t m) {
    std::string msg = std::string("skipped ") + kind_of(m) + " " + quote_path(rel) + " in '" + root_ + "'";
    if (opts_.special == SpecialFiles::refuse)
      throw Error(Errc::unsupported,
                  std::string("tree '") + root_ + "' holds a " + kind_of(m) + " at " + quote_path(rel) +
                      "; only regular files and directories can be published",
                  "remove it, or allow skipping (--special skip); links are never followed");
    ++stats_.skipped;
    if (opts_.warn) opts_.warn(msg + " (links and special files are never followed or published)");
  }

  void walk_dir(int dirfd, const std::string& prefix) {
    int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) throw_errno("cannot read directory", root_ + "/" + prefix, errno);
    DIR* d = ::fdopendir(dup);
    if (!d) {
      ::close(dup);
      throw_errno("cannot read directory", root_ + "/" + prefix, errno);
    }
    std::vector<std::string> subdirs;
    errno = 0;
    while (struct dirent* de = ::readdir(d)) {
      const char* name = de->d_name;
      if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
      std::string rel = prefix.empty() ? std::string(name) : prefix + "/" + name;
      struct stat st {};
      if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // vanished while we looked: not part of this scan
        int e = errno;
        ::closedir(d);
        throw_errno("cannot stat", root_ + "/" + rel, e);
      }
      bool is_dir = S_ISDIR(st.st_mode);
      if (excluded_here(rel, is_dir, opts_.excludes) || (is_dir && rel == kStagingDirName)) {
        ++stats_.excluded;
        continue;
      }
      if (is_dir) {
        subdirs.push_back(name);
      } else if (S_ISREG(st.st_mode)) {
        check_safe_path(rel, "scan of '" + root_ + "'");
        Candidate c;
        c.path = std::move(rel);
        c.mode = st.st_mode & 0777;
        c.rec = record_of(st);
        out_.push_back(std::move(c));
        if (opts_.progress && (out_.size() & 4095) == 0) {
          ScanProgress p;
          p.files_seen = out_.size();
          opts_.progress(p);
        }
      } else {
        special(rel, st.st_mode);
      }
      errno = 0;
    }
    int e = errno;
    if (e != 0) {
      ::closedir(d);
      throw_errno("cannot read directory", root_ + "/" + prefix, e);
    }
    for (const auto& name : subdirs) {
      UniqueFd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      std::string rel = prefix.empty() ? name : prefix + "/" + name;
      if (!sub) {
        if (errno == ENOENT) continue;
        int err = errno;
        ::closedir(d);
        throw_errno("cannot open directory", root_ + "/" + rel, err);
      }
      walk_dir(sub.get(), rel);
    }
    ::closedir(d);
  }

  const std::string& root_;
  const ScanOptions& opts_;
  ScanStats& stats_;
  std::vector<Candidate> out_;
};

// Hashes one candidate; returns false when the file changed under us (caller retries).
bool hash_one(const std::string& root, Candidate& c) {
  std::string full = root + "/" + c.path;
  UniqueFd fd(::open(full.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) throw_errno("cannot open", full, errno);
  struct stat before {};
  if (::fstat(fd.get(), &before) != 0) throw_errno("cannot stat", full, errno);
  if (!S_ISREG(before.st_mode))
    throw Error(Errc::unsupported, "'" + full + "' stopped being a regular file during the scan", "run the scan again");
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  int64_t started = now_ns();
  uint64_t n = 0;
  Digest d = digest_fd(fd.get(), full, &n);
  struct stat after {};
  if (::fstat(fd.get(), &after) != 0) throw_errno("cannot stat", full, errno);
  StatRecord rb = record_of(before), ra = record_of(after);
  if (!rb.same_stat(ra) || n != ra.size) return false;
  c.rec = ra;
  c.mode = after.st_mode & 0777;
  c.rec.digest = d;
  c.rec.hashed_at_ns = started;
  return true;
}

// Marks the candidates to hash (all without a cache; else those whose row is missing or untrusted,
// the rest taking the cached digest). REQUIRES: cands sorted by path. Returns cached paths now gone.
std::vector<std::string> mark_for_hashing(std::vector<Candidate>& cands, StatCache* cache) {
  std::vector<std::string> gone;  // cached paths no longer in the tree
  if (!cache) {
    for (auto& c : cands) c.need_hash = true;
    return gone;
  }
  size_t i = 0;
  cache->for_each_sorted([&](std::string_view path, const StatRecord& r) {
    while (i < cands.size() && std::string_view(cands[i].path) < path) cands[i++].need_hash = true;
    if (i < cands.size() && cands[i].path == path) {
      Candidate& c = cands[i++];
      if (r.same_stat(c.rec) && r.trustworthy()) {
        c.rec.digest = r.digest;
        c.rec.hashed_at_ns = r.hashed_at_ns;
      } else {
        c.need_hash = true;
      }
    } else {
      gone.emplace_back(path);
    }
  });
  for (; i < cands.size(); ++i) cands[i].need_hash = true;
  return gone;
}

// Returns the candidates marked need_hash, largest first, and fills prog's totals for them.
std::vector<Candidate*> hash_queue(std::vector<Candidate>& cands, ScanProgress& prog) {
  std::vector<Candidate*> todo;
  prog.files_seen = cands.size();
  for (auto& c : cands) {
    if (c.need_hash) {
      todo.push_back(&c);
      prog.bytes_to_hash += c.rec.size;
    }
  }
  prog.files_to_hash = todo.size();
  // Largest first: keeps both cores busy to the end.
  std::sort(todo.begin(), todo.end(), [](const Candidate* a, const Candidate* b) { return a->rec.size > b->rec.size; });
  return todo;
}

// Hashes every candidate of todo on opts.threads threads, reporting through opts.progress every
// 200 ms and once at the end. Rethrows the first error of any thread after all have stopped.
void hash_in_pool(const std::string& root, const ScanOptions& opts, const std::vector<Candidate*>& todo,
                  ScanProgress& prog) {
  if (todo.empty()) return;
  unsigned threads = opts.threads ? opts.threads : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min<unsigned>(threads, std::max<size_t>(1, todo.size()));
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> files_done{0}, bytes_done{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex mu;  // guards error; with done_cv, wakes the progress loop when work ends
  std::condition_variable done_cv;
  unsigned running = threads;
  auto worker_loop = [&] {
    for (;;) {
      size_t i = next.fetch_add(1);
      if (i >= todo.size() || failed.load()) return;
      Candidate& c = *todo[i];
      try {
        bool ok = false;
        for (int attempt = 0; attempt < 3 && !ok; ++attempt) ok = hash_one(root, c);
        if (!ok)
          throw Error(Errc::io, "'" + root + "/" + c.path + "' kept changing while it was hashed (3 tries)",
                      "publish again when the writer is done with it");
      } catch (...) {
        std::lock_guard<std::mutex> g(mu);
        if (!error) error = std::current_exception();
        failed = true;
        return;
      }
      files_done.fetch_add(1);
      bytes_done.fetch_add(c.rec.size);
    }
  };
  auto worker = [&] {
    worker_loop();
    std::lock_guard<std::mutex> g(mu);
    if (--running == 0) done_cv.notify_all();
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) pool.emplace_back(worker);
  if (opts.progress) {
    std::unique_lock<std::mutex> lk(mu);
    while (running > 0) {
      lk.unlock();
      prog.files_hashed = files_done.load();
      prog.bytes_hashed = bytes_done.load();
      opts.progress(prog);
      lk.lock();
      done_cv.wait_for(lk, std::chrono::milliseconds(200), [&] { return running == 0; });
    }
  }
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  prog.files_hashed = files_done.load();
  prog.bytes_hashed = bytes_done.load();
  if (opts.progress) opts.progress(prog);
}

// Moves the candidates, in their order, into manifest entries, adding them to stats.
std::vector<Entry> to_entries(std::vector<Candidate>& cands, ScanStats& stats) {
  std::vector<Entry> entries;
  entries.reserve(cands.size());
  for (auto& c : cands) {
    stats.files += 1;
    stats.bytes += c.rec.size;
    if (c.need_hash) {
      stats.hashed_files += 1;
      stats.hashed_bytes += c.rec.size;
    }
    Entry e;
    e.path = std::move(c.path);
    e.size = c.rec.size;
    e.mode = c.mode;
    e.digest = c.rec.digest;
    entries.push_back(std::move(e));
  }
  return entries;
}

}  // namespace

bool is_excluded(std::string_view rel, bool is_dir, const std::vector<std::string>& patterns) {
  // The path itself, then each parent directory.
  if (excluded_here(rel, is_dir, patterns)) return true;
  for (size_t pos = rel.find('/'); pos != std::string_view::npos; pos = rel.find('/', pos + 1))
    if (excluded_here(rel.substr(0, pos), true, patterns)) return true;
  return false;
}

std::vector<Entry> scan_tree(const std::string& root_in, const ScanOptions& opts, ScanStats* stats_out) {
  ScanStats stats;
  std::string root = root_in;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  std::vector<Candidate> cands = Walker(root, opts, stats).walk();
  std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) { return a.path < b.path; });

  // Merge the sorted candidates with the cache's rows (also in path order): no map in memory.
  std::unique_ptr<StatCache> cache;
  if (!opts.stat_cache_path.empty()) cache = std::make_unique<StatCache>(opts.stat_cache_path, root);
  std::vector<std::string> gone = mark_for_hashing(cands, cache.get());
  ScanProgress prog;
  std::vector<Candidate*> todo = hash_queue(cands, prog);
  hash_in_pool(root, opts, todo, prog);

  if (cache) {
    std::vector<std::pair<const std::string*, const StatRecord*>> changed;
    for (auto& c : cands)
      if (c.need_hash) changed.emplace_back(&c.path, &c.rec);
    cache->update(changed, gone);
  }
  std::vector<Entry> entries = to_entries(cands, stats);
  std::vector<Candidate>().swap(cands);
  if (stats_out) *stats_out = stats;
  return entries;
}

}  // namespace distd
