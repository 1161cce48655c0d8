#include "distd/course/course_publisher.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <unordered_map>
#include <unordered_set>

#include "distd/course/course_priority.h"
#include "distd/io/member_pipe.h"
#include "distd/hq/layout.h"
#include "manifest/digest.h"
#include "manifest/error.h"
#include "manifest/fault.h"
#include "manifest/fs.h"
#include "manifest/path.h"
#include "manifest/stat_cache.h"

namespace distd::course {

std::string courses_channel_name(const Config& cfg) {
  std::string section = cfg.role == "regional" ? "regional" : "hq";
  return cfg.get_string(section + ".courses_channel", "courses");
}

namespace {

constexpr uint64_t kMaxBackupXml = 64ull << 20;
constexpr size_t kChunk = 256 * 1024;

void log_to(const CoursePublishOptions& o, const std::string& s) {
  if (o.log) o.log(s);
}

std::string base_name(const std::string& p) {
  auto s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

bool lstat_file(const std::string& p, struct stat* st) { return ::lstat(p.c_str(), st) == 0; }

// Exclusive lock for the length of a course publish (two at once would interleave subtrees).
class CourseLock {
 public:
  explicit CourseLock(const std::string& path) {
    fd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd_) throw_errno("cannot open lock file", path, errno);
    if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0)
      throw Error(Errc::io, "another publish-course is running (lock " + path + " is held)",
                  "wait for it to finish, then run again");
  }

 private:
  UniqueFd fd_;
};

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
  ::unlink(from.c_str());
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

struct Staging {
  std::string dir;
  explicit Staging(std::string d) : dir(std::move(d)) {
    remove_tree(dir);  // left-overs of an interrupted run
    make_dirs(dir, 0750);
  }
  ~Staging() { remove_tree(dir); }
  std::string file(size_t idx) const { return dir + "/m" + std::to_string(idx); }
};

// Streams the current member: hashes it, optionally writes it to out and/or keeps it in memory.
std::string pump(MbzReader& rd, std::vector<char>& buf, int out_fd, const std::string& out_path, std::string* keep,
                 uint64_t* size, const std::string& archive) {
  Hasher h;
  uint64_t total = 0;
  for (;;) {
    size_t n = rd.read(buf.data(), buf.size());
    if (n == 0) break;
    h.update(buf.data(), n);
    total += n;
    if (out_fd >= 0) write_all(out_fd, std::string_view(buf.data(), n), out_path);
    if (keep) {
      if (keep->size() + n > kMaxBackupXml)
        throw Error(Errc::corrupt, "course backup '" + archive + "': moodle_backup.xml is larger than 64 MiB",
                    "this is not a Moodle course backup; nothing was published");
      keep->append(buf.data(), n);
    }
  }
  *size = total;
  return digest_hex(h.finish());
}

// Moodle stores a file's content as files/<h[0:2]>/<h>, h the SHA-1 of the content (its
// contenthash), and its restore finds the file by that name. True for such a member path.
bool is_content_named(const std::string& path) {
  if (path.size() != 6 + 3 + 40 || path.compare(0, 6, "files/") != 0 || path[6] == '/' || path[7] == '/' ||
      path[8] != '/')
    return false;
  for (size_t i = 9; i < path.size(); ++i)
    if (!((path[i] >= '0' && path[i] <= '9') || (path[i] >= 'a' && path[i] <= 'f'))) return false;
  return true;
}

void set_mtime(int fd, int64_t mtime_s) {
  struct timespec ts[2] = {{static_cast<time_t>(mtime_s), 0}, {static_cast<time_t>(mtime_s), 0}};
  ::futimens(fd, ts);  // on failure the file keeps the time of now: the scan hashes it
}

// Streams the current member through the pipe (hashed, and written to out when it is valid);
// with keep, also keeps its bytes in memory (moodle_backup.xml).
void stream_member(MbzReader& rd, MemberPipe& pipe, size_t idx, UniqueFd out, const std::string& out_path,
                   int64_t mtime_s, bool sha1, std::string* keep, const std::string& archive) {
  pipe.begin(idx, std::move(out), out_path, mtime_s, sha1);
  for (;;) {
    char* b = pipe.buffer();
    size_t n = 0;
    try {
      n = rd.read(b, pipe.buffer_size());
      if (keep && n > 0) {
        if (keep->size() + n > kMaxBackupXml)
          throw Error(Errc::corrupt, "course backup '" + archive + "': moodle_backup.xml is larger than 64 MiB",
                      "this is not a Moodle course backup; nothing was published");
        keep->append(b, n);
      }
    } catch (...) {
      pipe.commit(0);
      throw;
    }
    pipe.commit(n);
    if (n == 0) break;
  }
  pipe.end();
}

std::optional<CourseRecord> load_record(const std::string& path, std::vector<std::string>* warnings) {
  struct stat st {};
  if (!lstat_file(path, &st)) return std::nullopt;
  try {
    return parse_record(read_file(path, kMaxRecordBytes, "course record"), path);
  } catch (const Error& e) {
    warnings->push_back(std::string("the previous course record is unreadable, treating the course as new: ") + e.what());
    return std::nullopt;
  }
}

}  // namespace

CoursePublishResult publish_course(const Config& cfg, const std::string& mbz_path, const CoursePublishOptions& opts) {
  if (cfg.role != "hq")
    throw Error(Errc::usage, "config " + cfg.file + " has role \"" + cfg.role + "\"; only HQ publishes courses",
                "run distctl publish-course at HQ with HQ's config (role = \"hq\")");
  const std::string channel = opts.channel.empty() ? courses_channel_name(cfg) : opts.channel;
  const ChannelConfig& ch = cfg.channel(channel);
  if (ch.preset == "moodledata")
    throw Error(Errc::usage, "config " + cfg.file + ": channel '" + ch.name + "' is a moodledata tree, not a courses channel",
                "add [[channel]] name = \"courses\" path = \"/var/lib/distd/courses\" link = true");
  make_dirs(cfg.state_dir, 0755);
  make_dirs(ch.path, 0755);
  CourseLock lock(cfg.state_dir + "/course-publish.lock");
  Staging staging(cfg.state_dir + "/course-staging");

  CoursePublishResult res;
  std::vector<std::string> warnings;

  // 1. Read and check the whole archive; stage what the tree does not have yet.
  MbzReader rd(mbz_path);
  std::vector<Member> members;
  std::unordered_map<size_t, std::string> staged;  // member index -> staged file
  std::vector<size_t> second_pass;
  std::vector<std::pair<size_t, const Member*>> hash_only_members;  // compared once hashed
  MemberPipe pipe;  // inflating here, hashing and writing on a second thread
  std::string xml;
  bool have_xml = false;
  std::optional<CourseRecord> old;
  std::unordered_map<std::string, const Member*> old_by_path;
  std::string members_root;
  std::vector<char> buf(kChunk);
  MemberHeader h;
  while (rd.next(&h)) {
    Member m;
    m.h = h;
    const size_t idx = members.size();
    if (!h.dir) {
      const bool is_xml = h.path == "moodle_backup.xml";
      const Member* prev = nullptr;
      if (!old_by_path.empty()) {
        auto it = old_by_path.find(h.path);
        if (it != old_by_path.end()) prev = it->second;
      }
      struct stat st {};
      // Probably unchanged (same path and size as the previous version, still in the tree):
      // hash only. The rare miss is fetched by a second pass over the archive.
      const bool hash_only = prev && !is_xml && prev->h.size == h.size &&
                             lstat_file(members_root + "/" + h.path, &st) && S_ISREG(st.st_mode) &&
                             static_cast<uint64_t>(st.st_size) == h.size;
      UniqueFd out;
      std::string sp;
      if (!hash_only) {
        sp = staging.file(idx);
        out = UniqueFd(::open(sp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!out) throw_errno("cannot create staged file", sp, errno);
      }
      stream_member(rd, pipe, idx, std::move(out), sp, h.mtime, is_content_named(h.path), is_xml ? &xml : nullptr,
                    mbz_path);
      if (hash_only) hash_only_members.emplace_back(idx, prev);
      else staged.emplace(idx, sp);
      if (is_xml) {
        have_xml = true;
        res.record.info = parse_backup_info(xml, mbz_path);
        res.key = course_key(res.record.info.shortname);
        members_root = ch.path + "/" + res.key + "/" + kMembersDir;
        old = load_record(ch.path + "/" + res.key + "/" + kRecordName, &warnings);
        if (old)
          for (const auto& om : old->members)
            if (!om.h.dir) old_by_path.emplace(om.h.path, &om);
      }
    }
    members.push_back(std::move(m));
  }
  pipe.finish();
  for (size_t i = 0; i < members.size(); ++i) {
    if (members[i].h.dir) continue;
    const MemberPipe::Result& r = pipe.result(i);
    members[i].digest = digest_hex(r.digest);
    members[i].h.size = r.size;
  }
  for (const auto& [idx, prev] : hash_only_members)
    if (members[idx].digest != prev->digest) second_pass.push_back(idx);
  if (!have_xml)
    throw Error(Errc::corrupt,
                "'" + mbz_path + "' is not a Moodle course backup: it has no moodle_backup.xml (" +
                    std::to_string(members.size()) + " members read)",
                "give the .mbz file that Moodle's backup produced; nothing was published");
  // Content-named members must hold that content, or the restore picks a wrong or no file.
  {
    size_t bad = 0;
    std::string first;
    for (size_t i = 0; i < members.size(); ++i) {
      const Member& m = members[i];
      if (m.h.dir || !is_content_named(m.h.path)) continue;
      const std::string& sha1 = pipe.result(i).sha1_hex;
      const std::string named = m.h.path.substr(9);
      if (sha1 == named && m.h.path.compare(6, 2, named, 0, 2) == 0) continue;
      if (bad++ == 0)
        first = "member " + quote_path(m.h.path) + (sha1 == named ? " is in the wrong directory for its SHA-1"
                                                                     : " has SHA-1 " + sha1 + ", not the one its name says");
    }
    if (bad > 0)
      throw Error(Errc::corrupt,
                  "course backup '" + mbz_path + "' is damaged: " + first +
                      (bad > 1 ? " (and " + std::to_string(bad - 1) + " more such members)" : ""),
                  "Moodle's restore finds each file by the SHA-1 in its name, so this backup would restore wrong "
                  "or missing files; make the backup again in Moodle (and check the site's filedir); nothing was "
                  "published");
  }
  fault_point("course_after_read");

  // 2. The few members that looked unchanged but are not: read them again.
  if (!second_pass.empty()) {
    log_to(opts, "reading " + std::to_string(second_pass.size()) + " changed members of the same size again");
    std::unordered_set<size_t> want(second_pass.begin(), second_pass.end());
    MbzReader again(mbz_path);
    size_t idx = 0;
    while (again.next(&h)) {
      if (want.count(idx)) {
        std::string sp = staging.file(idx);
        UniqueFd out(::open(sp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!out) throw_errno("cannot create staged file", sp, errno);
        uint64_t size = 0;
        std::string d = pump(again, buf, out.get(), sp, nullptr, &size, mbz_path);
        if (idx >= members.size() || d != members[idx].digest || size != members[idx].h.size)
          throw Error(Errc::mismatch, "course backup '" + mbz_path + "' changed while it was being published",
                      "wait until the backup is complete, then run again; nothing was published");
        set_mtime(out.get(), h.mtime);
        staged.emplace(idx, sp);
      }
      ++idx;
    }
  }

  // 3. The record, and what changed since the previous version.
  CourseRecord& rec = res.record;
  rec.format = rd.format();
  rec.archive_size = rd.archive_size();
  rec.archive_name = base_name(mbz_path);
  rec.published = static_cast<int64_t>(::time(nullptr));
  rec.members = members;
  res.first = !old;
  if (old) res.previous_backup_date = old->info.backup_date;
  std::unordered_set<std::string> new_files;
  for (size_t i = 0; i < members.size(); ++i) {
    const Member& m = members[i];
    if (m.h.dir) continue;
    new_files.insert(m.h.path);
    auto it = old_by_path.find(m.h.path);
    MemberDelta& d = it == old_by_path.end() ? res.added : it->second->digest != m.digest ? res.changed : res.unchanged;
    d.files++;
    d.bytes += m.h.size;
  }
  if (old)
    for (const auto& om : old->members)
      if (!om.h.dir && !new_files.count(om.h.path)) {
        res.removed.files++;
        res.removed.bytes += om.h.size;
      }

  // 4. Bring the course's subtree to the new version; course.json last.
  const std::string course_dir = ch.path + "/" + res.key;
  make_dirs(members_root, 0755);
  std::vector<std::string> tree_files, tree_dirs;
  walk(members_root, "", &tree_files, &tree_dirs);
  std::unordered_set<std::string> dirty;
  std::vector<Placed> placed;
  for (const auto& f : tree_files) {
    if (new_files.count(f)) continue;  // unchanged: stays; changed: replaced by rename below
    std::string p = members_root + "/" + f;
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) throw_errno("cannot remove", p, errno);
    dirty.insert(dir_name(p));
  }
  std::sort(tree_dirs.begin(), tree_dirs.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
  for (const auto& d : tree_dirs) ::rmdir((members_root + "/" + d).c_str());  // only empty ones go
  fault_point("course_before_members");
  // Staged content and modes durable before any of it is renamed in: one syncfs(2) of the
  // staging file system instead of an fsync (and journal commit) per member.
  if (!staged.empty()) {
    for (const auto& [i, path] : staged)
      if (::chmod(path.c_str(), members[i].h.mode) != 0) throw_errno("cannot chmod", path, errno);
    sync_fs_of(staging.dir);
  }
  size_t moved = 0;
  for (size_t i = 0; i < members.size(); ++i) {
    const Member& m = members[i];
    if (m.h.dir) continue;
    const std::string final_path = members_root + "/" + m.h.path;
    auto s = staged.find(i);
    auto it = old_by_path.find(m.h.path);
    struct stat st {};
    bool in_place = it != old_by_path.end() && it->second->digest == m.digest && lstat_file(final_path, &st) &&
                    S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == m.h.size;
    if (in_place) continue;
    if (s == staged.end())
      throw Error(Errc::internal, "member " + quote_path(m.h.path) + " of '" + mbz_path + "' was not staged",
                  "please report this; nothing was published");
    std::string parent = dir_name(final_path);
    struct stat pst {};
    if (lstat_file(parent, &pst) && !S_ISDIR(pst.st_mode)) ::unlink(parent.c_str());
    make_dirs(parent, 0755);
    if (lstat_file(final_path, &st) && S_ISDIR(st.st_mode)) remove_tree(final_path);
    struct stat sst {};
    if (!lstat_file(s->second, &sst)) throw_errno("cannot stat staged file", s->second, errno);
    if (move_into_place(s->second, final_path)) {
      Placed p;
      p.rel = res.key + "/" + kMembersDir + "/" + m.h.path;
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
    ++moved;
    fault_point("course_member");
  }
  for (const auto& d : dirty) {
    struct stat st {};
    if (lstat_file(d, &st)) fsync_dir(d);
  }
  {
    std::string root = ch.path;
    while (root.size() > 1 && root.back() == '/') root.pop_back();  // as scan_tree() names it
    seed_stat_cache(hq::Layout{cfg.state_dir}.stat_cache(ch.name), root, placed, &warnings);
  }

  // The course's moodledata blobs for replica centers.
  const std::string prio_path = course_dir + "/" + kPriorityName;
  if (auto db = moodle_db_settings(cfg)) {
    try {
      std::vector<std::string> hashes = course_filedir_hashes(*db, rec.info.course_id);
      std::string text;
      for (const auto& hsh : hashes) text += hsh + "\n";
      write_file_atomic(prio_path, text, 0644);
      res.priority_hashes = hashes.size();
    } catch (const Error& e) {
      warnings.push_back(std::string("no filedir priority list for this course: ") + e.what() +
                         (e.hint().empty() ? "" : " (" + e.hint() + ")"));
      res.priority_note = e.what();
    }
  } else {
    res.priority_note = "no [hq.database] configured";
  }
  fault_point("course_before_record");
  // An identical backup published again keeps its record (and so the channel) as it was.
  std::string record_json;
  if (old) {
    rec.published = old->published;
    record_json = record_to_json(rec);
    if (record_json != record_to_json(*old)) {
      rec.published = static_cast<int64_t>(::time(nullptr));
      record_json = record_to_json(rec);
    }
  } else {
    record_json = record_to_json(rec);
  }
  write_file_atomic(course_dir + "/" + kRecordName, record_json, 0644);
  fault_point("course_after_record");
  log_to(opts, "course " + rec.info.shortname + ": " + std::to_string(moved) + " members written, " +
                   std::to_string(res.unchanged.files) + " unchanged");

  // 5. Sign the new version of the channel.
  hq::PublishOptions po;
  po.force = opts.force;
  res.publish = hq::publish_channel(cfg, ch.name, {}, po);
  for (auto& w : warnings) res.publish.warnings.insert(res.publish.warnings.begin(), w);
  return res;
}

}  // namespace distd::course
