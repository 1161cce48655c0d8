// check_profile(): how far a live replica is from the profile (profile.h), one finding per gap,
// each with the statement that closes it. Read-only: it runs SELECTs and SHOW statements only.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

#include "distd/replica/health.h"
#include "distd/replica/profile.h"
#include "distd/replica/profile_sql.h"
#include "manifest/error.h"

namespace distd::replica {

using namespace profile_sql;

namespace {

// The findings of one check, and what every part of it needs to know.
struct Check {
  db::SqlConnection& db;
  const ProfileSpec& s;
  const std::string g;                // Moodle's account, 'user'@'host'
  std::set<std::string> tables;       // Moodle's tables on the replica (empty: none visible)
  std::set<std::string> local;        // the profile's local-only tables
  std::set<std::string> schema_privs; // Moodle's account's privileges on the whole schema
  std::map<std::string, std::set<std::string>> table_privs;
  std::vector<Finding> f;

  void add(std::string code, std::string sev, std::string msg, std::string fix) {
    f.push_back({std::move(code), std::move(sev), std::move(msg), std::move(fix)});
  }
  // A global variable of the server, or nullopt when it has none by that name.
  std::optional<std::string> var(const std::string& name) {
    try {
      return db.scalar("SELECT @@GLOBAL." + name);
    } catch (const Error&) {
      return std::nullopt;
    }
  }
};

// The schema exists, and every configured extra local-only table is in it.
void check_tables(Check& c) {
  const ProfileSpec& s = c.s;
  c.tables = existing_tables(c.db, s);
  if (c.tables.empty()) {
    c.add("database-missing", "error", "database `" + s.database + "` has no tables on the replica (or distd's account cannot see them)",
          "check replica.database in the config and that replication has created the schema");
  }
  c.local = std::set<std::string>(s.local_tables.begin(), s.local_tables.end());
  // A built-in local-only table this Moodle does not have (mod_chat removed, say) is simply not
  // written; a configured extra that does not exist is a typo worth a warning.
  std::set<std::string> builtin;
  for (auto& t : core_local_tables()) builtin.insert(s.prefix + t.name);
  for (auto& t : s.local_tables)
    if (!c.tables.empty() && !c.tables.count(t) && !builtin.count(t))
      c.add("local-table-missing", "warning", "local-only table " + t + " does not exist in `" + s.database + "`",
            "remove it from replica.extra_local_tables, or check replica.prefix");
}

// Schema level: reading and temporary tables, nothing that writes every table (one finding per
// grant pattern, listing every write privilege it gives).
void check_schema_privileges(Check& c) {
  const ProfileSpec& s = c.s;
  bool can_read = false, can_temp = false;
  std::map<std::string, std::vector<std::string>> bad_by_pattern;
  for (auto& r : c.db.query_bound("SELECT TABLE_SCHEMA, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ?",
                                  {c.g})) {
    std::string pat = r.str({"TABLE_SCHEMA"});
    if (!like_match(pat, 0, s.database, 0)) continue;
    std::string p = r.str({"PRIVILEGE_TYPE"});
    c.schema_privs.insert(p);
    if (p == "SELECT") {
      can_read = true;
    } else if (p == "CREATE TEMPORARY TABLES") {
      can_temp = true;
    } else if (p == "SHOW VIEW" || p == "LOCK TABLES") {
      // harmless
    } else {
      bad_by_pattern[pat].push_back(p);
    }
  }
  for (auto& [pat, privs] : bad_by_pattern)
    c.add("schema-privilege", "error",
          "Moodle's account " + c.g + " has " + join(privs, ", ") + " on every table of `" + s.database + "`" +
              (pat != s.database ? " (via grant on `" + pat + "`.*)" : ""),
          "REVOKE " + join(privs, ", ") + " ON " + db::quote_ident(pat) + ".* FROM " + c.g + ";");
  if (!can_read)
    c.add("read-missing", "error", "Moodle's account " + c.g + " cannot SELECT from `" + s.database + "`", grant_read(s));
  if (!can_temp)
    c.add("temp-missing", "warning", "Moodle's account " + c.g + " cannot create temporary tables in `" + s.database + "`",
          grant_read(s));
}

// Table level: writes only to local-only tables, and every write those need.
void check_table_privileges(Check& c) {
  const ProfileSpec& s = c.s;
  for (auto& r : c.db.query_bound("SELECT TABLE_NAME, PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES "
                                  "WHERE GRANTEE = ? AND TABLE_SCHEMA = ?", {c.g, s.database}))
    c.table_privs[r.str({"TABLE_NAME"})].insert(r.str({"PRIVILEGE_TYPE"}));
  for (auto& [t, privs] : c.table_privs) {
    bool is_local = c.local.count(t) > 0;
    std::vector<std::string> bad;
    for (auto& p : privs)
      if (!(p == "SELECT" || (is_local && (p == "INSERT" || p == "UPDATE" || p == "DELETE")))) bad.push_back(p);
    if (bad.empty()) continue;
    std::string what;
    if (bad.size() == 1) {
      const std::string& p = bad[0];
      what = p == "INSERT" ? "can INSERT into " : p == "UPDATE" ? "can UPDATE " : p == "DELETE" ? "can DELETE from " : "has " + p + " on ";
    } else {
      what = "has " + join(bad, ", ") + " on ";
    }
    c.add("table-write", "error", "Moodle's account " + c.g + " " + what + t,
          "REVOKE " + join(bad, ", ") + " ON " + tbl_q(s, t) + " FROM " + c.g + ";");
  }
  for (auto& t : s.local_tables) {
    if (!c.tables.empty() && !c.tables.count(t)) continue;
    for (const char* p : {"INSERT", "UPDATE", "DELETE"}) {
      if (c.schema_privs.count(p) || c.table_privs[t].count(p)) continue;
      c.add("local-write-missing", "error",
            "Moodle's account " + c.g + " cannot " + p + " " + t + ": Moodle's page views will fail", grant_local(s, t));
    }
  }
}

// Column level: only the user columns a login updates, and all of them.
void check_column_privileges(Check& c) {
  const ProfileSpec& s = c.s;
  std::set<std::string> allowed_cols(user_writable_columns().begin(), user_writable_columns().end());
  std::set<std::string> user_update_cols;
  for (auto& r : c.db.query_bound("SELECT TABLE_NAME, COLUMN_NAME, PRIVILEGE_TYPE FROM information_schema.COLUMN_PRIVILEGES "
                                  "WHERE GRANTEE = ? AND TABLE_SCHEMA = ?", {c.g, s.database})) {
    std::string t = r.str({"TABLE_NAME"}), col = r.str({"COLUMN_NAME"}), p = r.str({"PRIVILEGE_TYPE"});
    if (p == "SELECT") continue;
    if (t == s.user_table() && p == "UPDATE" && allowed_cols.count(col)) {
      user_update_cols.insert(col);
      continue;
    }
    if (c.local.count(t)) continue;
    c.add("column-write", "error", "Moodle's account " + c.g + " can " + p + " column " + t + "." + col,
          "REVOKE " + p + " (" + db::quote_ident(col) + ") ON " + tbl_q(s, t) + " FROM " + c.g + ";");
  }
  if (c.tables.empty() || c.tables.count(s.user_table())) {
    bool table_update = c.schema_privs.count("UPDATE") || c.table_privs[s.user_table()].count("UPDATE");
    std::vector<std::string> missing;
    for (auto& col : user_writable_columns())
      if (!user_update_cols.count(col)) missing.push_back(col);
    if (!table_update && !missing.empty())
      c.add("user-columns-missing", "error",
            "Moodle's account " + c.g + " cannot UPDATE " + s.user_table() + "(" + join(missing, ", ") +
                "): logins and page views will fail",
            grant_columns(s));
  }
}

// Moodle's account: no global privilege, then the schema, table and column privileges.
void check_account(Check& c) {
  auto global = c.db.query_bound("SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ?", {c.g});
  if (global.empty()) {
    c.add("account-missing", "error",
          "Moodle's account " + c.g + " does not exist on the replica, or distd's account cannot see its grants",
          "create it (CREATE USER " + c.g + " IDENTIFIED BY '...';) or give distd's account SELECT ON mysql.*");
    return;  // without the account nothing else about it can be checked
  }
  for (auto& r : global) {
    std::string p = r.str({"PRIVILEGE_TYPE"});
    if (p == "USAGE") continue;
    c.add("global-privilege", "error", "Moodle's account " + c.g + " has the global privilege " + p + " (on *.*)",
          "REVOKE " + p + " ON *.* FROM " + c.g + ";");
  }
  check_schema_privileges(c);
  check_table_privileges(c);
  check_column_privileges(c);
}

// The replication ignore list: every local-only table in it, nothing stale.
void check_ignore_list(Check& c, const std::optional<db::Row>& st) {
  const ProfileSpec& s = c.s;
  std::string live_ignore = st ? st->str({"Replicate_Ignore_Table"}) : c.var("replicate_ignore_table").value_or("");
  auto live = split_csv(live_ignore);
  std::vector<std::string> missing_ignore;
  for (auto& t : s.local_tables) {
    std::string full = s.database + "." + t;
    if (std::find(live.begin(), live.end(), full) == live.end()) missing_ignore.push_back(full);
  }
  if (!missing_ignore.empty()) {
    auto merged = merged_ignore(live_ignore, s);
    c.add("ignore-table-missing", "error",
          "replication does not ignore " + join(missing_ignore, ", ") +
              ": HQ's rows would collide with the center's own and stop the SQL thread",
          s.flavor == Flavor::mariadb ? mariadb_ignore_fix(s, join(merged, ",")) : mysql_ignore_fix(merged));
  }
  auto stale = stale_ignore(live_ignore, s);
  if (!stale.empty())
    c.add("ignore-table-stale", "warning",
          "replication ignores " + join(stale, ", ") +
              ", which the profile does not make local: HQ's changes to it never reach the center",
          "distctl replica profile --apply (drops the entry), then reload the table from HQ: mariadb-dump "
          "--single-transaction " + s.database + " <table> at HQ, loaded at the center");
}

// The replication source: configured, by GTID, and retrying a lost link often and for long.
void check_source(Check& c, const std::optional<db::Row>& st) {
  const ProfileSpec& s = c.s;
  const bool maria = s.flavor == Flavor::mariadb;
  if (!st) {
    c.add("replication-not-configured", "error", "this server is not a replica (SHOW SLAVE STATUS is empty)",
          maria ? "CHANGE MASTER TO MASTER_HOST='hq', MASTER_USER='repl', MASTER_PASSWORD='...', MASTER_USE_GTID=slave_pos; "
                  "START SLAVE;  -- see docs/replica.md"
                : "CHANGE REPLICATION SOURCE TO SOURCE_HOST='hq', SOURCE_USER='repl', SOURCE_PASSWORD='...', "
                  "SOURCE_AUTO_POSITION=1; START REPLICA;  -- see docs/replica.md");
    return;
  }
  if (maria) {
    std::string using_gtid = st->str({"Using_Gtid"});
    if (using_gtid != "Slave_Pos")
      c.add("gtid-off", "error",
            "replication uses " + (using_gtid.empty() ? std::string("no GTID") : "GTID mode " + using_gtid) +
                ": it must resume from its own applied position (slave_pos) after a cut",
            "STOP SLAVE; CHANGE MASTER TO MASTER_USE_GTID = slave_pos; START SLAVE;");
  } else if (st->str({"Auto_Position"}) != "1") {
    c.add("gtid-off", "error", "replication does not use GTID auto-positioning",
          "STOP REPLICA; CHANGE REPLICATION SOURCE TO SOURCE_AUTO_POSITION = 1; START REPLICA;");
  }
  long retry = std::atol(st->str({"Connect_Retry"}, "60").c_str());
  if (retry > 120)
    c.add("connect-retry", "warning",
          "the replica retries a lost connection only every " + std::to_string(retry) + " s",
          maria ? "STOP SLAVE; CHANGE MASTER TO MASTER_CONNECT_RETRY = 60; START SLAVE;"
                : "STOP REPLICA; CHANGE REPLICATION SOURCE TO SOURCE_CONNECT_RETRY = 60; START REPLICA;");
  auto retry_count = st->get({"Source_Retry_Count", "Master_Retry_Count"});
  if (retry_count && *retry_count != "0" && std::atoll(retry_count->c_str()) * std::max(retry, 1L) < 30L * 86400)
    c.add("retry-count", "warning",
          "the replica gives up reconnecting after " + *retry_count + " attempts (" +
              std::to_string(std::atoll(retry_count->c_str()) * std::max(retry, 1L) / 3600) +
              " h): a link down for longer needs a manual START",
          maria ? "master_retry_count = 1000000 in my.cnf (restart)"
                : "STOP REPLICA; CHANGE REPLICATION SOURCE TO SOURCE_RETRY_COUNT = 1000000; START REPLICA;");
}

// The stream: a dead link noticed soon, compressed, and (MariaDB) local writes binlogged outside
// HQ's GTID domain.
void check_stream(Check& c) {
  const ProfileSpec& s = c.s;
  long net_timeout = std::atol(c.var("slave_net_timeout").value_or("60").c_str());
  if (net_timeout > 120)
    c.add("net-timeout", "warning",
          "slave_net_timeout is " + std::to_string(net_timeout) + " s: a dead link is noticed only that late",
          "SET GLOBAL slave_net_timeout = 60;  -- and in my.cnf");
  if (s.flavor != Flavor::mariadb) {
    try {
      auto alg = c.db.scalar("SELECT COMPRESSION_ALGORITHM FROM performance_schema.replication_connection_configuration LIMIT 1");
      if (alg && alg->find("zstd") == std::string::npos && alg->find("zlib") == std::string::npos)
        c.add("compression-off", "warning", "the replication stream is not compressed (slow link)",
              "STOP REPLICA; CHANGE REPLICATION SOURCE TO SOURCE_COMPRESSION_ALGORITHMS = 'zstd,zlib'; START REPLICA;");
    } catch (const Error&) {
    }
    return;
  }
  if (c.var("slave_compressed_protocol").value_or("0") != "1")
    c.add("compression-off", "warning", "the replication stream is not compressed (slow link)",
          "SET GLOBAL slave_compressed_protocol = ON;  -- and in my.cnf; takes effect at the next connect");
  // Local writes (Moodle's sessions/log) are binlogged when log_bin is on; in HQ's GTID domain
  // they would make HQ's next event look out of order and stop replication under strict mode.
  if (c.var("log_bin").value_or("0") == "1") {
    std::string domain = c.var("gtid_domain_id").value_or("0");
    std::string slave_pos = c.var("gtid_slave_pos").value_or("");
    bool clash = false;
    for (auto& gtid : split_csv(slave_pos))
      if (gtid.substr(0, gtid.find('-')) == domain) clash = true;
    if (clash || (slave_pos.empty() && domain == "0"))
      c.add("gtid-domain-clash", "error",
            "the replica binlogs its own writes in GTID domain " + domain +
                ", which HQ uses: Moodle's local writes would break GTID replication",
            "SET GLOBAL gtid_domain_id = " + std::to_string(s.gtid_domain_id) + ";  -- and gtid_domain_id = " +
                std::to_string(s.gtid_domain_id) + " in my.cnf");
  }
}

}  // namespace

std::vector<Finding> check_profile(db::SqlConnection& db, const ProfileSpec& s) {
  Check c{db, s, s.grantee(), {}, {}, {}, {}, {}};
  check_tables(c);
  check_account(c);
  if (c.var("read_only").value_or("0") == "1")
    c.add("read-only-on", "error", "the replica runs with read_only = ON: Moodle's sessions and log writes are refused",
          "SET GLOBAL read_only = OFF;  -- and read_only = OFF in my.cnf; the grants keep content read-only");
  auto st = read_replication_status(db);
  check_ignore_list(c, st);
  check_source(c, st);
  check_stream(c);
  return c.f;
}

}  // namespace distd::replica
