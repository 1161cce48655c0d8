// `distctl publish-course`: a Moodle course backup (.mbz) into HQ's `courses` channel.
//
// The archive is read member by member (libarchive) and checked whole before anything is
// touched: gzip/zip integrity to the last byte, member types and paths, moodle_backup.xml.
// Then the course's subtree <key>/ in the channel's source tree is brought to the new backup:
// new and changed members are renamed in from a staging area, members the backup no longer
// has are removed, unchanged members are left untouched (same inode, so the publisher's stat
// cache does not hash them again), and course.json is replaced atomically last: it is the
// commit point (docs/formats/course.md). Finally the channel is published (distd/hq/publisher.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "distd/config/config.h"
#include "distd/course/course_record.h"
#include "distd/course/course_settings.h"
#include "distd/hq/publisher.h"

namespace distd::course {

struct CoursePublishOptions {
  std::string channel;  // empty: [hq] courses_channel, default "courses" (CourseSettings)
  bool force = false;   // a new channel version even when nothing changed
  std::function<void(const std::string&)> log;  // one line per notable step
};

struct MemberDelta {
  size_t files = 0;
  uint64_t bytes = 0;
};

struct CoursePublishResult {
  CourseRecord record;
  std::string key;                  // <key>/ in the channel
  bool first = false;               // the course was not in the channel before
  int64_t previous_backup_date = 0;
  MemberDelta added, changed, unchanged, removed;  // file members vs the previous version
  size_t priority_hashes = 0;       // filedir blobs listed for priority (0: no [hq.database])
  uint64_t staged_bytes = 0;        // members written to <state_dir>/course-staging (0 when unchanged)
  std::string priority_note;        // why there is no priority list, when there is none
  hq::PublishResult publish;        // the channel publish that followed
};

// Publishes one course backup. Throws Error{corrupt, unsafe_path, unsupported} for a damaged or
// non-Moodle archive (nothing is changed then), Error{usage} for a bad config, and whatever
// publish_channel() throws.
CoursePublishResult publish_course(const Config& cfg, const std::string& mbz_path, const CoursePublishOptions& opts);

struct MoodleBackupRequest {
  std::string moodle_dir;   // Moodle's dirroot (admin/cli/backup.php lives below it)
  uint64_t course_id = 0;   // --courseid, or
  std::string shortname;    // --courseshortname
};

// Runs `[hq] php` (default "php") DIR/admin/cli/backup.php --courseid=N|--courseshortname=S
// --destination=TMP, then publish_course() on the .mbz it wrote. Its output goes to log.
// Throws Error{not_found} when backup.php is missing, Error{io} when it fails (with its exit
// status and last output lines).
CoursePublishResult publish_course_from_moodle(const Config& cfg, const MoodleBackupRequest& req,
                                               const CoursePublishOptions& opts);

}  // namespace distd::course
