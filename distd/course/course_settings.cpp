#include "distd/course/course_settings.h"

#include "manifest/error.h"

namespace distd::course {

CourseSettings CourseSettings::from(const Config& cfg) {
  CourseSettings s;
  const std::string section = cfg.role == "regional" ? "regional" : "hq";
  s.channel = cfg.get_string(section + ".courses_channel", s.channel);
  s.courses_dir = cfg.resolve(cfg.get_string("regional.courses_dir", cfg.state_dir + "/courses"));
  s.hook = cfg.get_string("regional.course_hook", s.hook);
  int64_t ratio = cfg.get_int("hq.max_expansion_ratio", static_cast<int64_t>(s.max_expansion_ratio));
  if (ratio < 1)
    throw Error(Errc::usage, "config " + cfg.file + ": [hq] max_expansion_ratio must be 1 or more",
                "write e.g. max_expansion_ratio = 100 (docs/courses.md)");
  s.max_expansion_ratio = static_cast<uint64_t>(ratio);
  return s;
}

std::string courses_channel_name(const Config& cfg) { return CourseSettings::from(cfg).channel; }

}  // namespace distd::course
