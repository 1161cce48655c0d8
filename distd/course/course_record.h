// The course representation in the `courses` channel (docs/formats/course.md):
//
//   <key>/course.json               what the backup was and how to rebuild it (this file)
//   <key>/members/<member path>     every file member of the .mbz, byte for byte
//   <key>/filedir-priority.txt      optional: SHA-1 content hashes of the course's moodledata
//                                   files (HQ's mdl_files), fetched first by moodledata syncs
//
// key is the course's shortname made file-name safe (course_key()), so a course keeps its place
// in the tree from version to version and its unchanged members keep their paths.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "distd/course/mbz_archive.h"

namespace distd::course {

// moodle_backup.xml -> moodle_backup/information (Moodle's backup_xml_transformer writes it).
struct BackupInfo {
  std::string name;              // the backup's file name as Moodle named it
  std::string moodle_version, moodle_release, backup_version, backup_release;
  int64_t backup_date = 0;
  bool include_files = true;
  std::string original_wwwroot;
  uint64_t course_id = 0;        // original_course_id
  std::string shortname, fullname, course_format;
  uint64_t course_contextid = 0;  // original_course_contextid (0 when absent)
  std::string type;               // details/detail/type: "course", "section", "activity"
};

// Parses moodle_backup.xml with pugixml. Throws Error{corrupt} naming the archive and what is
// missing or malformed (with the parser's offset for malformed XML).
BackupInfo parse_backup_info(std::string_view xml, const std::string& archive_for_errors);

struct Member {
  MemberHeader h;
  std::string digest;  // hex BLAKE2b-256 of a file member's bytes (empty for directories)
};

struct CourseRecord {
  BackupInfo info;
  ArchiveFormat format = ArchiveFormat::tgz;
  uint64_t archive_size = 0;       // size of the .mbz as published
  std::string archive_name;        // its file name at HQ
  int64_t published = 0;           // when publish-course wrote this record
  std::vector<Member> members;     // archive order (.ARCHIVE_INDEX first in a Moodle tar.gz)

  uint64_t content_bytes() const;  // sum of file member sizes
  size_t file_count() const;
  const Member* find(const std::string& path) const;  // linear; for small lookups
};

constexpr const char* kRecordName = "course.json";
constexpr const char* kMembersDir = "members";
constexpr const char* kPriorityName = "filedir-priority.txt";
constexpr uint64_t kMaxRecordBytes = 256ull << 20;

// The course's directory name: bytes [A-Za-z0-9._-] kept, every other byte as %XX, a leading
// '.' as %2E. Throws Error{usage} for an empty shortname or a key over 255 bytes.
std::string course_key(const std::string& shortname);

std::string record_to_json(const CourseRecord& r);
// Strict: throws Error{corrupt} naming name_for_errors on any missing or ill-typed field, or an
// unsafe member path.
CourseRecord parse_record(std::string_view json, const std::string& name_for_errors);

}  // namespace distd::course
