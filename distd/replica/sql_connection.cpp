#include "distd/replica/sql_connection.h"

#include <mysql.h>

#include "manifest/error.h"

namespace distd::replica {

std::string ConnectParams::describe() const {
  std::string who = (user.empty() ? std::string("(default user)") : user) + "@";
  if (!socket.empty()) return who + socket;
  return who + host + ":" + std::to_string(port);
}

std::optional<std::string> Row::get(std::initializer_list<const char*> columns) const {
  for (const char* c : columns)
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == c) return values[i];
  return std::nullopt;
}

std::string Row::str(std::initializer_list<const char*> columns, const std::string& fallback) const {
  auto v = get(columns);
  return v ? *v : fallback;
}

std::string quote_ident(const std::string& name) {
  std::string out = "`";
  for (char c : name) {
    if (c == '`') out += '`';
    out += c;
  }
  return out + "`";
}

SqlConnection::SqlConnection(const ConnectParams& p) : params_(p) {
  m_ = mysql_init(nullptr);
  if (!m_) throw Error(Errc::internal, "mysql_init failed (out of memory?)");
  unsigned ct = p.connect_timeout_s, rt = p.read_timeout_s;
  mysql_options(m_, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
  mysql_options(m_, MYSQL_OPT_READ_TIMEOUT, &rt);
  mysql_options(m_, MYSQL_OPT_WRITE_TIMEOUT, &rt);
  mysql_options(m_, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  const char* host = p.socket.empty() ? p.host.c_str() : "localhost";
  if (!mysql_real_connect(m_, host, p.user.empty() ? nullptr : p.user.c_str(),
                          p.password.empty() ? nullptr : p.password.c_str(),
                          p.database.empty() ? nullptr : p.database.c_str(),
                          static_cast<unsigned>(p.port), p.socket.empty() ? nullptr : p.socket.c_str(), 0)) {
    last_errno_ = mysql_errno(m_);
    std::string msg = "cannot connect to the replica database " + p.describe() + ": " + mysql_error(m_);
    mysql_close(m_);
    m_ = nullptr;
    throw Error(Errc::database, msg,
                "check that the server runs and the [replica] section of the config (host, port, socket, user, "
                "password_file) is right; see docs/replica.md");
  }
}

SqlConnection::~SqlConnection() {
  if (m_) mysql_close(m_);
}

void SqlConnection::fail(const std::string& sql) {
  last_errno_ = mysql_errno(m_);
  std::string shown = sql.size() > 200 ? sql.substr(0, 200) + "..." : sql;
  throw Error(Errc::database,
              "SQL error " + std::to_string(last_errno_) + " on " + params_.describe() + ": " + mysql_error(m_) +
                  " (statement: " + shown + ")",
              last_errno_ == 1142 || last_errno_ == 1143 || last_errno_ == 1227 || last_errno_ == 1044
                  ? "the database user lacks a privilege for this; see docs/replica.md for the privileges distd needs"
                  : "see the server's error log; docs/replica.md lists what distd runs");
}

void SqlConnection::exec(const std::string& sql) {
  last_errno_ = 0;
  if (mysql_real_query(m_, sql.data(), sql.size()) != 0) fail(sql);
  // Drain any result so the connection stays usable.
  do {
    if (MYSQL_RES* r = mysql_store_result(m_)) mysql_free_result(r);
  } while (mysql_next_result(m_) == 0);
}

static Row make_row(MYSQL_RES* res, MYSQL_ROW row, const std::vector<std::string>& names) {
  Row r;
  r.names = names;
  unsigned long* lens = mysql_fetch_lengths(res);
  for (size_t i = 0; i < names.size(); ++i) {
    if (row[i])
      r.values.emplace_back(std::string(row[i], lens[i]));
    else
      r.values.emplace_back(std::nullopt);
  }
  return r;
}

static std::vector<std::string> column_names(MYSQL_RES* res) {
  std::vector<std::string> names;
  unsigned n = mysql_num_fields(res);
  MYSQL_FIELD* f = mysql_fetch_fields(res);
  for (unsigned i = 0; i < n; ++i) names.emplace_back(f[i].name);
  return names;
}

std::vector<Row> SqlConnection::query(const std::string& sql) {
  std::vector<Row> rows;
  last_errno_ = 0;
  if (mysql_real_query(m_, sql.data(), sql.size()) != 0) fail(sql);
  MYSQL_RES* res = mysql_store_result(m_);
  if (!res) {
    if (mysql_field_count(m_) != 0) fail(sql);
    return rows;
  }
  auto names = column_names(res);
  while (MYSQL_ROW row = mysql_fetch_row(res)) rows.push_back(make_row(res, row, names));
  mysql_free_result(res);
  return rows;
}

void SqlConnection::for_each(const std::string& sql, const std::function<void(const Row&)>& fn) {
  last_errno_ = 0;
  if (mysql_real_query(m_, sql.data(), sql.size()) != 0) fail(sql);
  MYSQL_RES* res = mysql_use_result(m_);
  if (!res) {
    if (mysql_field_count(m_) != 0) fail(sql);
    return;
  }
  auto names = column_names(res);
  try {
    while (MYSQL_ROW row = mysql_fetch_row(res)) fn(make_row(res, row, names));
  } catch (...) {
    mysql_free_result(res);  // fetches the rest of the rows so the connection stays usable
    throw;
  }
  bool err = mysql_errno(m_) != 0;
  mysql_free_result(res);
  if (err) fail(sql);
}

std::optional<std::string> SqlConnection::scalar(const std::string& sql) {
  auto rows = query(sql);
  if (rows.empty() || rows[0].values.empty()) return std::nullopt;
  return rows[0].values[0];
}

std::string SqlConnection::escape(const std::string& s) {
  std::string out(s.size() * 2 + 1, '\0');
  unsigned long n = mysql_real_escape_string(m_, out.data(), s.data(), s.size());
  out.resize(n);
  return out;
}

std::string SqlConnection::server_version() {
  if (!version_) version_ = scalar("SELECT VERSION()").value_or("");
  return *version_;
}

bool SqlConnection::is_mariadb() { return server_version().find("MariaDB") != std::string::npos; }

}  // namespace distd::replica
