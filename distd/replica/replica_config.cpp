#include "distd/replica/replica_config.h"

#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd::replica {

ReplicaConfig load_replica_config(const Config& cfg, bool required) {
  ReplicaConfig rc;
  auto* section = cfg.table["replica"].as_table();
  if (!section) {
    if (required)
      throw Error(Errc::usage, "config " + cfg.file + " has no [replica] section",
                  "add [replica] with host/socket, user, password_file, database, moodle_user and filedir; "
                  "see docs/replica.md");
    return rc;
  }
  rc.present = true;
  rc.conn.host = cfg.get_string("replica.host", "localhost");
  rc.conn.port = static_cast<int>(cfg.get_int("replica.port", 3306));
  std::string sock = cfg.get_string("replica.socket");
  rc.conn.socket = sock.empty() ? "" : cfg.resolve(sock);
  rc.conn.user = cfg.get_string("replica.user");
  rc.password_file = cfg.get_string("replica.password_file");
  if (!rc.password_file.empty()) {
    rc.password_file = cfg.resolve(rc.password_file);
    rc.conn.password = read_password_file(rc.password_file, "replica password file");
  }
  rc.database = cfg.get_string("replica.database", "moodle");
  rc.conn.database = rc.database;
  rc.prefix = cfg.get_string("replica.prefix", "mdl_");
  rc.moodle_user = cfg.get_string("replica.moodle_user", "moodle");
  rc.moodle_host = cfg.get_string("replica.moodle_host", "localhost");
  std::string fd = cfg.get_string("replica.filedir");
  rc.filedir = fd.empty() ? "" : cfg.resolve(fd);
  rc.lag_warn_seconds = cfg.get_int("replica.lag_warn_seconds", 600);
  rc.gtid_domain_id = cfg.get_int("replica.gtid_domain_id", 100);
  auto strings = [&](const char* key, std::vector<std::string>& out) {
    auto* node = section->get(key);
    if (!node) return;
    auto* arr = node->as_array();
    if (!arr) throw Error(Errc::usage, "config " + cfg.file + ": replica." + key + " must be a list of strings");
    out.clear();
    for (auto& e : *arr) {
      auto s = e.value<std::string>();
      if (!s) throw Error(Errc::usage, "config " + cfg.file + ": replica." + key + " must be a list of strings");
      out.push_back(*s);
    }
  };
  strings("extra_local_tables", rc.extra_local_tables);
  strings("moodle_purge_command", rc.moodle_purge_command);
  strings("cache_watch_tables", rc.cache_watch_tables);
  std::string md = cfg.get_string("replica.moodle_dir");
  rc.moodle_dir = md.empty() ? "" : cfg.resolve(md);
  rc.php = cfg.get_string("replica.php", "php");
  rc.cache_watch_seconds = cfg.get_int("replica.cache_watch_seconds", 30);
  if (rc.cache_watch_seconds < 1 || rc.cache_watch_seconds > 86400)
    throw Error(Errc::usage, "config " + cfg.file + ": replica.cache_watch_seconds must be 1..86400");
  if (rc.conn.port <= 0 || rc.conn.port > 65535)
    throw Error(Errc::usage, "config " + cfg.file + ": replica.port must be 1..65535");
  auto ident_ok = [](const std::string& s) {
    if (s.empty()) return false;
    for (char c : s)
      if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$')) return false;
    return true;
  };
  if (!ident_ok(rc.database))
    throw Error(Errc::usage, "config " + cfg.file + ": replica.database '" + rc.database + "' is not a plain name",
                "use letters, digits and _ only");
  if (!rc.prefix.empty() && !ident_ok(rc.prefix))
    throw Error(Errc::usage, "config " + cfg.file + ": replica.prefix '" + rc.prefix + "' is not a plain name");
  for (auto& t : rc.cache_watch_tables)
    if (!ident_ok(t))
      throw Error(Errc::usage, "config " + cfg.file + ": replica.cache_watch_tables entry '" + t + "' is not a plain name",
                  "give table names without the prefix, e.g. \"config\"");
  for (auto& t : rc.extra_local_tables)
    if (!ident_ok(t))
      throw Error(Errc::usage, "config " + cfg.file + ": replica.extra_local_tables entry '" + t + "' is not a plain name",
                  "give table names without the prefix, e.g. \"forum_read\"");
  return rc;
}

}  // namespace distd::replica
