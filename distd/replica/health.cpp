#include "distd/replica/health.h"

#include <sstream>

#include "manifest/error.h"

namespace distd::replica {

std::optional<db::Row> read_replication_status(db::SqlConnection& db) {
  std::vector<db::Row> rows;
  if (db.is_mariadb()) {
    rows = db.query("SHOW SLAVE STATUS");
  } else {
    try {
      rows = db.query("SHOW REPLICA STATUS");  // MySQL 8.0.22+
    } catch (const Error&) {
      rows = db.query("SHOW SLAVE STATUS");
    }
  }
  if (rows.empty()) return std::nullopt;
  // An empty host means CHANGE MASTER was run without a source: not a replica.
  if (rows[0].str({"Master_Host", "Source_Host"}).empty()) return std::nullopt;
  return rows[0];
}

static int to_int(const std::string& s) { return s.empty() ? 0 : std::atoi(s.c_str()); }

ReplicaHealth replica_health(db::SqlConnection& db, const ReplicaConfig& rc, bool check) {
  ReplicaHealth h;
  h.configured = true;
  h.lag_warn_seconds = rc.lag_warn_seconds;
  try {
    h.server_version = db.server_version();
    Flavor flavor = detect_flavor(db);
    h.flavor = flavor_name(flavor);
    h.reachable = true;
    if (auto st = read_replication_status(db)) {
      h.replication_configured = true;
      h.source = st->str({"Master_Host", "Source_Host"}) + ":" + st->str({"Master_Port", "Source_Port"});
      h.io_state = st->str({"Slave_IO_Running", "Replica_IO_Running"});
      h.io_running = h.io_state == "Yes";
      h.sql_running = st->str({"Slave_SQL_Running", "Replica_SQL_Running"}) == "Yes";
      if (auto sb = st->get({"Seconds_Behind_Master", "Seconds_Behind_Source"}); sb && !sb->empty())
        h.seconds_behind = std::atoll(sb->c_str());
      h.last_io_errno = to_int(st->str({"Last_IO_Errno"}));
      h.last_io_error = st->str({"Last_IO_Error"});
      h.last_sql_errno = to_int(st->str({"Last_SQL_Errno"}));
      h.last_sql_error = st->str({"Last_SQL_Error"});
      if (flavor == Flavor::mariadb) {
        h.gtid_position = db.scalar("SELECT @@GLOBAL.gtid_slave_pos").value_or("");
        h.gtid_received = st->str({"Gtid_IO_Pos"});
      } else {
        h.gtid_position = st->str({"Executed_Gtid_Set"});
        h.gtid_received = st->str({"Retrieved_Gtid_Set"});
      }
    }
    if (check) h.findings = check_profile(db, make_profile_spec(rc, flavor));
  } catch (const Error& e) {
    h.error = e.what();
  }

  auto& w = h.warnings;
  if (!h.reachable) {
    w.push_back("replica database unreachable: " + h.error);
    return h;
  }
  if (!h.error.empty()) w.push_back("replica query failed: " + h.error);
  if (!h.replication_configured) {
    w.push_back("the local database is not replicating from HQ (no replication configured)");
  } else {
    if (!h.io_running)
      w.push_back("replication IO thread is " + (h.io_state.empty() ? std::string("not running") : h.io_state) +
                  (h.last_io_error.empty() ? std::string(" (link to HQ down or stopped)")
                                           : ": " + std::to_string(h.last_io_errno) + " " + h.last_io_error));
    if (!h.sql_running)
      w.push_back("replication SQL thread is stopped" +
                  (h.last_sql_error.empty() ? std::string(" (START SLAVE to resume)")
                                            : ": " + std::to_string(h.last_sql_errno) + " " + h.last_sql_error));
    if (h.seconds_behind && *h.seconds_behind > h.lag_warn_seconds)
      w.push_back("replica lags " + std::to_string(*h.seconds_behind) + " s behind HQ (warning above " +
                  std::to_string(h.lag_warn_seconds) + " s)");
  }
  size_t errors = 0;
  for (auto& f : h.findings)
    if (f.severity == "error") ++errors;
  if (errors)
    w.push_back("replica profile: " + std::to_string(errors) + " finding(s) break read-only or replication, e.g. " +
                h.findings[0].message + " (run 'distctl replica profile --check')");
  return h;
}

ReplicaHealth replica_health(const Config& cfg, bool check) {
  ReplicaConfig rc = load_replica_config(cfg, false);
  if (!rc.present) {
    ReplicaHealth h;
    h.error = "no [replica] section in " + cfg.file;
    return h;
  }
  try {
    db::ConnectParams p = rc.conn;
    p.connect_timeout_s = 5;
    db::SqlConnection db(p);
    return replica_health(db, rc, check);
  } catch (const Error& e) {
    ReplicaHealth h;
    h.configured = true;
    h.lag_warn_seconds = rc.lag_warn_seconds;
    h.error = e.what();
    h.warnings.push_back("replica database unreachable: " + h.error);
    return h;
  }
}

nlohmann::json to_json(const ReplicaHealth& h) {
  nlohmann::json j;
  j["configured"] = h.configured;
  j["reachable"] = h.reachable;
  j["ok"] = h.ok();
  if (!h.error.empty()) j["error"] = h.error;
  j["server_version"] = h.server_version;
  j["flavor"] = h.flavor;
  j["replication_configured"] = h.replication_configured;
  j["source"] = h.source;
  j["io_state"] = h.io_state;
  j["io_running"] = h.io_running;
  j["sql_running"] = h.sql_running;
  j["seconds_behind"] = h.seconds_behind ? nlohmann::json(*h.seconds_behind) : nlohmann::json(nullptr);
  j["lag_warn_seconds"] = h.lag_warn_seconds;
  j["last_io_errno"] = h.last_io_errno;
  j["last_io_error"] = h.last_io_error;
  j["last_sql_errno"] = h.last_sql_errno;
  j["last_sql_error"] = h.last_sql_error;
  j["gtid_position"] = h.gtid_position;
  j["gtid_received"] = h.gtid_received;
  j["findings"] = nlohmann::json::array();
  for (auto& f : h.findings)
    j["findings"].push_back({{"code", f.code}, {"severity", f.severity}, {"message", f.message}, {"fix", f.fix}});
  j["warnings"] = h.warnings;
  return j;
}

std::string format_health(const ReplicaHealth& h) {
  std::ostringstream o;
  if (!h.configured) {
    o << "replica: not configured (" << h.error << ")\n";
    return o.str();
  }
  if (h.reachable) {
    o << "server:          " << h.server_version << " (" << h.flavor << ")\n";
    if (h.replication_configured) {
      o << "source (HQ):     " << h.source << "\n";
      o << "IO thread:       " << (h.io_state.empty() ? "-" : h.io_state) << "\n";
      o << "SQL thread:      " << (h.sql_running ? "Yes" : "No") << "\n";
      o << "seconds behind:  " << (h.seconds_behind ? std::to_string(*h.seconds_behind) : std::string("unknown")) << "\n";
      if (!h.last_io_error.empty()) o << "last IO error:   " << h.last_io_errno << " " << h.last_io_error << "\n";
      if (!h.last_sql_error.empty()) o << "last SQL error:  " << h.last_sql_errno << " " << h.last_sql_error << "\n";
      o << "GTID applied:    " << (h.gtid_position.empty() ? "-" : h.gtid_position) << "\n";
      o << "GTID received:   " << (h.gtid_received.empty() ? "-" : h.gtid_received) << "\n";
    }
    o << "profile:         " << (h.findings.empty() ? std::string("read-only where it matters")
                                                      : std::to_string(h.findings.size()) + " finding(s)")
      << "\n";
    for (auto& f : h.findings) o << "  [" << f.severity << "] " << f.message << "\n      fix: " << f.fix << "\n";
  }
  if (h.warnings.empty()) {
    o << "status:          ok\n";
  } else {
    for (auto& w : h.warnings) o << "WARNING: " << w << "\n";
  }
  return o.str();
}

std::string health_summary(const ReplicaHealth& h) {
  if (!h.configured) return "replica: not configured";
  if (h.ok())
    return "replica: ok, " + (h.seconds_behind ? std::to_string(*h.seconds_behind) + " s behind" : std::string("lag unknown")) +
           ", GTID " + (h.gtid_position.empty() ? "-" : h.gtid_position);
  return "replica: WARNING " + h.warnings.front() +
         (h.warnings.size() > 1 ? " (+" + std::to_string(h.warnings.size() - 1) + " more)" : "");
}

}  // namespace distd::replica
