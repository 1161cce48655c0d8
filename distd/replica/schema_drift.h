// Local-only tables after an upgrade at HQ (docs/replica.md, "Upgrades").
//
// replicate_ignore_table filters DDL too: when HQ's Moodle upgrade alters a local-only table, the
// ALTER never reaches the center, and the center's copy keeps its old shape. Everything else is
// upgraded by replication, and the center's Moodle code must be upgraded to HQ's release anyway
// (Moodle refuses to run when its code and its database disagree), so the definition Moodle's own
// code gives for the table (its install.xml, which is what HQ's upgrade steps produce) is HQ's
// definition. distd asks the center's Moodle for it (a read-only PHP script run with replica.php
// in replica.moodle_dir: Moodle's XMLDB generator, the same code its installer uses), creates the
// tables in a scratch database (distd_scratch) and compares columns and indexes with the live
// ones. The repair is one ALTER TABLE per drifted table, in place: its rows, its grants and its
// name stay.
#pragma once

#include <string>
#include <vector>

#include "distd/config/config.h"
#include "distd/replica/profile.h"
#include "distd/replica/replica_config.h"
#include "distd/db/sql_connection.h"

namespace distd::replica {

struct TableDrift {
  std::string table;                     // full name, with prefix
  std::vector<std::string> differences;  // "column value: varchar(1333) NOT NULL DEFAULT '' here, missing in Moodle's definition"
  std::vector<std::string> create_sql;   // Moodle's statements for the table (unqualified name)
};

struct DriftReport {
  bool checked = false;        // false: replica.moodle_dir not set, nothing compared
  std::string db_version;      // mdl_config.version (replicated from HQ)
  std::string code_version;    // $version of the center's Moodle code
  std::vector<TableDrift> drifted;
  std::vector<Finding> findings;  // one per drifted table, plus a version mismatch
};

// Compares every local-only table of spec with Moodle's definition. REQUIRES: db's account may
// create and drop tables in `distd_scratch` (root with --db-user, or GRANT ALL ON distd_scratch.*).
// Throws Error{io} when Moodle's script fails, Error{database} on SQL errors.
DriftReport check_local_table_drift(const Config& cfg, const ReplicaConfig& rc, db::SqlConnection& db,
                                    const ProfileSpec& spec);

// Alters each drifted table to Moodle's definition (columns added, changed or dropped; indexes
// added or dropped) and returns the statements it ran. REQUIRES: an administrator's connection.
std::vector<std::string> repair_local_table_drift(db::SqlConnection& db, const ProfileSpec& spec, const DriftReport& r);

}  // namespace distd::replica
