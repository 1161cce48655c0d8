#include "distd/db/sql_connection.h"

#include <mysql.h>

#include "manifest/error.h"

namespace distd::db {

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

void SqlConnection::fail(const std::string& sql) { fail(sql, mysql_errno(m_), mysql_error(m_)); }

void SqlConnection::fail(const std::string& sql, unsigned err, const char* message) {
  last_errno_ = err;
  std::string shown = sql.size() > 200 ? sql.substr(0, 200) + "..." : sql;
  throw Error(Errc::database,
              "SQL error " + std::to_string(last_errno_) + " on " + params_.describe() + ": " + message +
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

namespace {

// Closes a prepared statement on every way out (it discards any rows not fetched).
struct StmtCloser {
  MYSQL_STMT* st;
  ~StmtCloser() { mysql_stmt_close(st); }
};

}  // namespace

void SqlConnection::for_each_bound(const std::string& sql, const std::vector<std::string>& params,
                                   const std::function<void(const Row&)>& fn) {
  last_errno_ = 0;
  MYSQL_STMT* st = mysql_stmt_init(m_);
  if (!st) fail(sql);
  StmtCloser closer{st};
  auto stmt_fail = [&] { fail(sql, mysql_stmt_errno(st), mysql_stmt_error(st)); };
  if (mysql_stmt_prepare(st, sql.data(), sql.size()) != 0) stmt_fail();
  if (mysql_stmt_param_count(st) != params.size())
    throw Error(Errc::internal, "statement has " + std::to_string(mysql_stmt_param_count(st)) + " placeholders but " +
                                    std::to_string(params.size()) + " values were given: " + sql);
  std::vector<MYSQL_BIND> in(params.size());
  std::vector<unsigned long> in_len(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    in[i] = MYSQL_BIND{};
    in[i].buffer_type = MYSQL_TYPE_STRING;
    in[i].buffer = const_cast<char*>(params[i].data());
    in[i].buffer_length = in_len[i] = params[i].size();
    in[i].length = &in_len[i];
  }
  if (!params.empty() && mysql_stmt_bind_param(st, in.data()) != 0) stmt_fail();
  if (mysql_stmt_execute(st) != 0) stmt_fail();
  MYSQL_RES* meta = mysql_stmt_result_metadata(st);
  if (!meta) return;  // a statement without a result set
  const std::vector<std::string> names = column_names(meta);
  mysql_free_result(meta);

  // Every column is fetched as text into a buffer that grows when a value does not fit.
  const size_t n = names.size();
  std::vector<MYSQL_BIND> out(n);
  std::vector<std::string> buf(n, std::string(256, '\0'));
  std::vector<unsigned long> len(n);
  std::vector<my_bool> is_null(n), truncated(n);
  for (size_t i = 0; i < n; ++i) {
    out[i] = MYSQL_BIND{};
    out[i].buffer_type = MYSQL_TYPE_STRING;
    out[i].buffer = buf[i].data();
    out[i].buffer_length = buf[i].size();
    out[i].length = &len[i];
    out[i].is_null = &is_null[i];
    out[i].error = &truncated[i];
  }
  if (mysql_stmt_bind_result(st, out.data()) != 0) stmt_fail();
  for (;;) {
    int rc = mysql_stmt_fetch(st);
    if (rc == MYSQL_NO_DATA) break;
    if (rc == 1) stmt_fail();
    Row r;
    r.names = names;
    for (size_t i = 0; i < n; ++i) {
      if (is_null[i]) {
        r.values.emplace_back(std::nullopt);
      } else if (len[i] > buf[i].size()) {
        std::string whole(len[i], '\0');
        MYSQL_BIND b{};
        b.buffer_type = MYSQL_TYPE_STRING;
        b.buffer = whole.data();
        b.buffer_length = whole.size();
        if (mysql_stmt_fetch_column(st, &b, static_cast<unsigned>(i), 0) != 0) stmt_fail();
        r.values.emplace_back(std::move(whole));
      } else {
        r.values.emplace_back(buf[i].substr(0, len[i]));
      }
    }
    fn(r);
  }
}

std::vector<Row> SqlConnection::query_bound(const std::string& sql, const std::vector<std::string>& params) {
  std::vector<Row> rows;
  for_each_bound(sql, params, [&](const Row& r) { rows.push_back(r); });
  return rows;
}

std::optional<std::string> SqlConnection::scalar_bound(const std::string& sql, const std::vector<std::string>& params) {
  auto rows = query_bound(sql, params);
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

}  // namespace distd::db
