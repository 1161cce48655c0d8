// A regional center's courses: rebuilding each complete course's .mbz from its verified members,
// the optional on-arrival hook, and the list behind `distctl courses`.
//
//   [regional] courses_dir = "/srv/courses"   # default <state_dir>/courses: <key>.mbz per course
//   [regional] course_hook = "/usr/local/bin/restore-course"   # run as: hook MBZ SHORTNAME
// (read by CourseSettings, distd/course/course_settings.h)
//
// after_install() is plugged into the sync engine by register_plugins() (distd/plugins.h) and runs after each
// sync (or bundle import) of the courses channel. The state (which version of each course was
// built, which version the hook ran for, with what result) is <state_dir>/course-state.json.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "distd/config/config.h"
#include "distd/course/course_record.h"

namespace distd::course {

using LogFn = std::function<void(const std::string&)>;

struct LocalCourse {
  std::string key;
  CourseRecord record;
  std::string version;             // BLAKE2b-256 hex of course.json: one course version
  size_t members_total = 0, members_present = 0;  // file members, and those here with their size
  uint64_t bytes_total = 0, bytes_present = 0;
  bool built = false;              // <courses_dir>/<key>.mbz is this version
  bool complete = false;           // every member here and the archive built
  std::string mbz_path;
  uint64_t mbz_size = 0;
  std::string hook;                // "" (no hook), "pending", "running", "ok", "failed (exit N)"
};

// The courses in this site's courses channel tree (regional: installed; HQ: the source tree).
std::vector<LocalCourse> list_courses(const Config& cfg);

struct RebuildSummary {
  size_t built = 0, current = 0, incomplete = 0, hooks_ok = 0, hooks_failed = 0;
};

// Rebuilds the archive of every complete course whose version is not built yet, atomically
// (temporary file, fsync, rename, fsync of the directory), verifying each member against its
// digest in course.json as it is copied; runs the hook once per new course version. Errors of
// one course are logged and do not stop the others; Error{no_space, io} of the directory itself
// are thrown.
RebuildSummary rebuild_courses(const Config& cfg, const LogFn& log);

// The sync engine's hook: rebuild_courses() when ch is the courses channel, nothing otherwise.
void after_install(const Config& cfg, const ChannelConfig& ch, const LogFn& log);

}  // namespace distd::course
