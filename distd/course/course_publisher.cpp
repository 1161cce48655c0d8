#include "distd/course/course_publisher.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <unordered_map>
#include <unordered_set>

#include "distd/course/course_priority.h"
#include "distd/course/course_publish_run.h"
#include "distd/course/course_settings.h"
#include "distd/io/member_pipe.h"
#include "manifest/digest.h"
#include "manifest/error.h"
#include "manifest/fault.h"
#include "manifest/fs.h"
#include "manifest/path.h"

namespace distd::course {

namespace publish_detail {

namespace {

constexpr uint64_t kMaxBackupXml = 64ull << 20;
constexpr uint64_t kKeptMax = 16ull << 20;  // members before moodle_backup.xml held in memory

void log_to(const CoursePublishOptions& o, const std::string& s) {
  if (o.log) o.log(s);
}

std::string base_name(const std::string& p) {
  auto s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

// Exclusive lock for the length of a course publish (two at once would interleave subtrees).
class CourseLock {
 public:
  explicit CourseLock(const std::string& path) {
    fd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd_) throw_errno("cannot open lock file", path, errno);
    if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0)
      throw Error(Errc::busy, "another publish-course is running (lock " + path + " is held)",
                  "wait for it to finish, then run again");
  }

 private:
  UniqueFd fd_;
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
          throw Error(Errc::corrupt, "course backup '" + archive + "': moodle_backup.xml (or a member before it) is larger than 64 MiB",
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

std::vector<size_t> CourseRun::read_archive(MbzReader& rd) {
  MemberPipe pipe;  // inflating here, hashing and writing on a second thread
  std::vector<std::pair<size_t, const Member*>> hash_only_members;  // compared once hashed
  // Until moodle_backup.xml is read the course, and so its previous version, is not known: the
  // members before it (Moodle's .ARCHIVE_INDEX) wait in memory, up to kKeptMax, as does the xml.
  std::vector<std::pair<size_t, std::string>> kept;
  uint64_t kept_bytes = 0;
  bool have_xml = false;
  MemberHeader h;
  while (rd.next(&h)) {
    Member m;
    m.h = h;
    const size_t idx = members.size();
    if (!h.dir) {
      const bool is_xml = h.path == "moodle_backup.xml";
      const bool keep = is_xml || (!have_xml && kept_bytes + h.size <= kKeptMax);
      if (keep) kept.emplace_back(idx, std::string()), kept_bytes += h.size;
      stream_file_member(rd, pipe, idx, h, keep ? &kept.back().second : nullptr, hash_only_members);
      if (is_xml) {
        have_xml = true;
        adopt_backup_xml(kept.back().second);
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
  std::vector<size_t> second_pass;
  for (const auto& [idx, prev] : hash_only_members)
    if (members[idx].digest != prev->digest) second_pass.push_back(idx);
  if (!have_xml)
    throw Error(Errc::corrupt,
                "'" + mbz_path + "' is not a Moodle course backup: it has no moodle_backup.xml (" +
                    std::to_string(members.size()) + " members read)",
                "give the .mbz file that Moodle's backup produced; nothing was published");
  check_content_names(pipe);
  for (const auto& [idx, bytes] : kept) stage_kept(idx, bytes);
  return second_pass;
}

// A member kept in memory while the course was not known: staged unless the tree holds it unchanged.
void CourseRun::stage_kept(size_t idx, const std::string& bytes) {
  const Member& m = members[idx];
  auto prev = old_by_path.find(m.h.path);
  struct stat st {};
  if (prev != old_by_path.end() && prev->second->digest == m.digest &&
      lstat_file(members_root + "/" + m.h.path, &st) && S_ISREG(st.st_mode) &&
      static_cast<uint64_t>(st.st_size) == m.h.size)
    return;
  const std::string sp = staging.file(idx);
  UniqueFd out(::open(sp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out) throw_errno("cannot create staged file", sp, errno);
  write_all(out.get(), bytes, sp);
  set_mtime(out.get(), m.h.mtime);
  staged.emplace(idx, sp);
}

void CourseRun::stream_file_member(MbzReader& rd, MemberPipe& pipe, size_t idx, const MemberHeader& h,
                                   std::string* keep, std::vector<std::pair<size_t, const Member*>>& hash_only) {
  const Member* prev = nullptr;
  if (!old_by_path.empty()) {
    auto it = old_by_path.find(h.path);
    if (it != old_by_path.end()) prev = it->second;
  }
  struct stat st {};
  // Probably unchanged (same path and size as the previous version, still in the tree):
  // hash only. The rare miss is fetched by a second pass over the archive.
  const bool only_hash = prev && prev->h.size == h.size && lstat_file(members_root + "/" + h.path, &st) &&
                         S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == h.size;
  UniqueFd out;
  std::string sp;
  if (keep) {  // kept in memory; stage_kept() stages it when it changed
  } else if (!only_hash) {
    sp = staging.file(idx);
    out = UniqueFd(::open(sp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!out) throw_errno("cannot create staged file", sp, errno);
  }
  stream_member(rd, pipe, idx, std::move(out), sp, h.mtime, is_content_named(h.path), keep, mbz_path);
  if (keep) return;
  if (only_hash) hash_only.emplace_back(idx, prev);
  else staged.emplace(idx, sp);
}

void CourseRun::adopt_backup_xml(const std::string& xml) {
  res.record.info = parse_backup_info(xml, mbz_path);
  res.key = course_key(res.record.info.shortname);
  members_root = ch.path + "/" + res.key + "/" + kMembersDir;
  old = load_record(ch.path + "/" + res.key + "/" + kRecordName, &warnings);
  if (old)
    for (const auto& om : old->members)
      if (!om.h.dir) old_by_path.emplace(om.h.path, &om);
}

// Content-named members must hold that content, or the restore picks a wrong or no file.
void CourseRun::check_content_names(const MemberPipe& pipe) const {
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

void CourseRun::reread_members(const std::vector<size_t>& second_pass) {
  if (second_pass.empty()) return;
  log_to(opts, "reading " + std::to_string(second_pass.size()) + " changed members of the same size again");
  std::unordered_set<size_t> want(second_pass.begin(), second_pass.end());
  MbzReader again(mbz_path, CourseSettings::from(cfg).max_expansion_ratio);
  std::vector<char> buf(kChunk);
  MemberHeader h;
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

void CourseRun::describe_changes(const MbzReader& rd) {
  CourseRecord& rec = res.record;
  rec.format = rd.format();
  rec.archive_size = rd.archive_size();
  rec.archive_name = base_name(mbz_path);
  rec.published = static_cast<int64_t>(::time(nullptr));
  rec.members = members;
  res.first = !old;
  if (old) res.previous_backup_date = old->info.backup_date;
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
}

// The course's moodledata blobs for replica centers.
void CourseRun::write_priority_list() {
  const std::string prio_path = ch.path + "/" + res.key + "/" + kPriorityName;
  if (auto db = moodle_db_settings(cfg)) {
    try {
      std::vector<std::string> hashes = course_filedir_hashes(*db, res.record.info.course_id);
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
}

// An identical backup published again keeps its record (and so the channel) as it was.
void CourseRun::write_record() {
  CourseRecord& rec = res.record;
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
  // Unchanged: not written again (a no-op publish writes nothing to the tree).
  const std::string path = ch.path + "/" + res.key + "/" + kRecordName;
  struct stat st {};
  if (old && lstat_file(path, &st) && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == record_json.size() &&
      read_file(path, kMaxRecordBytes, "course record") == record_json)
    return;
  write_file_atomic(path, record_json, 0644);
}

}  // namespace publish_detail

CoursePublishResult publish_course(const Config& cfg, const std::string& mbz_path, const CoursePublishOptions& opts) {
  cfg.require_role("hq", "only HQ publishes courses",
                   "run distctl publish-course at HQ with HQ's config (role = \"hq\")");
  const std::string channel = opts.channel.empty() ? courses_channel_name(cfg) : opts.channel;
  const ChannelConfig& ch = cfg.channel(channel);
  if (ch.preset == "moodledata")
    throw Error(Errc::usage, "config " + cfg.file + ": channel '" + ch.name + "' is a moodledata tree, not a courses channel",
                "add [[channel]] name = \"courses\" path = \"/var/lib/distd/courses\" link = true");
  make_dirs(cfg.state_dir, 0755);
  make_dirs(ch.path, 0755);
  publish_detail::CourseLock lock(cfg.state_dir + "/course-publish.lock");
  publish_detail::Staging staging(cfg.state_dir + "/course-staging");

  publish_detail::CourseRun run(cfg, ch, mbz_path, opts, staging);

  // 1. Read and check the whole archive; stage what the tree does not have yet.
  MbzReader rd(mbz_path, CourseSettings::from(cfg).max_expansion_ratio);
  const std::vector<size_t> second_pass = run.read_archive(rd);
  fault_point("course_after_read");

  // 2. The few members that looked unchanged but are not: read them again.
  run.reread_members(second_pass);

  // 3. The record, and what changed since the previous version.
  run.describe_changes(rd);
  for (const auto& [idx, path] : run.staged) run.res.staged_bytes += run.members[idx].h.size;

  // 4. Bring the course's subtree to the new version; course.json last.
  const size_t moved = run.update_subtree();
  run.write_priority_list();
  fault_point("course_before_record");
  run.write_record();
  fault_point("course_after_record");
  CoursePublishResult& res = run.res;
  publish_detail::log_to(opts, "course " + res.record.info.shortname + ": " + std::to_string(moved) +
                                   " members written, " + std::to_string(res.unchanged.files) + " unchanged");

  // 5. Sign the new version of the channel.
  hq::PublishOptions po;
  po.force = opts.force;
  res.publish = hq::publish_channel(cfg, ch.name, {}, po);
  for (auto& w : run.warnings) res.publish.warnings.insert(res.publish.warnings.begin(), w);
  return std::move(res);
}

}  // namespace distd::course
