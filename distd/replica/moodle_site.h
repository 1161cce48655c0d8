// What the center's Moodle needs beyond the database profile (docs/replica.md, "The center's
// Moodle"):
//
//  * settings in its own config.php, so no page needs a write that only HQ may make
//    (`distctl replica moodle-config` prints them, `--check` reads config.php for them);
//  * its caches purged when HQ's replicated settings change. Moodle keeps site settings, roles and
//    plugin settings in its cache store (moodledata/cache) and purges them where the change is
//    made, at HQ; the center never hears of it. Its full purge (purge_caches.php) writes
//    mdl_config, which the center cannot, but the cache-store purge (--muc) writes nothing to the
//    database. distd fingerprints the replicated tables those caches hold (CHECKSUM TABLE) and
//    runs the purge when the fingerprint changes.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "distd/config/config.h"
#include "distd/replica/profile.h"
#include "distd/replica/replica_config.h"
#include "distd/db/sql_connection.h"

namespace distd::replica {

// One $CFG setting the center's config.php must have, and the write it avoids.
struct MoodleSetting {
  std::string name;   // "forcedefaultmymoodle"
  std::string value;  // PHP literal: "1"
  std::string why;    // the Moodle code that would write otherwise
};
const std::vector<MoodleSetting>& center_moodle_settings();

// The lines to paste into config.php, before its require_once of lib/setup.php.
std::string moodle_config_snippet();

// Reads <replica.moodle_dir>/config.php and reports each setting that is missing or different
// (code "moodle-config"). Throws Error{usage} when replica.moodle_dir is not set, Error{not_found}
// when config.php is absent.
std::vector<Finding> check_moodle_config(const ReplicaConfig& rc);

// A fingerprint of the replicated tables whose content Moodle caches (replica.cache_watch_tables,
// prefix added): CHECKSUM TABLE of each, so any row HQ changes changes it.
std::string cache_fingerprint(db::SqlConnection& db, const ReplicaConfig& rc);

struct CachePurge {
  bool changed = false;      // the fingerprint differs from the one at the last purge (or none yet)
  bool purged = false;       // the purge command ran and exited 0
  std::string fingerprint;   // the current fingerprint
  std::vector<std::string> command;
  std::string output;        // what the purge command printed (tail)
};

// Computes the fingerprint; when it changed since the last successful purge (or force), runs
// replica.moodle_purge_command (default: php <moodle_dir>/admin/cli/purge_caches.php --muc) and
// records the fingerprint in <state_dir>/replica/moodle-cache.fingerprint. With dry_run nothing is
// run or recorded. Throws Error{usage} without replica.moodle_dir, Error{database} when the replica
// cannot be read, Error{io} when the purge command fails (the fingerprint stays old, so the next
// call tries again).
CachePurge purge_caches_if_changed(const Config& cfg, const ReplicaConfig& rc, bool force, bool dry_run = false);

// The daemon's watch: every replica.cache_watch_seconds (default 30) until stop, purges when the
// fingerprint changed. Says each purge, and each failure once (until it works again), through say.
// Returns at once when the config has no [replica] moodle_dir or moodle_purge_command.
// Thread-safety: run it on its own thread; say may be called from that thread.
void watch_moodle_caches(const Config& cfg, const std::atomic<bool>& stop,
                         const std::function<void(const std::string&)>& say);

}  // namespace distd::replica
