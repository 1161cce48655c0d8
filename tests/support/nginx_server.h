// A private, real nginx for tests: serves a directory read-only on a free loopback port, the
// way HQ's static layout is served in production (docs/formats/http.md). Everything nginx
// writes (pid, error and access logs, temp paths, its config) lives in its own temp dir.
//
//   distd::test::NginxServer web(root);   // root: the directory to serve
//   run({"curl", "-r", "100-", web.url() + "/objects/ab/abcd"});
#pragma once

#include <memory>
#include <string>

#include "tests/support/test_support.h"

namespace distd::test {

struct NginxOptions {
  // Extra directives pasted inside server { } after "location /", e.g. a location with
  // different rules. They get nginx's defaults, not the GET/HEAD-only rule of "location /".
  std::string server_conf;
  // Extra directives inside http { }.
  std::string http_conf;
  // When set: this whole `server { ... }` block instead of the generated one (its listen, root
  // and the rest as written: a block from the docs, with the test's root put in); "@PORT@" in it
  // becomes the free port chosen for nginx.
  std::string server_block;
};

class NginxServer {
 public:
  // Starts /usr/sbin/nginx (daemon off, one worker, sendfile on, Range on static files as nginx
  // does by default) serving root_dir at "/", and waits until it accepts connections. Any
  // method other than GET and HEAD under "/" answers 405 (so POST /deltas gets 405, as a
  // client must expect from a static server). Throws std::runtime_error with nginx's error
  // log when it cannot start.
  explicit NginxServer(const std::string& root_dir, const NginxOptions& opts = {});
  ~NginxServer();
  NginxServer(const NginxServer&) = delete;
  NginxServer& operator=(const NginxServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }  // no trailing '/'
  const std::string& root() const { return root_; }
  const std::string& dir() const { return dir_.path(); }  // nginx's own temp dir
  std::string error_log() const;
  std::string access_log() const;
  int stop();  // SIGTERM (fast shutdown); returns the exit status

 private:
  TempDir dir_{"nginx"};
  std::string root_;
  std::unique_ptr<Process> proc_;
  int port_ = 0;
};

}  // namespace distd::test
