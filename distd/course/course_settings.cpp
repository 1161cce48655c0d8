#include "distd/course/course_settings.h"

namespace distd::course {

CourseSettings CourseSettings::from(const Config& cfg) {
  CourseSettings s;
  const std::string section = cfg.role == "regional" ? "regional" : "hq";
  s.channel = cfg.get_string(section + ".courses_channel", s.channel);
  s.courses_dir = cfg.resolve(cfg.get_string("regional.courses_dir", cfg.state_dir + "/courses"));
  s.hook = cfg.get_string("regional.course_hook", s.hook);
  return s;
}

std::string courses_channel_name(const Config& cfg) { return CourseSettings::from(cfg).channel; }

}  // namespace distd::course
