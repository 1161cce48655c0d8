// Private to the replica profile (profile.cpp writes it, profile_check.cpp checks it): the SQL
// text of its grants and fixes, and the parsing of the server's lists they are compared with.
#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "distd/db/sql_connection.h"
#include "distd/replica/profile.h"

namespace distd::replica::profile_sql {

// `database` and `database`.`table`, backquoted.
std::string db_q(const ProfileSpec& s);
std::string tbl_q(const ProfileSpec& s, const std::string& t);
// The columns of the user table Moodle updates at login, comma-separated (backquoted if quoted).
std::string column_list(bool quoted);
// The GRANT statements of the profile: a local-only table, the user columns, reading the schema.
std::string grant_local(const ProfileSpec& s, const std::string& t);
std::string grant_columns(const ProfileSpec& s);
std::string grant_read(const ProfileSpec& s);
// SQL LIKE as MySQL applies it to database names in grants: % and _ wildcards, \ escapes.
bool like_match(const std::string& pat, size_t pi, const std::string& s, size_t si);
// The statements that set the replication ignore list to `merged` (MariaDB) or `tables` (MySQL).
std::string mariadb_ignore_fix(const ProfileSpec& s, const std::string& merged);
std::string mysql_ignore_fix(const std::vector<std::string>& tables);
// A server's comma-separated list, without spaces, newlines or backquotes.
std::vector<std::string> split_csv(const std::string& s);
// Entries of a live ignore list that name a table of Moodle's database the profile does not make
// local (left over from an older profile or a removed extra_local_tables entry).
std::vector<std::string> stale_ignore(const std::string& live, const ProfileSpec& s);
// The ignore list the profile wants: the live entries for other databases first (in their order),
// then the profile's local-only tables. Stale entries for Moodle's database are dropped.
std::vector<std::string> merged_ignore(const std::string& live, const ProfileSpec& s);
std::string join(const std::vector<std::string>& v, const char* sep);
// The tables of Moodle's database that distd's account can see on the replica.
std::set<std::string> existing_tables(db::SqlConnection& db, const ProfileSpec& s);

}  // namespace distd::replica::profile_sql
