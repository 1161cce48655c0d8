// Replica health: is the local replica of HQ's Moodle database replicating, how far behind, and is
// it still "read-only where it matters" (the profile's findings)?
//
// replica_health() never throws for database trouble: an unreachable server is a health state
// with a warning, so `distctl status` and the daemon can always include it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "distd/config/config.h"
#include "distd/replica/profile.h"
#include "distd/db/sql_connection.h"

namespace distd::replica {

struct ReplicaHealth {
  bool configured = false;              // the config has a [replica] section
  bool reachable = false;               // distd could connect and query
  std::string error;                    // why not reachable (or why a query failed)
  std::string server_version;           // SELECT VERSION()
  std::string flavor;                   // "mariadb" or "mysql"
  bool replication_configured = false;  // SHOW SLAVE STATUS returned a row
  std::string source;                   // HQ's host:port as the replica knows it
  std::string io_state;                 // Slave_IO_Running: "Yes", "No", "Connecting"
  bool io_running = false;              // io_state == "Yes"
  bool sql_running = false;             // Slave_SQL_Running == "Yes"
  std::optional<int64_t> seconds_behind;  // NULL while a thread is stopped or the link is down
  int last_io_errno = 0;
  std::string last_io_error;
  int last_sql_errno = 0;
  std::string last_sql_error;
  std::string gtid_position;            // applied: gtid_slave_pos (MariaDB) / Executed_Gtid_Set (MySQL)
  std::string gtid_received;            // received: Gtid_IO_Pos / Retrieved_Gtid_Set
  int64_t lag_warn_seconds = 600;
  std::vector<Finding> findings;        // the profile check (read-only where it matters)
  std::vector<std::string> warnings;    // one line each: what is wrong, for the journal

  bool ok() const { return configured && warnings.empty(); }
};

// Connects with the [replica] settings and collects everything above. With check_profile, also
// runs the profile check (needs SELECT on mysql.* for distd's account).
// Throws only Error{usage} for a broken [replica] section (e.g. a group-readable password file).
ReplicaHealth replica_health(const Config& cfg, bool check_profile = true);

// The same on an open connection (used by tests and the daemon).
ReplicaHealth replica_health(db::SqlConnection& db, const ReplicaConfig& rc, bool check_profile = true);

// SHOW SLAVE STATUS (or SHOW REPLICA STATUS on MySQL 8): the row, or nullopt when the server is
// not a replica.
std::optional<db::Row> read_replication_status(db::SqlConnection& db);

nlohmann::json to_json(const ReplicaHealth& h);
// A human report, several lines, ending with the warnings.
std::string format_health(const ReplicaHealth& h);
// One line for `distctl status`: "replica: ok, 0 s behind, GTID 0-1-42" or "replica: WARNING ...".
std::string health_summary(const ReplicaHealth& h);

}  // namespace distd::replica
