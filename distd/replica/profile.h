// The replica profile: "read-only where it matters" for a Moodle running on a one-way replica.
//
// Moodle's database account may read everything, may write only the local-only tables (sessions,
// access times, the log, preferences and the others in core_local_tables(), and configured extras) and the access-time and
// password columns of the user table, and nothing else. The local-only tables are excluded from
// replication so HQ's rows never collide with the center's own. The replica uses GTID and
// reconnect settings for a link that drops for days. See docs/replica.md for every grant's source.
#pragma once

#include <string>
#include <vector>

#include "distd/replica/replica_config.h"
#include "distd/db/sql_connection.h"

namespace distd::replica {

enum class Flavor { mariadb, mysql };
const char* flavor_name(Flavor f);

// A table Moodle writes on an ordinary page view (name without prefix) and why.
struct LocalTable {
  std::string name;
  std::string why;
};
// The built-in local-only tables: what a real Moodle 4.5 writes while people use the center
// (sessions, access times, the log, preferences, cache flags, adhoc tasks, recent items, read
// tracking, chat presence), each with the Moodle code that writes it.
const std::vector<LocalTable>& core_local_tables();
// Columns of the user table Moodle updates on login and page views: firstaccess, lastaccess,
// lastlogin, currentlogin, lastip, password (rehash at login).
const std::vector<std::string>& user_writable_columns();

struct ProfileSpec {
  Flavor flavor = Flavor::mariadb;
  std::string database = "moodle";
  std::string prefix = "mdl_";
  std::string moodle_user = "moodle";
  std::string moodle_host = "localhost";
  std::vector<std::string> local_tables;  // full names, with prefix
  int64_t gtid_domain_id = 100;           // MariaDB: domain for the replica's own writes

  std::string grantee() const;          // 'moodle'@'localhost'
  std::string user_table() const;       // mdl_user
  std::string ignore_list() const;      // moodle.mdl_sessions,moodle.mdl_...
};

ProfileSpec make_profile_spec(const ReplicaConfig& rc, Flavor flavor);

// One deviation from the profile, with the statement or setting that fixes it.
struct Finding {
  std::string code;      // stable id, e.g. "table-write", "ignore-table-missing"
  std::string severity;  // "error" (breaks read-only or replication) or "warning" (tuning)
  std::string message;   // e.g. "Moodle's account 'moodle'@'localhost' can INSERT into mdl_forum_posts"
  std::string fix;       // e.g. "REVOKE INSERT ON `moodle`.`mdl_forum_posts` FROM 'moodle'@'localhost';"
};

// SQL for the account (same on MariaDB and MySQL 8).
std::string profile_grants_sql(const ProfileSpec& spec);
// SQL for the replication settings of the flavor.
std::string profile_replication_sql(const ProfileSpec& spec);
// Server config snippet (my.cnf) that makes the settings survive a restart.
std::string profile_mycnf(const ProfileSpec& spec);
// Everything --print shows: commented SQL and the my.cnf snippet.
std::string profile_text(const ProfileSpec& spec);

// Compares the live server with the profile. Throws Error{database} only when the server cannot
// be queried at all; everything else is a finding.
std::vector<Finding> check_profile(db::SqlConnection& db, const ProfileSpec& spec);

struct ApplyReport {
  std::vector<std::string> executed;  // statements run, in order
  std::vector<std::string> notes;     // what was skipped and why
};
// Runs the profile's SQL. Throws Error{not_found} when Moodle's account does not exist (it must be
// created with its password first) and Error{database} when a statement fails.
ApplyReport apply_profile(db::SqlConnection& db, const ProfileSpec& spec);

// Detects the flavor of a connected server.
Flavor detect_flavor(db::SqlConnection& db);

}  // namespace distd::replica
