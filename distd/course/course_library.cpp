#include "distd/course/course_library.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>

#include "distd/course/course_publisher.h"
#include "distd/course/course_settings.h"
#include "distd/course/mbz_archive.h"
#include "manifest/digest.h"
#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/fault.h"
#include "manifest/fs.h"
#include "manifest/path.h"

namespace distd::course {

namespace {

const ChannelConfig* courses_channel(const Config& cfg, const CourseSettings& cs) {
  for (const auto& c : cfg.channels)
    if (c.name == cs.channel) return &c;
  return nullptr;
}

std::string state_path(const Config& cfg) { return cfg.state_dir + "/course-state.json"; }

nlohmann::json load_state(const Config& cfg) {
  try {
    auto j = nlohmann::json::parse(read_file(state_path(cfg), 64 << 20, "course state"));
    if (j.is_object()) return j;
  } catch (...) {
  }
  return nlohmann::json::object();
}

void save_state(const Config& cfg, const nlohmann::json& j) {
  write_file_atomic(state_path(cfg), j.dump(1) + "\n", 0644);
}

std::vector<std::string> course_keys(const std::string& root) {
  std::vector<std::string> keys;
  DIR* d = ::opendir(root.c_str());
  if (!d) return keys;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == ".." || !unsafe_path_reason(n).empty()) continue;
    struct stat st {};
    if (::lstat((root + "/" + n + "/" + kRecordName).c_str(), &st) == 0 && S_ISREG(st.st_mode)) keys.push_back(n);
  }
  ::closedir(d);
  std::sort(keys.begin(), keys.end());
  return keys;
}

// Reads one course from the tree; false when its record is unreadable (logged).
bool read_course(const Config& cfg, const CourseSettings& cs, const std::string& root, const std::string& key,
                 const nlohmann::json& state, LocalCourse* c, const LogFn& log) {
  const std::string rp = root + "/" + key + "/" + kRecordName;
  std::string bytes;
  try {
    bytes = read_file(rp, kMaxRecordBytes, "course record");
    c->record = parse_record(bytes, rp);
  } catch (const Error& e) {
    if (log) log(std::string("course ") + key + ": skipped: " + e.what());
    return false;
  }
  c->key = key;
  c->version = digest_hex(digest_bytes(bytes));
  for (const auto& m : c->record.members) {
    if (m.h.dir) continue;
    c->members_total++;
    c->bytes_total += m.h.size;
    struct stat st {};
    std::string p = root + "/" + key + "/" + kMembersDir + "/" + m.h.path;
    if (::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == m.h.size) {
      c->members_present++;
      c->bytes_present += m.h.size;
    }
  }
  c->mbz_path = cs.courses_dir + "/" + key + ".mbz";
  struct stat st {};
  bool exists = ::stat(c->mbz_path.c_str(), &st) == 0;
  if (exists) c->mbz_size = static_cast<uint64_t>(st.st_size);
  auto s = state.find(key);
  c->built = exists && s != state.end() && s->value("built", "") == c->version;
  c->complete = c->built && c->members_present == c->members_total;
  if (!cs.hook.empty() && cfg.role == "regional") {
    c->hook = "pending";
    if (s != state.end() && s->contains("hook") && (*s)["hook"].value("version", "") == c->version) {
      const auto& h = (*s)["hook"];
      std::string st_ = h.value("state", "");
      int code = h.value("exit", -1);
      c->hook = st_ == "running" ? "interrupted" : code == 0 ? "ok" : "failed (exit " + std::to_string(code) + ")";
    }
  }
  return true;
}

// Builds <courses_dir>/<key>.mbz; false (logged) when a member is missing or does not match.
bool build_archive(const std::string& root, const LocalCourse& c, const std::string& out_dir, const LogFn& log) {
  const std::string tmp = out_dir + "/." + c.key + ".mbz.tmp";
  const std::string dst = out_dir + "/" + c.key + ".mbz";
  std::string problem;
  {
    MbzWriter w(tmp, c.record.format);
    std::vector<char> buf(256 * 1024);
    for (const auto& m : c.record.members) {
      if (m.h.dir) {
        w.add_dir(m.h);
        continue;
      }
      const std::string p = root + "/" + c.key + "/" + kMembersDir + "/" + m.h.path;
      UniqueFd fd(::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) {
        problem = "member " + quote_path(m.h.path) + " cannot be opened";
        break;
      }
      w.begin_file(m.h);
      Hasher h;
      uint64_t left = m.h.size;
      while (left > 0) {
        ssize_t n = ::read(fd.get(), buf.data(), std::min<uint64_t>(buf.size(), left));
        if (n < 0) throw_errno("cannot read", p, errno);
        if (n == 0) break;
        h.update(buf.data(), static_cast<size_t>(n));
        w.write(buf.data(), static_cast<size_t>(n));
        left -= static_cast<uint64_t>(n);
      }
      char extra;
      if (left != 0 || ::read(fd.get(), &extra, 1) != 0 || digest_hex(h.finish()) != m.digest) {
        problem = "member " + quote_path(m.h.path) + " does not match course.json (a newer version is arriving?)";
        break;
      }
    }
    if (problem.empty()) w.finish();
  }
  if (!problem.empty()) {
    discard_file(tmp);
    if (log) log("course " + c.record.info.shortname + ": not rebuilt yet: " + problem);
    return false;
  }
  fault_point("course_before_archive_rename");
  rename_file(tmp, dst, "cannot rename", tmp);
  fsync_dir(out_dir);
  return true;
}

// Runs the hook: /bin/sh -c '<hook> "$@"' course_hook MBZ SHORTNAME; output appended to
// <state_dir>/course-hook.log. Returns the exit status.
int run_hook(const Config& cfg, const std::string& hook, const std::string& mbz, const std::string& shortname) {
  const std::string logp = cfg.state_dir + "/course-hook.log";
  pid_t pid = ::fork();
  if (pid < 0) throw_errno("cannot fork for course_hook", hook, errno);
  if (pid == 0) {
    int fd = ::open(logp.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    int nul = ::open("/dev/null", O_RDONLY);
    if (nul >= 0) ::dup2(nul, 0);
    std::string script = hook + " \"$@\"";
    ::execl("/bin/sh", "sh", "-c", script.c_str(), "course_hook", mbz.c_str(), shortname.c_str(),
            static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

std::vector<LocalCourse> list_courses(const Config& cfg) {
  std::vector<LocalCourse> out;
  const CourseSettings cs = CourseSettings::from(cfg);
  const ChannelConfig* ch = courses_channel(cfg, cs);
  if (!ch) return out;
  nlohmann::json state = load_state(cfg);
  for (const auto& key : course_keys(ch->path)) {
    LocalCourse c;
    if (read_course(cfg, cs, ch->path, key, state, &c, {})) out.push_back(std::move(c));
  }
  return out;
}

RebuildSummary rebuild_courses(const Config& cfg, const LogFn& log) {
  RebuildSummary sum;
  const CourseSettings cs = CourseSettings::from(cfg);
  const ChannelConfig* ch = courses_channel(cfg, cs);
  if (!ch) return sum;
  const std::string& out_dir = cs.courses_dir;
  make_dirs(out_dir, 0755);
  const std::string& hook = cs.hook;
  nlohmann::json state = load_state(cfg);
  for (const auto& key : course_keys(ch->path)) {
    LocalCourse c;
    if (!read_course(cfg, cs, ch->path, key, state, &c, log)) {
      sum.incomplete++;
      continue;
    }
    const std::string& name = c.record.info.shortname;
    if (c.members_present != c.members_total) {
      sum.incomplete++;
      if (log)
        log("course " + name + ": still arriving (" + std::to_string(c.members_present) + " of " +
            std::to_string(c.members_total) + " files, " + human_bytes(c.bytes_present) + " of " +
            human_bytes(c.bytes_total) + ")");
      continue;
    }
    if (!c.built) {
      try {
        if (!build_archive(ch->path, c, out_dir, log)) {
          sum.incomplete++;
          continue;
        }
      } catch (const Error& e) {
        if (e.code() == Errc::no_space) throw;
        if (log) log("course " + name + ": rebuilding the archive failed: " + e.what());
        sum.incomplete++;
        continue;
      }
      state[key]["built"] = c.version;
      state[key]["backup_date"] = c.record.info.backup_date;
      save_state(cfg, state);
      sum.built++;
      struct stat st {};
      ::stat(c.mbz_path.c_str(), &st);
      if (log)
        log("course " + name + ": rebuilt " + c.mbz_path + " (" + human_bytes(static_cast<uint64_t>(st.st_size)) +
            ", " + std::to_string(c.record.members.size()) + " members, backup of " +
            format_utc(c.record.info.backup_date) + ")");
    } else {
      sum.current++;
    }
    // The hook: at most once per course version (state "running" is written before it starts,
    // so a power cut during a restore never restores the same version twice).
    if (hook.empty()) continue;
    auto& s = state[key];
    if (s.contains("hook") && s["hook"].value("version", "") == c.version) continue;
    s["hook"] = {{"version", c.version}, {"state", "running"}, {"started", format_utc(::time(nullptr))}};
    save_state(cfg, state);
    if (log) log("course " + name + ": running course_hook " + hook + " " + c.mbz_path + " " + name);
    int code = 127;
    try {
      char* abs = ::realpath(c.mbz_path.c_str(), nullptr);
      std::string mbz = abs ? abs : c.mbz_path;
      ::free(abs);
      code = run_hook(cfg, hook, mbz, name);
    } catch (const Error& e) {
      if (log) log("course " + name + ": course_hook could not start: " + e.what());
    }
    s["hook"]["state"] = "done";
    s["hook"]["exit"] = code;
    s["hook"]["finished"] = format_utc(::time(nullptr));
    save_state(cfg, state);
    (code == 0 ? sum.hooks_ok : sum.hooks_failed)++;
    if (log)
      log("course " + name + ": course_hook " + (code == 0 ? "succeeded" : "FAILED with exit status " + std::to_string(code)) +
          " (output in " + cfg.state_dir + "/course-hook.log)");
  }
  return sum;
}

void after_install(const Config& cfg, const ChannelConfig& ch, const LogFn& log) {
  if (ch.name != courses_channel_name(cfg)) return;
  rebuild_courses(cfg, log);
}

}  // namespace distd::course
