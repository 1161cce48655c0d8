// The database seam: one connection to a MariaDB or MySQL server through MariaDB Connector/C
// (libmariadb), used by the replica engine (the center's replica) and the course engine (HQ's Moodle
// database). Every failure is a distd::Error{database} naming the server.
//
// Values go into statements as bound parameters (`?` placeholders, the *_bound calls), never spliced
// into the text. Statements that cannot take parameters (SET GLOBAL of a list, account DDL such as
// CREATE USER and GRANT) quote with quote(), which escapes for the connection's character set.
// Not safe for concurrent use: one connection per thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

struct st_mysql;

namespace distd::db {

// Where and as whom to connect. An empty socket means TCP to host:port.
struct ConnectParams {
  std::string host = "localhost";
  int port = 3306;
  std::string socket;
  std::string user;
  std::string password;
  std::string database;  // default schema, may be empty
  unsigned connect_timeout_s = 10;
  unsigned read_timeout_s = 60;
  // "user@host:port" or "user@socket" for messages.
  std::string describe() const;
};

// A row: one optional string per column (nullopt for SQL NULL).
struct Row {
  std::vector<std::string> names;  // shared column names (copied per row for simplicity)
  std::vector<std::optional<std::string>> values;
  // Value of the first of `columns` that exists in this row; nullopt when none exists or NULL.
  std::optional<std::string> get(std::initializer_list<const char*> columns) const;
  std::string str(std::initializer_list<const char*> columns, const std::string& fallback = {}) const;
};

class SqlConnection {
 public:
  // Connects or throws Error{database} with the server's message and a hint.
  explicit SqlConnection(const ConnectParams& p);
  ~SqlConnection();
  SqlConnection(const SqlConnection&) = delete;
  SqlConnection& operator=(const SqlConnection&) = delete;

  // Runs a statement that returns no rows. Throws Error{database} naming the statement.
  void exec(const std::string& sql);
  // Runs a query and returns all of its rows.
  std::vector<Row> query(const std::string& sql);
  // Runs a query and calls fn for each row as it streams from the server (constant memory).
  void for_each(const std::string& sql, const std::function<void(const Row&)>& fn);
  // The first column of the first row, or nullopt (no row / NULL).
  std::optional<std::string> scalar(const std::string& sql);

  // The same, as a prepared statement: each `?` in sql takes the next of params, bound as a string
  // (the server converts it to the column's type). Throws Error{internal} when the counts differ.
  std::vector<Row> query_bound(const std::string& sql, const std::vector<std::string>& params);
  void for_each_bound(const std::string& sql, const std::vector<std::string>& params,
                      const std::function<void(const Row&)>& fn);
  std::optional<std::string> scalar_bound(const std::string& sql, const std::vector<std::string>& params);

  // Escapes a string for use inside single quotes, for the statements that cannot bind (see above).
  std::string escape(const std::string& s);
  // 'quoted' string literal.
  std::string quote(const std::string& s) { return "'" + escape(s) + "'"; }

  unsigned last_errno() const { return last_errno_; }
  const ConnectParams& params() const { return params_; }
  // True for MariaDB, false for MySQL (from the server's version string).
  bool is_mariadb();
  std::string server_version();

 private:
  [[noreturn]] void fail(const std::string& sql);
  [[noreturn]] void fail(const std::string& sql, unsigned err, const char* message);
  st_mysql* m_ = nullptr;
  ConnectParams params_;
  unsigned last_errno_ = 0;
  std::optional<std::string> version_;
};

// Backquotes an identifier: `name` (doubling any backquote).
std::string quote_ident(const std::string& name);

}  // namespace distd::db
