// A real MariaDB primary ("HQ") and replica ("regional center") for tests: private datadirs in a
// TempDir, free loopback ports, GTID replication set up, both servers stopped on destruction.
//
// Needs mariadb-server (mariadbd, mariadb-install-db), installed by scripts/setup.sh. Root has an
// empty password on both servers; sockets and datadirs live only in the temp dir.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "distd/db/sql_connection.h"
#include "tests/support/test_support.h"

namespace distd::test {

class MariaDbServer {
 public:
  // Creates a datadir (mariadb-install-db) under dir and starts mariadbd on a free port.
  // extra_args are more mariadbd options (--server-id=..., --gtid-domain-id=...).
  MariaDbServer(const std::string& dir, const std::vector<std::string>& extra_args);
  ~MariaDbServer();
  int port() const { return port_; }
  const std::string& socket() const { return socket_; }
  const std::string& dir() const { return dir_; }
  // A connection as root over the socket (optionally to a database).
  std::unique_ptr<db::SqlConnection> root(const std::string& database = {}) const;
  // A connection as user/password over the socket (the account's host is 'localhost').
  std::unique_ptr<db::SqlConnection> connect(const std::string& user, const std::string& password,
                                                  const std::string& database = {}) const;
  std::string error_log() const;

 private:
  std::string dir_, socket_;
  int port_ = 0;
  std::unique_ptr<Process> proc_;
};

class MariaDbPair {
 public:
  // Starts both servers under a fresh TempDir and starts GTID replication (slave_pos).
  MariaDbPair();
  ~MariaDbPair();
  MariaDbServer& primary() { return *primary_; }
  MariaDbServer& replica() { return *replica_; }
  const std::string& tmp() const { return tmp_->path(); }

  // Runs SQL statements (split on ";\n") on the primary / replica as root.
  void primary_exec(const std::string& sql, const std::string& database = {});
  void replica_exec(const std::string& sql, const std::string& database = {});
  // Waits until the replica has applied everything the primary has binlogged so far.
  // Returns false on timeout (e.g. SQL thread stopped).
  bool wait_replicated(double timeout_s = 20);

 private:
  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<MariaDbServer> primary_, replica_;
};

// Splits an SQL script into statements on ';' at line ends, dropping '--' comment lines.
std::vector<std::string> split_sql(const std::string& script);

}  // namespace distd::test
