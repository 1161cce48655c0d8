// distctl replica profile|status|check-files: the regional MySQL/MariaDB replica of HQ's Moodle
// database (docs/replica.md).
#include <sys/stat.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "distd/forum/settings.h"
#include "distd/config/config.h"
#include "distd/replica/file_check.h"
#include "distd/replica/health.h"
#include "distd/replica/moodle_site.h"
#include "distd/replica/profile.h"
#include "distd/replica/schema_drift.h"
#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd::cli {
namespace {

struct ReplicaOpts {
  std::string config = default_config_path();
  bool json = false;
  // profile
  bool print = false, apply = false, check = false;
  std::string moodle_db, moodle_user, moodle_host, flavor = "auto";
  std::string db_user, db_password_file;
  // moodle-config, purge-caches
  bool force = false, dry_run = false;
  // check-files
  bool verify = false;
  size_t limit = 50;
};

replica::ReplicaConfig load_rc(const ReplicaOpts& o, const Config& cfg) {
  replica::ReplicaConfig rc = replica::load_replica_config(cfg, true);
  if (!o.moodle_db.empty()) {
    rc.database = o.moodle_db;
    rc.conn.database = o.moodle_db;
  }
  if (!o.moodle_user.empty()) rc.moodle_user = o.moodle_user;
  if (!o.moodle_host.empty()) rc.moodle_host = o.moodle_host;
  if (!o.db_user.empty()) {
    rc.conn.user = o.db_user;
    rc.conn.password.clear();
  }
  if (!o.db_password_file.empty()) rc.conn.password = read_password_file(o.db_password_file, "replica password file");
  return rc;
}

// The local-only tables against Moodle's own definitions (after an HQ upgrade); with repair, rebuilds
// the drifted ones. Needs replica.moodle_dir; without it nothing is compared.
std::vector<replica::Finding> drift_findings(const Config& cfg, const replica::ReplicaConfig& rc, db::SqlConnection& db,
                                             const replica::ProfileSpec& spec, std::vector<std::string>* repaired) {
  replica::DriftReport d;
  try {
    d = replica::check_local_table_drift(cfg, rc, db, spec);
    if (repaired && !d.drifted.empty()) {
      *repaired = replica::repair_local_table_drift(db, spec, d);
      d = replica::check_local_table_drift(cfg, rc, db, spec);
    }
  } catch (const Error& e) {
    if (e.code() != Errc::database) throw;
    return {{"drift-unchecked", "warning",
             std::string("could not compare the local-only tables with Moodle's definitions: ") + e.what(),
             "run it as an administrator (--db-user root) or GRANT ALL ON distd_scratch.* TO distd's account"}};
  }
  return d.findings;
}

void print_findings(const std::vector<replica::Finding>& f, const char* what = "replica profile",
                    const std::string& clean = "no findings; Moodle's account is read-only where it matters") {
  if (f.empty()) {
    std::printf("%s: %s\n", what, clean.c_str());
    return;
  }
  std::printf("%s: %zu finding(s)\n", what, f.size());
  for (auto& x : f) std::printf("  [%s] %s\n      fix: %s\n", x.severity.c_str(), x.message.c_str(), x.fix.c_str());
}

nlohmann::json findings_json(const std::vector<replica::Finding>& f) {
  nlohmann::json a = nlohmann::json::array();
  for (auto& x : f) a.push_back({{"code", x.code}, {"severity", x.severity}, {"message", x.message}, {"fix", x.fix}});
  return a;
}

int run_profile(const ReplicaOpts& o) {
  if (int(o.print) + int(o.apply) + int(o.check) != 1)
    throw Error(Errc::usage, "replica profile needs exactly one of --print, --apply, --check",
                "e.g. 'distctl replica profile --print' to see the SQL first");
  Config cfg = load_config(o.config);
  replica::ReplicaConfig rc = load_rc(o, cfg);
  if (o.flavor != "auto" && o.flavor != "mariadb" && o.flavor != "mysql")
    throw Error(Errc::usage, "--flavor must be auto, mariadb or mysql");

  if (o.print) {
    replica::Flavor fl = o.flavor == "mysql" ? replica::Flavor::mysql : replica::Flavor::mariadb;
    if (o.flavor == "auto") {
      try {
        db::SqlConnection db(rc.conn);
        fl = replica::detect_flavor(db);
      } catch (const Error& e) {
        std::fprintf(stderr, "distctl: note: could not reach the replica to detect its flavor (%s); printing for "
                             "MariaDB (use --flavor mysql for MySQL 8)\n", e.what());
      }
    }
    auto spec = replica::make_profile_spec(rc, fl);
    if (o.json) {
      nlohmann::json j{{"flavor", replica::flavor_name(fl)},
                       {"grants_sql", replica::profile_grants_sql(spec)},
                       {"replication_sql", replica::profile_replication_sql(spec)},
                       {"mycnf", replica::profile_mycnf(spec)},
                       {"local_tables", spec.local_tables}};
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << replica::profile_text(spec);
    }
    return 0;
  }

  db::SqlConnection db(rc.conn);
  replica::Flavor fl = o.flavor == "auto" ? replica::detect_flavor(db)
                       : o.flavor == "mysql" ? replica::Flavor::mysql
                                             : replica::Flavor::mariadb;
  auto spec = replica::make_profile_spec(rc, fl);
  if (o.apply) {
    auto rep = replica::apply_profile(db, spec);
    std::vector<std::string> repaired;
    auto findings = replica::check_profile(db, spec);
    for (auto& f : drift_findings(cfg, rc, db, spec, &repaired)) findings.push_back(f);
    rep.executed.insert(rep.executed.end(), repaired.begin(), repaired.end());
    if (o.json) {
      std::cout << nlohmann::json{{"executed", rep.executed}, {"notes", rep.notes}, {"findings", findings_json(findings)}}.dump(2)
                << "\n";
    } else {
      for (auto& s : rep.executed) std::printf("ran: %s;\n", s.c_str());
      for (auto& n : rep.notes) std::printf("note: %s\n", n.c_str());
      print_findings(findings);
      std::printf("\nAdd to the replica's server config so the settings survive a restart:\n%s",
                  replica::profile_mycnf(spec).c_str());
    }
    return findings.empty() ? 0 : 1;
  }
  auto findings = replica::check_profile(db, spec);
  for (auto& f : drift_findings(cfg, rc, db, spec, nullptr)) findings.push_back(f);
  if (o.json)
    std::cout << nlohmann::json{{"ok", findings.empty()}, {"findings", findings_json(findings)}}.dump(2) << "\n";
  else
    print_findings(findings);
  return findings.empty() ? 0 : 1;
}

int run_status(const ReplicaOpts& o) {
  Config cfg = load_config(o.config);
  auto h = replica::replica_health(cfg, true);
  if (o.json)
    std::cout << replica::to_json(h).dump(2) << "\n";
  else
    std::cout << replica::format_health(h);
  return h.ok() ? 0 : 1;
}

int run_check_files(const ReplicaOpts& o) {
  Config cfg = load_config(o.config);
  auto r = replica::check_files(cfg, o.verify);
  if (o.json)
    std::cout << replica::to_json(r).dump(2) << "\n";
  else
    std::cout << replica::format_report(r, o.limit);
  return r.clean() ? 0 : 1;
}

int run_moodle_config(const ReplicaOpts& o) {
  if (!o.check) {
    if (o.json) {
      nlohmann::json a = nlohmann::json::array();
      for (auto& m : replica::center_moodle_settings())
        a.push_back({{"name", m.name}, {"value", m.value}, {"why", m.why}});
      std::cout << nlohmann::json{{"settings", a}, {"snippet", replica::moodle_config_snippet()}}.dump(2) << "\n";
    } else {
      std::cout << replica::moodle_config_snippet();
      // With a center's config at hand, the forum plugin's lines too.
      struct stat st {};
      if (::stat(o.config.c_str(), &st) == 0) {
        Config cfg = load_config(o.config);
        if (cfg.role == "regional") std::cout << forum::moodle_config_lines(cfg);
      }
    }
    return 0;
  }
  Config cfg = load_config(o.config);
  auto rc = replica::load_replica_config(cfg, true);
  auto f = replica::check_moodle_config(rc);
  // The forum plugin's center mode, with this distd's socket (docs/forum.md).
  if (cfg.role == "regional") {
    std::string text = read_file(rc.moodle_dir + "/config.php", 1 << 20, "Moodle config.php");
    std::string sock = forum::ForumSettings::from(cfg).socket;
    if (text.find("forced_plugin_settings['local_distd']") == std::string::npos ||
        text.find("'mode' => 'center'") == std::string::npos || text.find("'" + sock + "'") == std::string::npos)
      f.push_back({"moodle-config-forum", "error",
                   rc.moodle_dir + "/config.php does not put local_distd in center mode with socket " + sock +
                       ": students' posts would be written to the replica and fail",
                   "add the lines 'distctl replica moodle-config' prints (forced_plugin_settings['local_distd'])"});
  }
  if (o.json) {
    std::cout << nlohmann::json{{"ok", f.empty()}, {"config_php", rc.moodle_dir + "/config.php"},
                                {"findings", findings_json(f)}}.dump(2) << "\n";
  } else {
    print_findings(f, "moodle config", rc.moodle_dir + "/config.php has every setting a center on a replica needs");
  }
  return f.empty() ? 0 : 1;
}

int run_purge_caches(const ReplicaOpts& o) {
  Config cfg = load_config(o.config);
  auto rc = replica::load_replica_config(cfg, true);
  auto r = replica::purge_caches_if_changed(cfg, rc, o.force, o.dry_run);
  std::string cmd;
  for (auto& a : r.command) cmd += (cmd.empty() ? "" : " ") + a;
  if (o.json) {
    std::cout << nlohmann::json{{"changed", r.changed}, {"purged", r.purged}, {"command", r.command},
                                {"fingerprint", r.fingerprint}, {"output", r.output}}.dump(2) << "\n";
  } else if (r.purged) {
    std::printf("purged the center's Moodle caches (%s)%s\n", cmd.c_str(),
                r.changed ? ": HQ's settings changed since the last purge" : "");
  } else if (r.changed) {
    std::printf("HQ's settings changed since the last purge; would run: %s\n", cmd.c_str());
  } else {
    std::printf("HQ's settings are unchanged since the last purge; nothing to do (--force purges anyway)\n");
  }
  return 0;
}

void register_replica(CLI::App& app, Action& chosen) {
  auto opts = std::make_shared<ReplicaOpts>();
  // Every replica subcommand reads the config and can answer in JSON.
  auto common = [&](CLI::App* sub, const char* json_help) {
    sub->add_option("--config", opts->config, "config file")->capture_default_str();
    sub->add_flag("--json", opts->json, json_help);
  };
  auto* rep = app.add_subcommand("replica", "The local MySQL/MariaDB replica of HQ's Moodle database (docs/replica.md)");
  rep->require_subcommand(1);

  auto* prof = rep->add_subcommand(
      "profile",
      "Make the replica 'read-only where it matters': Moodle's account reads everything and writes only the\n"
      "local-only tables; those are excluded from replication; GTID and reconnect settings for a flaky link.\n"
      "Examples:\n  distctl replica profile --print\n  distctl replica profile --apply\n"
      "  distctl replica profile --check --json   (exit 1 when there are findings)");
  common(prof, "machine-readable output");
  prof->add_option("--moodle-db", opts->moodle_db, "Moodle's database name (default: replica.database)");
  prof->add_option("--moodle-user", opts->moodle_user, "Moodle's database account (default: replica.moodle_user)");
  prof->add_option("--moodle-host", opts->moodle_host, "host part of that account (default: replica.moodle_host)");
  prof->add_option("--flavor", opts->flavor, "auto, mariadb or mysql")->capture_default_str();
  prof->add_option("--db-user", opts->db_user, "connect as this admin account instead of replica.user (for --apply)");
  prof->add_option("--db-password-file", opts->db_password_file, "password file for --db-user (mode 0600)");
  auto* g = prof->add_option_group("action");
  g->add_flag("--print", opts->print, "print the SQL and the my.cnf snippet");
  g->add_flag("--apply", opts->apply, "run the SQL on the replica (needs an admin account)");
  g->add_flag("--check", opts->check, "report every deviation as a finding with its fix");
  g->require_option(1);
  prof->callback([opts, &chosen] { chosen = [opts] { return run_profile(*opts); }; });

  auto* st = rep->add_subcommand("status",
                                 "Replication health: IO/SQL threads, seconds behind, last errors, GTID position and the\n"
                                 "profile's findings. Exit 1 when anything is a warning.");
  common(st, "machine-readable output");
  st->callback([opts, &chosen] { chosen = [opts] { return run_status(*opts); }; });

  auto* mc = rep->add_subcommand(
      "moodle-config",
      "The lines the center's Moodle config.php needs on a replica, each with the write it avoids.\n"
      "With --check, reads <replica.moodle_dir>/config.php and reports what is missing (exit 1).\n"
      "Examples:\n  distctl replica moodle-config >> /tmp/snippet.php   (paste before require_once lib/setup.php)\n"
      "  distctl replica moodle-config --check");
  common(mc, "machine-readable output");
  mc->add_flag("--check", opts->check, "check the center's config.php instead of printing");
  mc->callback([opts, &chosen] { chosen = [opts] { return run_moodle_config(*opts); }; });

  auto* pc = rep->add_subcommand(
      "purge-caches",
      "Purge the center's Moodle cache store when HQ's replicated settings, roles or capabilities changed\n"
      "since the last purge (the daemon does this every replica.cache_watch_seconds). Runs\n"
      "replica.moodle_purge_command, by default: php <moodle_dir>/admin/cli/purge_caches.php --muc,\n"
      "which writes nothing to the database.\n"
      "Examples:\n  distctl replica purge-caches\n  distctl replica purge-caches --force --json");
  common(pc, "machine-readable output");
  pc->add_flag("--force", opts->force, "purge even when nothing changed");
  pc->add_flag("--dry-run", opts->dry_run, "only say whether HQ's settings changed");
  pc->callback([opts, &chosen] { chosen = [opts] { return run_purge_caches(*opts); }; });

  auto* cf = rep->add_subcommand(
      "check-files",
      "List content the replica's mdl_files references that is missing from the local filedir (exit 1 if any).");
  common(cf, "machine-readable output (lists every missing hash)");
  cf->add_flag("--verify", opts->verify, "also check the SHA-1 of every present blob (reads all of filedir)");
  cf->add_option("--limit", opts->limit, "list at most this many missing files in text output")->capture_default_str();
  cf->callback([opts, &chosen] { chosen = [opts] { return run_check_files(*opts); }; });
}

CommandRegistrar registrar_replica(60, register_replica);

}  // namespace
}  // namespace distd::cli
