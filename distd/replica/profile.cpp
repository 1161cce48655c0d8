#include "distd/replica/profile.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "distd/replica/health.h"
#include "distd/replica/profile_sql.h"
#include "manifest/error.h"

namespace distd::replica {

const char* flavor_name(Flavor f) { return f == Flavor::mariadb ? "mariadb" : "mysql"; }

const std::vector<LocalTable>& core_local_tables() {
  // Every table a real Moodle 4.5 wrote while a person used the center (tests/moodle/), with the
  // code that writes it. Each is excluded from replication, so the center's rows never meet HQ's.
  static const std::vector<LocalTable> t = {
      {"sessions",
       "every request with a session (also anonymous and guest) inserts and updates its row "
       "(\\core\\session\\manager, lib/classes/session/manager.php)"},
      {"user_lastaccess",
       "course page views insert/update the per-course access time (user_accesstime_log() in lib/datalib.php)"},
      {"logstore_standard_log",
       "every logged event inserts a row (admin/tool/log/store/standard/classes/log/store.php)"},
      {"user_preferences",
       "every successful login deletes the login_lockout preference (login_attempt_valid() -> "
       "login_unlock_account() in lib/authlib.php); failed logins count in it; page drawers and "
       "settings save preferences (set_user_preference() in lib/moodlelib.php)"},
      {"cache_flags",
       "preference changes and logins mark the user's caches dirty (mark_user_preferences_changed() -> "
       "set_cache_flag() in lib/moodlelib.php)"},
      {"task_adhoc",
       "a login queues the new-login notification (complete_user_login() -> "
       "\\core\\task\\manager::queue_adhoc_task() in lib/moodlelib.php); the center runs no cron, so "
       "HQ's queue must not arrive there either"},
      {"block_recentlyaccesseditems",
       "every activity view records the item for the Recently accessed items block "
       "(blocks/recentlyaccesseditems/classes/observer.php, store())"},
      {"forum_read",
       "viewing a discussion with read tracking on marks its posts read (forum_tp_add_read_record() "
       "in mod/forum/lib.php, from mod/forum/discuss.php)"},
      {"chat_users",
       "logout removes the user from chat rooms (chat_user_logout() in mod/chat/lib.php)"},
      {"tiny_autosave",
       "every page with an editor (the forum page's in-page form too) opens an autosave session for "
       "its drafts (resume_session()/update_session() in "
       "lib/editor/tiny/plugins/autosave/classes/autosave_manager.php, by AJAX)"},
  };
  return t;
}

const std::vector<std::string>& user_writable_columns() {
  static const std::vector<std::string> c = {"firstaccess", "lastaccess", "lastlogin", "currentlogin", "lastip",
                                             "password"};
  return c;
}

std::string ProfileSpec::grantee() const {
  auto q = [](const std::string& s) {
    std::string o = "'";
    for (char c : s) {
      if (c == '\'' || c == '\\') o += '\\';
      o += c;
    }
    return o + "'";
  };
  return q(moodle_user) + "@" + q(moodle_host);
}

std::string ProfileSpec::user_table() const { return prefix + "user"; }

std::string ProfileSpec::ignore_list() const {
  std::string s;
  for (auto& t : local_tables) s += (s.empty() ? "" : ",") + database + "." + t;
  return s;
}

ProfileSpec make_profile_spec(const ReplicaConfig& rc, Flavor flavor) {
  ProfileSpec s;
  s.flavor = flavor;
  s.database = rc.database;
  s.prefix = rc.prefix;
  s.moodle_user = rc.moodle_user;
  s.moodle_host = rc.moodle_host;
  s.gtid_domain_id = rc.gtid_domain_id;
  for (auto& t : core_local_tables()) s.local_tables.push_back(rc.prefix + t.name);
  for (auto& t : rc.extra_local_tables) {
    std::string full = rc.prefix + t;
    if (std::find(s.local_tables.begin(), s.local_tables.end(), full) == s.local_tables.end())
      s.local_tables.push_back(full);
  }
  return s;
}

namespace profile_sql {

std::string db_q(const ProfileSpec& s) { return db::quote_ident(s.database); }
std::string tbl_q(const ProfileSpec& s, const std::string& t) { return db_q(s) + "." + db::quote_ident(t); }

std::string column_list(bool quoted) {
  std::string s;
  for (auto& c : user_writable_columns()) s += (s.empty() ? "" : ", ") + (quoted ? db::quote_ident(c) : c);
  return s;
}

std::string grant_local(const ProfileSpec& s, const std::string& t) {
  return "GRANT SELECT, INSERT, UPDATE, DELETE ON " + tbl_q(s, t) + " TO " + s.grantee() + ";";
}
std::string grant_columns(const ProfileSpec& s) {
  return "GRANT UPDATE (" + column_list(true) + ") ON " + tbl_q(s, s.user_table()) + " TO " + s.grantee() + ";";
}
std::string grant_read(const ProfileSpec& s) {
  return "GRANT SELECT, CREATE TEMPORARY TABLES ON " + db_q(s) + ".* TO " + s.grantee() + ";";
}

bool like_match(const std::string& pat, size_t pi, const std::string& s, size_t si) {
  while (pi < pat.size()) {
    char c = pat[pi];
    if (c == '%') {
      for (size_t k = si; k <= s.size(); ++k)
        if (like_match(pat, pi + 1, s, k)) return true;
      return false;
    }
    if (si >= s.size()) return false;
    if (c == '\\' && pi + 1 < pat.size()) {
      if (pat[pi + 1] != s[si]) return false;
      pi += 2;
      ++si;
      continue;
    }
    if (c != '_' && c != s[si]) return false;
    ++pi;
    ++si;
  }
  return si == s.size();
}

std::string mariadb_ignore_fix(const ProfileSpec& s, const std::string& merged) {
  return "STOP SLAVE SQL_THREAD; SET GLOBAL replicate_ignore_table = '" + merged +
         "'; START SLAVE SQL_THREAD;  -- and in my.cnf: replicate_ignore_table = " + merged;
}

std::string mysql_ignore_fix(const std::vector<std::string>& tables) {
  std::string list;
  for (auto& t : tables) list += (list.empty() ? "" : ", ") + t;
  return "STOP REPLICA SQL_THREAD; CHANGE REPLICATION FILTER REPLICATE_IGNORE_TABLE = (" + list +
         "); START REPLICA SQL_THREAD;  -- and one replicate-ignore-table line per table in my.cnf";
}

std::vector<std::string> split_csv(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ' && c != '\n' && c != '`') {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::vector<std::string> stale_ignore(const std::string& live, const ProfileSpec& s) {
  std::vector<std::string> out;
  const std::string ours = s.database + ".";
  for (auto& e : split_csv(live)) {
    if (e.compare(0, ours.size(), ours) != 0) continue;
    if (std::find(s.local_tables.begin(), s.local_tables.end(), e.substr(ours.size())) == s.local_tables.end())
      out.push_back(e);
  }
  return out;
}

std::vector<std::string> merged_ignore(const std::string& live, const ProfileSpec& s) {
  std::vector<std::string> out;
  const std::string ours = s.database + ".";
  for (auto& e : split_csv(live))
    if (e.compare(0, ours.size(), ours) != 0) out.push_back(e);
  for (auto& t : s.local_tables) {
    std::string full = ours + t;
    if (std::find(out.begin(), out.end(), full) == out.end()) out.push_back(full);
  }
  return out;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

std::set<std::string> existing_tables(db::SqlConnection& db, const ProfileSpec& s) {
  std::set<std::string> out;
  for (auto& r : db.query_bound("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", {s.database}))
    out.insert(r.str({"TABLE_NAME"}));
  return out;
}

}  // namespace profile_sql

using namespace profile_sql;

std::string profile_grants_sql(const ProfileSpec& s) {
  std::ostringstream o;
  o << "-- Moodle's account " << s.grantee() << " must already exist with its password.\n";
  o << "REVOKE ALL PRIVILEGES, GRANT OPTION FROM " << s.grantee() << ";\n";
  o << "-- read everything (and temporary tables, which some reports and enrolment sync use)\n";
  o << grant_read(s) << "\n";
  o << "-- write the local-only tables (excluded from replication)\n";
  for (auto& t : s.local_tables) o << grant_local(s, t) << "\n";
  o << "-- login and page views update these columns of " << s.user_table() << " (column grants)\n";
  o << grant_columns(s) << "\n";
  return o.str();
}

std::string profile_replication_sql(const ProfileSpec& s) {
  std::ostringstream o;
  if (s.flavor == Flavor::mariadb) {
    o << "STOP SLAVE;\n";
    o << "SET GLOBAL replicate_ignore_table = '" << s.ignore_list() << "';\n";
    o << "SET GLOBAL gtid_domain_id = " << s.gtid_domain_id << ";  -- the replica's own writes never enter HQ's domain\n";
    o << "SET GLOBAL slave_net_timeout = 60;\n";
    o << "SET GLOBAL slave_compressed_protocol = ON;\n";
    o << "CHANGE MASTER TO MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 60, MASTER_HEARTBEAT_PERIOD = 30;\n";
    o << "START SLAVE;\n";
  } else {
    std::string list;
    for (auto& t : s.local_tables) list += (list.empty() ? "" : ", ") + s.database + "." + t;
    o << "STOP REPLICA;\n";
    o << "CHANGE REPLICATION FILTER REPLICATE_IGNORE_TABLE = (" << list << ");\n";
    o << "SET PERSIST slave_net_timeout = 60;\n";
    o << "CHANGE REPLICATION SOURCE TO SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 60, "
         "SOURCE_RETRY_COUNT = 1000000, SOURCE_HEARTBEAT_PERIOD = 30, SOURCE_COMPRESSION_ALGORITHMS = 'zstd,zlib';\n";
    o << "START REPLICA;\n";
  }
  return o.str();
}

std::string profile_mycnf(const ProfileSpec& s) {
  std::ostringstream o;
  if (s.flavor == Flavor::mariadb) {
    o << "[mariadbd]\n";
    o << "server_id                 = <unique, not HQ's>\n";
    o << "gtid_domain_id            = " << s.gtid_domain_id << "\n";
    o << "gtid_strict_mode          = ON\n";
    o << "replicate_ignore_table    = " << s.ignore_list() << "\n";
    o << "slave_net_timeout         = 60\n";
    o << "slave_compressed_protocol = ON\n";
    o << "master_retry_count        = 1000000   # x 60 s connect retry: keeps trying for ~2 years\n";
    o << "relay_log_recovery        = ON        # a power cut never leaves a torn relay log\n";
    o << "innodb_flush_log_at_trx_commit = 1\n";
    o << "read_only                 = OFF       # Moodle writes its local tables; grants do the rest\n";
  } else {
    o << "[mysqld]\n";
    o << "server_id                 = <unique, not HQ's>\n";
    o << "gtid_mode                 = ON\n";
    o << "enforce_gtid_consistency  = ON\n";
    for (auto& t : s.local_tables) o << "replicate-ignore-table    = " << s.database << "." << t << "\n";
    o << "replica_net_timeout       = 60\n";
    o << "relay_log_recovery        = ON\n";
    o << "innodb_flush_log_at_trx_commit = 1\n";
    o << "read_only                 = OFF\n";
  }
  return o.str();
}

std::string profile_text(const ProfileSpec& s) {
  std::ostringstream o;
  o << "-- distd replica profile for Moodle database `" << s.database << "` (prefix " << s.prefix << "), account "
    << s.grantee() << ", server: " << flavor_name(s.flavor) << "\n";
  o << "-- Run on the REPLICA as an administrator. Explained in docs/replica.md.\n\n";
  o << "-- 1. Moodle's account: read everything, write only what a page view needs\n";
  o << profile_grants_sql(s) << "\n";
  o << "-- 2. Replication: local-only tables ignored, GTID, reconnect for a link that drops for days\n";
  o << profile_replication_sql(s) << "\n";
  o << "-- 3. Server config (SET GLOBAL does not survive a restart): add to the replica's my.cnf\n";
  std::istringstream in(profile_mycnf(s));
  for (std::string line; std::getline(in, line);) o << "--   " << line << "\n";
  return o.str();
}

Flavor detect_flavor(db::SqlConnection& db) { return db.is_mariadb() ? Flavor::mariadb : Flavor::mysql; }

ApplyReport apply_profile(db::SqlConnection& db, const ProfileSpec& s) {
  ApplyReport rep;
  auto run = [&](const std::string& sql) {
    db.exec(sql);
    rep.executed.push_back(sql);
  };
  auto exists = db.scalar_bound("SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = ?",
                                {s.moodle_user, s.moodle_host});
  if (!exists || *exists == "0")
    throw Error(Errc::not_found, "Moodle's database account " + s.grantee() + " does not exist on the replica",
                "create it with Moodle's password first: CREATE USER " + s.grantee() +
                    " IDENTIFIED BY '<$CFG->dbpass>'; then run --apply again");
  auto tables = existing_tables(db, s);
  if (tables.empty())
    throw Error(Errc::not_found, "database `" + s.database + "` has no tables on the replica",
                "let replication create Moodle's schema first (or check replica.database / --moodle-db)");

  run("REVOKE ALL PRIVILEGES, GRANT OPTION FROM " + s.grantee());
  run(grant_read(s).substr(0, grant_read(s).size() - 1));
  for (auto& t : s.local_tables) {
    if (!tables.count(t)) {
      rep.notes.push_back("skipped " + t + ": the table does not exist in `" + s.database + "`");
      continue;
    }
    std::string g = grant_local(s, t);
    run(g.substr(0, g.size() - 1));
  }
  if (tables.count(s.user_table())) {
    std::string g = grant_columns(s);
    run(g.substr(0, g.size() - 1));
  } else {
    rep.notes.push_back("skipped the column grants: " + s.user_table() + " does not exist");
  }

  auto st = read_replication_status(db);
  std::string live_ignore;
  if (st) {
    live_ignore = st->str({"Replicate_Ignore_Table"});
  } else if (s.flavor == Flavor::mariadb) {
    live_ignore = db.scalar("SELECT @@GLOBAL.replicate_ignore_table").value_or("");
  }
  auto merged = merged_ignore(live_ignore, s);
  for (auto& t : stale_ignore(live_ignore, s))
    rep.notes.push_back("replication no longer ignores " + t +
                        ": the center's copy may differ from HQ's; reload it from HQ (mariadb-dump --single-transaction "
                        "at HQ, loaded at the center) before HQ changes it");
  bool io_was = st && st->str({"Slave_IO_Running", "Replica_IO_Running"}) != "No";
  bool sql_was = st && st->str({"Slave_SQL_Running", "Replica_SQL_Running"}) == "Yes";
  if (s.flavor == Flavor::mariadb) {
    if (st) run("STOP SLAVE");
    run("SET GLOBAL replicate_ignore_table = " + db.quote(join(merged, ",")));
    run("SET GLOBAL gtid_domain_id = " + std::to_string(s.gtid_domain_id));
    run("SET GLOBAL slave_net_timeout = 60");
    run("SET GLOBAL slave_compressed_protocol = ON");
    if (st) {
      run("CHANGE MASTER TO MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 60, MASTER_HEARTBEAT_PERIOD = 30");
      if (io_was || sql_was) run("START SLAVE");
    }
  } else {
    if (st) run("STOP REPLICA");
    std::string list;
    for (auto& t : merged) list += (list.empty() ? "" : ", ") + t;
    run("CHANGE REPLICATION FILTER REPLICATE_IGNORE_TABLE = (" + list + ")");
    run("SET PERSIST slave_net_timeout = 60");
    if (st) {
      run("CHANGE REPLICATION SOURCE TO SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 60, SOURCE_RETRY_COUNT = 1000000, "
          "SOURCE_HEARTBEAT_PERIOD = 30, SOURCE_COMPRESSION_ALGORITHMS = 'zstd,zlib'");
      if (io_was || sql_was) run("START REPLICA");
    }
  }
  if (!st)
    rep.notes.push_back("replication is not configured yet: set it up (docs/replica.md) and run --apply again for the "
                        "GTID and reconnect settings");
  rep.notes.push_back("SET GLOBAL settings do not survive a restart: put the my.cnf snippet from --print into the "
                      "replica's server config");
  return rep;
}

}  // namespace distd::replica
