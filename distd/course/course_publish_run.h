// publish_course(), inside: the state one run shares between its steps. Private to distd/course/
// (course_publisher.cpp reads and checks the archive, works out what changed and writes the
// record; course_subtree.cpp brings the course's members/ subtree to the new version). The public
// entry point is publish_course() in course_publisher.h. Not safe for concurrent use: one run, one
// thread (MemberPipe's worker aside), under the course-publish lock.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "distd/course/course_publisher.h"
#include "distd/io/member_pipe.h"
#include "manifest/fs.h"

namespace distd::course::publish_detail {

inline constexpr size_t kChunk = 256 * 1024;

inline bool lstat_file(const std::string& p, struct stat* st) { return ::lstat(p.c_str(), st) == 0; }

// The staging directory of a run: emptied when made (left-overs of an interrupted run) and
// removed when destroyed.
struct Staging {
  std::string dir;
  explicit Staging(std::string d) : dir(std::move(d)) {
    remove_tree(dir);  // left-overs of an interrupted run
    make_dirs(dir, 0750);
  }
  ~Staging() { remove_tree(dir); }
  std::string file(size_t idx) const { return dir + "/m" + std::to_string(idx); }
};

struct CourseRun {
  CourseRun(const Config& c, const ChannelConfig& chan, const std::string& mbz, const CoursePublishOptions& o,
            const Staging& s)
      : cfg(c), ch(chan), mbz_path(mbz), opts(o), staging(s) {}

  const Config& cfg;
  const ChannelConfig& ch;  // the courses channel
  const std::string& mbz_path;
  const CoursePublishOptions& opts;
  const Staging& staging;

  CoursePublishResult res;
  std::vector<std::string> warnings;  // put before the channel publish's own at the end
  std::vector<Member> members;        // the backup's, in archive order
  std::unordered_map<size_t, std::string> staged;  // member index -> staged file
  std::optional<CourseRecord> old;    // the previous version's record, if readable
  std::unordered_map<std::string, const Member*> old_by_path;  // its file members (into old)
  std::string members_root;           // <channel path>/<key>/members, once the key is known
  std::unordered_set<std::string> new_files;  // paths of the backup's file members (step 3 on)

  // course_publisher.cpp

  // Step 1: reads and checks the whole archive rd, staging each file member the tree does not
  // hold yet. Returns the members to read again: they looked unchanged but are not.
  std::vector<size_t> read_archive(MbzReader& rd);
  // Streams file member idx (header h) of rd through pipe: hash only when the tree probably holds
  // it (then noted in hash_only), else into a new staged file. With keep, only into memory there
  // (stage_kept() stages it later).
  void stream_file_member(MbzReader& rd, MemberPipe& pipe, size_t idx, const MemberHeader& h, std::string* keep,
                          std::vector<std::pair<size_t, const Member*>>& hash_only);
  // Stages member idx, held in memory (bytes), unless the tree holds it unchanged.
  // REQUIRES: the pipe finished (its digest is known).
  void stage_kept(size_t idx, const std::string& bytes);
  // moodle_backup.xml was read: fills in the course's info and key, and loads its previous record.
  void adopt_backup_xml(const std::string& xml);
  // Throws Error{corrupt} unless every content-named member holds the content its name says.
  // REQUIRES: pipe finished.
  void check_content_names(const MemberPipe& pipe) const;
  // Step 2: stages the members of second_pass from a second read of the archive. Throws
  // Error{mismatch} when they differ from the first read.
  void reread_members(const std::vector<size_t>& second_pass);
  // Step 3: fills in the record (read by rd) and what changed since the previous version.
  void describe_changes(const MbzReader& rd);
  // Writes <key>/filedir-priority.txt from [hq.database]; a failure is a warning and a note.
  void write_priority_list();
  // Writes <key>/course.json, the commit point; an identical backup keeps its old record.
  void write_record();

  // course_subtree.cpp

  // Step 4: makes members_root hold exactly the backup's file members. Returns how many were
  // renamed in. Crash points: course_before_members, then course_member after each rename.
  size_t update_subtree();
};

}  // namespace distd::course::publish_detail
