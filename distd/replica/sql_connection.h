// The database seam for the replica engine: one connection to a MariaDB or MySQL server through
// MariaDB Connector/C (libmariadb). Every failure is a distd::Error{database} naming the server.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

struct st_mysql;

namespace distd::replica {

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

  // Escapes a string for use inside single quotes.
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
  st_mysql* m_ = nullptr;
  ConnectParams params_;
  unsigned last_errno_ = 0;
  std::optional<std::string> version_;
};

// Backquotes an identifier: `name` (doubling any backquote).
std::string quote_ident(const std::string& name);

}  // namespace distd::replica
