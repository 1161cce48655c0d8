#include "distd/replica/schema_drift.h"

#include <unistd.h>

#include <map>

#include <nlohmann/json.hpp>

#include "distd/io/run_command.h"
#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd::replica {

namespace {

const char* kScratch = "distd_scratch";

// Read-only: bootstraps the center's Moodle (config.php) and prints, for each table, the SQL
// Moodle's XMLDB generator makes from install.xml for this database, and both versions.
const char* kDefinitionsPhp = R"PHP(<?php
// Written and run by distd (distd/replica/schema_drift.cpp). Reads only.
define('CLI_SCRIPT', true);
$opts = getopt('', ['moodle:', 'tables:']);
require($opts['moodle'] . '/config.php');
function distd_code_version($dirroot) {
    $version = null;
    $release = null;
    require($dirroot . '/version.php');
    return [$version, $release];
}
[$codeversion, $release] = distd_code_version($CFG->dirroot);
$dbman = $DB->get_manager();
$schema = $dbman->get_install_xml_schema();
$out = ['db_version' => sprintf('%.2f', get_config('core', 'version')), 'code_version' => sprintf('%.2f', $codeversion),
        'release' => (string)$release, 'tables' => []];
foreach (explode(',', $opts['tables']) as $name) {
    $table = $schema->getTable($name);
    $out['tables'][$name] = $table ? array_values($dbman->generator->getCreateTableSQL($table)) : null;
}
echo "DISTD-JSON:" . json_encode($out) . "\n";
)PHP";

struct Shape {
  std::map<std::string, std::string> columns;  // name -> "type NULL|NOT NULL DEFAULT x extra" (valid in ALTER)
  std::map<std::string, std::string> indexes;  // "UNIQUE (a,b)" / "(a)" -> index name
};

Shape shape_of(db::SqlConnection& db, const std::string& schema, const std::string& table) {
  Shape s;
  for (auto& r : db.query_bound("SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA FROM information_schema.COLUMNS "
                                "WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", {schema, table})) {
    std::string d = r.str({"COLUMN_TYPE"}) + (r.str({"IS_NULLABLE"}) == "YES" ? " NULL" : " NOT NULL");
    if (auto def = r.get({"COLUMN_DEFAULT"})) d += " DEFAULT " + *def;
    if (!r.str({"EXTRA"}).empty()) d += " " + r.str({"EXTRA"});
    s.columns[r.str({"COLUMN_NAME"})] = d;
  }
  for (auto& r : db.query_bound("SELECT INDEX_NAME, MAX(NON_UNIQUE) AS NU, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) AS COLS "
                                "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? "
                                "GROUP BY INDEX_NAME", {schema, table})) {
    std::string name = r.str({"INDEX_NAME"});
    s.indexes[(name == "PRIMARY" ? "PRIMARY " : r.str({"NU"}) == "0" ? "UNIQUE " : "") + std::string("(") +
               r.str({"COLS"}) + ")"] = name;
  }
  return s;
}

std::vector<std::string> compare(const Shape& live, const Shape& want) {
  std::vector<std::string> out;
  for (auto& [c, d] : want.columns) {
    auto it = live.columns.find(c);
    if (it == live.columns.end())
      out.push_back("column " + c + " is missing (Moodle's definition: " + d + ")");
    else if (it->second != d)
      out.push_back("column " + c + " is " + it->second + ", Moodle's definition: " + d);
  }
  for (auto& [c, d] : live.columns)
    if (!want.columns.count(c)) out.push_back("column " + c + " (" + d + ") is not in Moodle's definition");
  for (auto& [i, _] : want.indexes)
    if (!live.indexes.count(i)) out.push_back("index " + i + " is missing");
  for (auto& [i, _] : live.indexes)
    if (!want.indexes.count(i)) out.push_back("index " + i + " is not in Moodle's definition");
  return out;
}

// One ALTER TABLE that gives `live` the columns and indexes of `want`, in place: rows, grants and
// the table's name stay. Index names come from Moodle's generator (those it had to make unique
// against the live table's own are never added: their signature is already there).
std::string alter_for(const std::string& table, const Shape& live, const Shape& want) {
  std::vector<std::string> parts;
  for (auto& [sig, name] : live.indexes)
    if (!want.indexes.count(sig)) parts.push_back(name == "PRIMARY" ? "DROP PRIMARY KEY" : "DROP INDEX " + db::quote_ident(name));
  for (auto& [c, d] : live.columns)
    if (!want.columns.count(c)) parts.push_back("DROP COLUMN " + db::quote_ident(c));
  for (auto& [c, d] : want.columns) {
    auto it = live.columns.find(c);
    if (it == live.columns.end())
      parts.push_back("ADD COLUMN " + db::quote_ident(c) + " " + d);
    else if (it->second != d)
      parts.push_back("MODIFY COLUMN " + db::quote_ident(c) + " " + d);
  }
  for (auto& [sig, name] : want.indexes) {
    if (live.indexes.count(sig)) continue;
    std::string cols = sig.substr(sig.find('('));
    std::string q;
    for (size_t a = 1, b; a < cols.size(); a = b + 1) {
      b = cols.find_first_of(",)", a);
      q += (q.empty() ? "" : ", ") + db::quote_ident(cols.substr(a, b - a));
    }
    parts.push_back(sig.rfind("PRIMARY", 0) == 0  ? "ADD PRIMARY KEY (" + q + ")"
                    : sig.rfind("UNIQUE", 0) == 0 ? "ADD UNIQUE INDEX " + db::quote_ident(name) + " (" + q + ")"
                                                  : "ADD INDEX " + db::quote_ident(name) + " (" + q + ")");
  }
  std::string sql = "ALTER TABLE " + table;
  for (size_t i = 0; i < parts.size(); ++i) sql += (i ? ", " : " ") + parts[i];
  return sql;
}

nlohmann::json moodle_definitions(const Config& cfg, const ReplicaConfig& rc, const ProfileSpec& spec) {
  make_dirs(cfg.state_dir + "/replica", 0750);
  const std::string script = cfg.state_dir + "/replica/moodle-definitions.php";
  write_file_atomic(script, kDefinitionsPhp, 0640);
  std::string tables;
  for (auto& t : spec.local_tables)
    tables += (tables.empty() ? "" : ",") + t.substr(spec.prefix.size());
  auto res = run_command({rc.php, "-d", "max_input_vars=5000", script, "--moodle=" + rc.moodle_dir, "--tables=" + tables},
                         rc.moodle_dir, cfg.state_dir + "/replica/.definitions-output", 4 << 20);
  auto at = res.output.find("DISTD-JSON:");
  if (res.status != 0 || at == std::string::npos)
    throw Error(Errc::io,
                "could not read Moodle's table definitions from " + rc.moodle_dir + " (" + rc.php + " exited " +
                    std::to_string(res.status) + "): " + tail_lines(res.output, 4),
                "check replica.moodle_dir (the center's Moodle code, with config.php) and replica.php");
  auto end = res.output.find('\n', at);
  try {
    return nlohmann::json::parse(res.output.substr(at + 11, end == std::string::npos ? std::string::npos : end - at - 11));
  } catch (const nlohmann::json::exception& e) {
    throw Error(Errc::io, std::string("Moodle's table definitions could not be parsed: ") + e.what(),
                "run distctl replica profile --check again; report it if it persists");
  }
}

// Moodle's statements name the table with its prefix and no database: run them in `into`.
void create_in(db::SqlConnection& db, const std::string& into, const std::vector<std::string>& sql) {
  db.exec("USE " + db::quote_ident(into));
  for (auto& s : sql) db.exec(s);
}

}  // namespace

DriftReport check_local_table_drift(const Config& cfg, const ReplicaConfig& rc, db::SqlConnection& db,
                                    const ProfileSpec& spec) {
  DriftReport r;
  if (rc.moodle_dir.empty()) return r;
  auto defs = moodle_definitions(cfg, rc, spec);
  r.checked = true;
  r.db_version = defs.value("db_version", "");
  r.code_version = defs.value("code_version", "");
  if (r.db_version != r.code_version) {
    r.findings.push_back(
        {"moodle-code-version", "error",
         "HQ's database is at Moodle version " + r.db_version + " but the center's Moodle code in " + rc.moodle_dir +
             " is " + r.code_version + " (" + defs.value("release", "") + "): its pages fail until they match",
         "install HQ's Moodle release at the center (same code, its own config.php), then run "
         "distctl replica profile --check again"});
    return r;  // the code's definitions are not HQ's: compare nothing
  }
  db.exec("CREATE DATABASE IF NOT EXISTS " + db::quote_ident(kScratch));
  for (auto& full : spec.local_tables) {
    const std::string name = full.substr(spec.prefix.size());
    auto& sql = defs["tables"][name];
    if (!sql.is_array()) continue;  // a table Moodle does not define (extra_local_tables of a plugin not installed)
    TableDrift d;
    d.table = full;
    d.create_sql = sql.get<std::vector<std::string>>();
    db.exec("DROP TABLE IF EXISTS " + db::quote_ident(kScratch) + "." + db::quote_ident(full));
    create_in(db, kScratch, d.create_sql);
    d.differences = compare(shape_of(db, spec.database, full), shape_of(db, kScratch, full));
    db.exec("DROP TABLE " + db::quote_ident(kScratch) + "." + db::quote_ident(full));
    if (d.differences.empty()) continue;
    std::string what;
    for (auto& x : d.differences) what += (what.empty() ? "" : "; ") + x;
    r.findings.push_back({"local-table-drift", "error",
                          "local-only table " + full + " differs from Moodle's definition at version " + r.db_version +
                              " (HQ's upgrade never reached it: replication ignores its DDL): " + what,
                          "distctl replica profile --apply --db-user root (alters it in place; its rows stay)"});
    r.drifted.push_back(std::move(d));
  }
  db.exec("USE " + db::quote_ident(spec.database));
  return r;
}

std::vector<std::string> repair_local_table_drift(db::SqlConnection& db, const ProfileSpec& spec, const DriftReport& r) {
  std::vector<std::string> ran;
  for (auto& d : r.drifted) {
    db.exec("DROP TABLE IF EXISTS " + db::quote_ident(kScratch) + "." + db::quote_ident(d.table));
    create_in(db, kScratch, d.create_sql);
    db.exec("USE " + db::quote_ident(spec.database));
    auto want = shape_of(db, kScratch, d.table);
    db.exec("DROP TABLE " + db::quote_ident(kScratch) + "." + db::quote_ident(d.table));
    std::string sql = alter_for(db::quote_ident(spec.database) + "." + db::quote_ident(d.table), shape_of(db, spec.database, d.table), want);
    db.exec(sql);
    ran.push_back(sql);
  }
  return ran;
}

}  // namespace distd::replica
