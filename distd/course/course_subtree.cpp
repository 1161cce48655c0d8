// Step 4 of publish_course(): the course's members/ subtree brought to the new backup. New and
// changed members are renamed in from staging (made durable first), members the backup no longer
// has are removed, unchanged ones are left as they are (same inode), and the channel's stat cache
// is told what was renamed in so that the publisher's scan does not hash it again.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "distd/course/course_publish_run.h"
#include "distd/hq/layout.h"
#include "manifest/digest.h"
#include "manifest/error.h"
#include "manifest/fault.h"
#include "manifest/fs.h"
#include "manifest/path.h"
#include "manifest/stat_cache.h"

namespace distd::course::publish_detail {

namespace {

// Every regular file and directory below root (relative paths); anything else is reported as a file
// so that it gets removed.
void walk(const std::string& root, const std::string& rel, std::vector<std::string>* files,
          std::vector<std::string>* dirs) {
  std::string dir = rel.empty() ? root : root + "/" + rel;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return;
    throw_errno("cannot list directory", dir, errno);
  }
  std::vector<std::pair<std::string, unsigned char>> names;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n, e->d_type);
  }
  ::closedir(d);
  for (auto& [n, type] : names) {
    std::string r = rel.empty() ? n : rel + "/" + n;
    unsigned char t = type;
    if (t == DT_UNKNOWN) {
      struct stat st {};
      if (lstat_file(root + "/" + r, &st)) t = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
    }
    if (t == DT_DIR) {
      walk(root, r, files, dirs);
      dirs->push_back(r);
    } else {
      files->push_back(r);
    }
  }
}

// rename(2) (returns true), or a copy + fsync + rename when staging lies on another file
// system (returns false: the file at `to` is a new one with the time of the copy).
bool move_into_place(const std::string& from, const std::string& to) {
  int err = try_rename(from, to);
  if (err == 0) return true;
  if (err != EXDEV) throw_errno("cannot move into the course tree", to, err);
  std::string tmp = to + ".distd-tmp";
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) throw_errno("cannot open", from, errno);
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out) throw_errno("cannot create", tmp, errno);
  std::string buf(kChunk, '\0');
  for (;;) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0) throw_errno("cannot read", from, errno);
    if (n == 0) break;
    write_all(out.get(), std::string_view(buf.data(), static_cast<size_t>(n)), tmp);
  }
  sync_file(out.get(), tmp);
  out = UniqueFd();
  rename_file(tmp, to, "cannot rename", tmp);
  discard_file(from);
  return false;
}

void sync_fs_of(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw_errno("cannot open", dir, errno);
  sync_filesystem(fd.get(), dir);
}

int64_t now_ns() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// A member file this run wrote and renamed into the tree, for the stat cache.
struct Placed {
  std::string rel;      // path below the channel's root
  std::string full;
  uint64_t ino = 0;     // of the staged file that was renamed
  uint64_t size = 0;
  int64_t mtime_s = 0;  // the archive member's, set on the file
  Digest digest{};
};

// Tells the channel's stat cache what this run wrote, so that the publisher's scan does not hash
// those files again: each was hashed as it streamed out of the archive, given the member's mtime
// (in the past), made durable (syncfs) and renamed. Only a file that still is exactly that (same inode,
// size and mtime) is recorded, with its stat as it is now; a later change of any kind changes
// mtime or ctime and the scan hashes it again. A file changed before our stat has a recent mtime,
// which the racy-clean rule (stat_cache.h) does not trust. Best effort: on any failure the scan
// simply hashes.
void seed_stat_cache(const std::string& cache_path, const std::string& root, const std::vector<Placed>& placed,
                     std::vector<std::string>* warnings) {
  if (placed.empty()) return;
  std::vector<std::string> paths;
  std::vector<StatRecord> recs;
  paths.reserve(placed.size());
  recs.reserve(placed.size());
  for (const auto& p : placed) {
    struct stat st {};
    if (::lstat(p.full.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    StatRecord r = stat_record_of(st);
    if (r.ino != p.ino || r.size != p.size || r.mtime_ns != p.mtime_s * 1'000'000'000) continue;
    r.digest = p.digest;
    r.hashed_at_ns = now_ns();
    if (!r.trustworthy()) continue;  // a member dated now or in the future: let the scan hash it
    paths.push_back(p.rel);
    recs.push_back(r);
  }
  std::vector<std::pair<const std::string*, const StatRecord*>> rows;
  rows.reserve(paths.size());
  for (size_t i = 0; i < paths.size(); ++i) rows.emplace_back(&paths[i], &recs[i]);
  try {
    make_dirs(dir_name(cache_path), 0755);
    StatCache cache(cache_path, root);
    cache.update(rows, {});
  } catch (const Error& e) {
    warnings->push_back(std::string("the new members will be hashed again by the scan: ") + e.what());
  }
}

// Removes the files below members_root that are not in keep (noting their directories in dirty),
// then every directory left empty, deepest first.
void prune_subtree(const std::string& members_root, const std::unordered_set<std::string>& keep,
                   std::unordered_set<std::string>& dirty) {
  std::vector<std::string> tree_files, tree_dirs;
  walk(members_root, "", &tree_files, &tree_dirs);
  for (const auto& f : tree_files) {
    if (keep.count(f)) continue;  // unchanged: stays; changed: replaced by rename below
    std::string p = members_root + "/" + f;
    if (int e = try_remove_file(p); e != 0 && e != ENOENT) throw_errno("cannot remove", p, e);
    dirty.insert(dir_name(p));
  }
  std::sort(tree_dirs.begin(), tree_dirs.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
  for (const auto& d : tree_dirs) (void)try_remove_dir(members_root + "/" + d);  // only empty ones go
}

// Staged content and modes durable before any of it is renamed in: one syncfs(2) of the
// staging file system instead of an fsync (and journal commit) per member.
void make_staged_durable(const std::unordered_map<size_t, std::string>& staged, const std::vector<Member>& members,
                         const std::string& staging_dir) {
  if (staged.empty()) return;
  for (const auto& [i, path] : staged)
    if (::chmod(path.c_str(), members[i].h.mode) != 0) throw_errno("cannot chmod", path, errno);
  sync_fs_of(staging_dir);
}

// Renames file member i of run in from staging unless the tree holds it unchanged. Returns whether
// it did; then its directory is in dirty and, when renamed (not copied), the file in placed.
bool place_member(const CourseRun& run, size_t i, std::unordered_set<std::string>& dirty,
                  std::vector<Placed>& placed) {
  const Member& m = run.members[i];
  const std::string final_path = run.members_root + "/" + m.h.path;
  auto s = run.staged.find(i);
  auto it = run.old_by_path.find(m.h.path);
  struct stat st {};
  bool in_place = it != run.old_by_path.end() && it->second->digest == m.digest && lstat_file(final_path, &st) &&
                  S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == m.h.size;
  if (in_place) return false;
  if (s == run.staged.end())
    throw Error(Errc::internal, "member " + quote_path(m.h.path) + " of '" + run.mbz_path + "' was not staged",
                "please report this; nothing was published");
  std::string parent = dir_name(final_path);
  struct stat pst {};
  if (lstat_file(parent, &pst) && !S_ISDIR(pst.st_mode)) discard_file(parent);
  make_dirs(parent, 0755);
  if (lstat_file(final_path, &st) && S_ISDIR(st.st_mode)) remove_tree(final_path);
  struct stat sst {};
  if (!lstat_file(s->second, &sst)) throw_errno("cannot stat staged file", s->second, errno);
  if (move_into_place(s->second, final_path)) {
    Placed p;
    p.rel = run.res.key + "/" + kMembersDir + "/" + m.h.path;
    p.full = final_path;
    p.ino = sst.st_ino;
    p.size = m.h.size;
    p.mtime_s = m.h.mtime;
    if (auto d = parse_digest_hex(m.digest)) {
      p.digest = *d;
      placed.push_back(std::move(p));
    }
  }
  dirty.insert(parent);
  return true;
}

}  // namespace

size_t CourseRun::update_subtree() {
  make_dirs(members_root, 0755);
  std::unordered_set<std::string> dirty;
  prune_subtree(members_root, new_files, dirty);
  fault_point("course_before_members");
  make_staged_durable(staged, members, staging.dir);
  std::vector<Placed> placed;
  size_t moved = 0;
  for (size_t i = 0; i < members.size(); ++i) {
    if (members[i].h.dir || !place_member(*this, i, dirty, placed)) continue;
    ++moved;
    fault_point("course_member");
  }
  for (const auto& d : dirty) {
    struct stat st {};
    if (lstat_file(d, &st)) fsync_dir(d);
  }
  std::string root = ch.path;
  while (root.size() > 1 && root.back() == '/') root.pop_back();  // as scan_tree() names it
  seed_stat_cache(hq::Layout{cfg.state_dir}.stat_cache(ch.name), root, placed, &warnings);
  return moved;
}

}  // namespace distd::course::publish_detail
