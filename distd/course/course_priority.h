// Course files first: the moodledata blobs of a published course go ahead of everything else in
// the next sync and bundle of a center that runs on a database replica (such a center cannot
// restore the .mbz; it gets the course through replication plus its filedir content).
//
// HQ: with [hq.database] configured, publish-course asks HQ's primary Moodle database for the
// SHA-1 content hashes of every file in the course's contexts (the course context, level 50,
// and every context below it: modules 70, blocks 80, ...) and writes them, sorted, one per line,
// to <key>/filedir-priority.txt in the courses channel, where the signed manifest covers them.
// Regional: course_priority_hashes() collects those lists from the installed courses channel;
// the sync engine asks it when it plans the moodledata channel (base names = SHA-1 hashes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "distd/config/config.h"

namespace distd::course {

// [hq.database]: host, port, socket, user, password, database ("moodle"), prefix ("mdl_").
// nullopt when the section is absent.
struct MoodleDbSettings {
  std::string host = "localhost";
  int port = 3306;
  std::string socket, user, password, database = "moodle", prefix = "mdl_";
};
std::optional<MoodleDbSettings> moodle_db_settings(const Config& cfg);

// The distinct contenthashes of the course's files (directories '.' and empty files excluded),
// sorted. Throws Error{database} naming the server; Error{not_found} when the course has no
// context in that database.
std::vector<std::string> course_filedir_hashes(const MoodleDbSettings& db, uint64_t course_id);

// Regional: the union of every installed course's priority list (empty when the center has no
// courses channel). Never throws: a damaged list is skipped.
std::vector<std::string> course_priority_hashes(const Config& cfg);

}  // namespace distd::course
