// The course engine's keys of distd.toml, typed, with their defaults in one place (docs/courses.md):
//
//   [hq] courses_channel = "courses"          # HQ: the channel publish-course writes into
//   [regional] courses_channel = "courses"    # a center: the channel that carries the courses
//   [regional] courses_dir = "/srv/courses"   # default <state_dir>/courses: <key>.mbz per course
//   [regional] course_hook = "/usr/local/bin/restore-course"   # run as: hook MBZ SHORTNAME
//   [hq] max_expansion_ratio = 100            # publish-course: members at most 100 x the backup
//
// ([hq] php, for publish-course --moodle, is HQ's: distd/hq/settings.h. [hq.database] is read by
// moodle_db_settings(), distd/course/course_priority.h.)
#pragma once

#include <string>

#include "distd/config/config.h"

namespace distd::course {

struct CourseSettings {
  std::string channel = "courses";  // courses_channel of [hq] or [regional], by the config's role
  std::string courses_dir;          // resolved; default <state_dir>/courses
  std::string hook;                 // course_hook; empty: none
  // [hq] max_expansion_ratio: publish-course refuses a backup whose members add up to more than
  // this many times its own size (and more than kExpansionFloor): a zip or gzip bomb.
  uint64_t max_expansion_ratio = 100;

  // Throws Error{usage} naming a key that is not a string, or a ratio below 1.
  static CourseSettings from(const Config& cfg);
};

// The channel that carries courses: CourseSettings::from(cfg).channel.
std::string courses_channel_name(const Config& cfg);

}  // namespace distd::course
