// moodle_backup.xml from an uploaded .mbz (distd/course/course_record.h parse_backup_info, used by
// publish-course and distd/course/moodle_backup.cpp). Any input parses or throws distd::Error.
#include "distd/course/course_record.h"
#include "manifest/error.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    distd::course::BackupInfo b = distd::course::parse_backup_info(distd::fuzz::as_text(data, size), "fuzz.mbz");
    FUZZ_CHECK(!b.shortname.empty());
    FUZZ_CHECK(b.type.empty() || b.type == "course");
    (void)distd::course::course_key(b.shortname);
  } catch (const distd::Error&) {
  }
  return 0;
}
