// The [replica] section of a regional site's config: how distd reaches the local MariaDB/MySQL
// replica of HQ's Moodle database, and what the Moodle side looks like.
//
//   [replica]
//   host = "localhost"          # or 127.0.0.1; ignored when socket is set
//   port = 3306
//   socket = "/run/mysqld/mysqld.sock"
//   user = "distd"              # distd's own database account (see docs/replica.md)
//   password_file = "/etc/distd/replica.password"   # mode 0600/0400, owned by distd's user
//   database = "moodle"         # Moodle's schema ($CFG->dbname)
//   prefix = "mdl_"             # $CFG->prefix
//   moodle_user = "moodle"      # Moodle's database account ($CFG->dbuser) the profile constrains
//   moodle_host = "localhost"   # the host part of that account
//   filedir = "/var/moodledata/filedir"   # the local content store to cross-check
//   extra_local_tables = []     # more local-only tables, without prefix (docs/replica.md)
//   lag_warn_seconds = 600      # replication lag above this is a warning
//   gtid_domain_id = 100        # MariaDB: GTID domain for the replica's own (local) writes
//   moodle_dir = "/var/www/moodle"   # the center's Moodle code (config.php checks, cache purge)
//   php = "php"                 # PHP CLI for the cache purge
//   cache_watch_seconds = 30    # how often distd looks for HQ's setting changes
//   moodle_purge_command = []   # instead of: php <moodle_dir>/admin/cli/purge_caches.php --muc
//   cache_watch_tables = ["config", "config_plugins", "role", "role_capabilities", "capabilities"]
#pragma once

#include <string>
#include <vector>

#include "distd/config/config.h"
#include "distd/db/sql_connection.h"

namespace distd::replica {

struct ReplicaConfig {
  bool present = false;  // the config file has a [replica] section
  db::ConnectParams conn;    // password already read from password_file
  std::string password_file;
  std::string database = "moodle";
  std::string prefix = "mdl_";
  std::string moodle_user = "moodle";
  std::string moodle_host = "localhost";
  std::string filedir;
  std::vector<std::string> extra_local_tables;
  int64_t lag_warn_seconds = 600;
  int64_t gtid_domain_id = 100;
  std::string moodle_dir;                         // empty: not configured
  std::string php = "php";
  int64_t cache_watch_seconds = 30;               // how often the daemon compares the fingerprint
  std::vector<std::string> moodle_purge_command;  // empty: php <moodle_dir>/admin/cli/purge_caches.php --muc
  // Replicated tables whose rows Moodle keeps in its cache store (without prefix): site and
  // plugin settings (core/config), role definitions (core/roledefs), capabilities.
  std::vector<std::string> cache_watch_tables = {"config", "config_plugins", "role", "role_capabilities",
                                                 "capabilities"};
};

// Parses [replica] from the config and reads the password file.
// Throws Error{usage} for a missing section (when required) or bad values, and Error{usage} when
// the password file is readable by group or others (with the chmod to run).
ReplicaConfig load_replica_config(const Config& cfg, bool required = true);

}  // namespace distd::replica
