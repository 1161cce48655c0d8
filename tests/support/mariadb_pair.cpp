#include "tests/support/mariadb_pair.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "manifest/error.h"

namespace distd::test {

namespace {

std::string find_program(const std::vector<std::string>& candidates) {
  for (auto& c : candidates) {
    if (c.find('/') != std::string::npos) {
      if (::access(c.c_str(), X_OK) == 0) return c;
      continue;
    }
    for (const char* dir : {"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/sbin", "/bin"}) {
      std::string p = std::string(dir) + "/" + c;
      if (::access(p.c_str(), X_OK) == 0) return p;
    }
  }
  throw std::runtime_error("MariaDB server not found (tried " + candidates.front() +
                           "): install mariadb-server (scripts/setup.sh)");
}

}  // namespace

std::vector<std::string> split_sql(const std::string& script) {
  std::vector<std::string> out;
  std::istringstream in(script);
  std::string cur;
  for (std::string line; std::getline(in, line);) {
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line.compare(b, 2, "--") == 0) continue;
    cur += line + "\n";
    size_t e = line.find_last_not_of(" \t\r");
    if (e != std::string::npos && line[e] == ';') {
      cur.erase(cur.find_last_of(';'));
      out.push_back(cur);
      cur.clear();
    }
  }
  if (cur.find_first_not_of(" \t\r\n") != std::string::npos) out.push_back(cur);
  return out;
}

MariaDbServer::MariaDbServer(const std::string& dir, const std::vector<std::string>& extra_args) : dir_(dir) {
  std::filesystem::create_directories(dir + "/tmp");
  std::string data = dir + "/data";
  std::string install = find_program({"mariadb-install-db", "mysql_install_db"});
  std::string server = find_program({"mariadbd", "mysqld"});
  // Its own tmpdir: bootstraps running side by side (ctest -j) must not share /tmp's temp tables.
  auto r = run({install, "--no-defaults", "--datadir=" + data, "--tmpdir=" + dir + "/tmp",
                "--auth-root-authentication-method=normal",
                "--skip-test-db", "--user=root", "--innodb-log-file-size=8M", "--innodb-buffer-pool-size=16M"},
               {}, {}, 120);
  if (r.status != 0)
    throw std::runtime_error("mariadb-install-db failed (" + std::to_string(r.status) + "): " + r.out + r.err);
  socket_ = dir + "/sock";
  port_ = free_port();
  std::vector<std::string> argv = {server,
                                   "--no-defaults",
                                   "--datadir=" + data,
                                   "--tmpdir=" + dir + "/tmp",
                                   "--port=" + std::to_string(port_),
                                   "--socket=" + socket_,
                                   "--pid-file=" + dir + "/pid",
                                   "--log-error=" + dir + "/error.log",
                                   "--bind-address=127.0.0.1",
                                   "--skip-name-resolve",
                                   "--user=root",
                                   "--innodb-buffer-pool-size=16M",
                                   "--innodb-log-file-size=8M",
                                   "--innodb-flush-log-at-trx-commit=2",
                                   "--sync-binlog=0",
                                   "--performance-schema=OFF",
                                   "--max-connections=50"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  proc_ = std::make_unique<Process>(argv, dir + "/stdout.log");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    try {
      root();
      return;
    } catch (const Error&) {
    }
    if (!proc_->running())
      throw std::runtime_error("mariadbd exited at startup; its log:\n" + error_log());
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("mariadbd did not accept connections within 60 s; its log:\n" + error_log());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

MariaDbServer::~MariaDbServer() {
  if (proc_) proc_->stop(15, 20);
}

std::unique_ptr<db::SqlConnection> MariaDbServer::root(const std::string& database) const {
  db::ConnectParams p;
  p.socket = socket_;
  p.user = "root";
  p.database = database;
  p.connect_timeout_s = 2;
  return std::make_unique<db::SqlConnection>(p);
}

std::unique_ptr<db::SqlConnection> MariaDbServer::connect(const std::string& user, const std::string& password,
                                                               const std::string& database) const {
  db::ConnectParams p;
  p.socket = socket_;  // as user@localhost, like Moodle on the same box
  p.user = user;
  p.password = password;
  p.database = database;
  p.connect_timeout_s = 5;
  return std::make_unique<db::SqlConnection>(p);
}

std::string MariaDbServer::error_log() const {
  std::string p = dir_ + "/error.log";
  return exists(p) ? read_file(p) : std::string("(no error log)");
}

MariaDbPair::MariaDbPair() {
  tmp_ = std::make_unique<TempDir>("mariadb");
  // The primary (HQ) binlogs in ROW format, GTID domain 0. The replica binlogs too (as a real one
  // may), in its own GTID domain so its local writes never look like HQ's.
  primary_ = std::make_unique<MariaDbServer>(
      tmp_->path() + "/primary",
      std::vector<std::string>{"--server-id=1", "--log-bin=primary-bin", "--binlog-format=ROW", "--gtid-strict-mode=1",
                               "--gtid-domain-id=0"});
  replica_ = std::make_unique<MariaDbServer>(
      tmp_->path() + "/replica",
      std::vector<std::string>{"--server-id=2", "--log-bin=replica-bin", "--binlog-format=ROW", "--gtid-strict-mode=1",
                               "--gtid-domain-id=2", "--relay-log=replica-relay", "--skip-slave-start"});
  primary_exec(
      "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-pw';\n"
      "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';\n");
  replica_exec("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=" + std::to_string(primary_->port()) +
               ", MASTER_USER='repl', MASTER_PASSWORD='repl-pw', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;\n"
               "START SLAVE;\n");
  if (!wait_replicated(30))
    throw std::runtime_error("replication did not start; replica log:\n" + replica_->error_log());
}

MariaDbPair::~MariaDbPair() {
  replica_.reset();
  primary_.reset();
}

void MariaDbPair::primary_exec(const std::string& sql, const std::string& database) {
  auto c = primary_->root(database);
  for (auto& s : split_sql(sql)) c->exec(s);
}

void MariaDbPair::replica_exec(const std::string& sql, const std::string& database) {
  auto c = replica_->root(database);
  for (auto& s : split_sql(sql)) c->exec(s);
}

bool MariaDbPair::wait_replicated(double timeout_s) {
  std::string pos = primary_->root()->scalar("SELECT @@GLOBAL.gtid_binlog_pos").value_or("");
  if (pos.empty()) return true;
  auto r = replica_->root();
  auto v = r->scalar("SELECT MASTER_GTID_WAIT('" + pos + "', " + std::to_string(timeout_s) + ")");
  return v && *v == "0";
}

}  // namespace distd::test
