// course.json (distd/course/course_record.h parse_record): what a center reads from the courses
// channel and HQ from its own tree. Any input parses or throws distd::Error (never a JSON
// library exception); a parsed record writes out and reads back to the same JSON, and no member
// path can leave the course directory.
#include "distd/course/course_record.h"
#include "manifest/error.h"
#include "manifest/path.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  distd::course::CourseRecord r;
  try {
    r = distd::course::parse_record(distd::fuzz::as_text(data, size), "fuzz");
  } catch (const distd::Error&) {
    return 0;
  }
  for (const auto& m : r.members) FUZZ_CHECK(distd::unsafe_path_reason(m.h.path).empty());
  std::string json = distd::course::record_to_json(r);
  distd::course::CourseRecord again = distd::course::parse_record(json, "fuzz re-read");
  FUZZ_CHECK(distd::course::record_to_json(again) == json);
  return 0;
}
