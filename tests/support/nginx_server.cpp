#include "tests/support/nginx_server.h"

#include <unistd.h>

#include <filesystem>
#include <stdexcept>

namespace distd::test {

namespace {

std::string config(const std::string& dir, const std::string& root, int port, const NginxOptions& o) {
  std::string c;
  // As root the workers would otherwise switch to "nobody", who cannot read a 0700 temp dir.
  if (::geteuid() == 0) c += "user root;\n";
  c += "worker_processes 1;\n";
  c += "pid " + dir + "/nginx.pid;\n";
  c += "error_log " + dir + "/error.log notice;\n";
  c += "events { worker_connections 512; }\n";
  c += "http {\n";
  c += "  default_type application/octet-stream;\n";
  c += "  sendfile on;\n";
  c += "  tcp_nopush on;\n";
  c += "  keepalive_timeout 30;\n";
  c += "  access_log " + dir + "/access.log;\n";
  for (const char* t : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"})
    c += std::string("  ") + t + "_temp_path " + dir + "/tmp/" + t + ";\n";
  c += o.http_conf + "\n";
  if (!o.server_block.empty()) {
    std::string block = o.server_block;
    for (size_t at; (at = block.find("@PORT@")) != std::string::npos;) block.replace(at, 6, std::to_string(port));
    return c + block + "\n}\n";
  }
  c += "  server {\n";
  c += "    listen 127.0.0.1:" + std::to_string(port) + ";\n";
  c += "    server_name localhost;\n";
  c += "    root " + root + ";\n";
  c += "    location / {\n";
  c += "      if ($request_method !~ ^(GET|HEAD)$) { return 405; }\n";
  c += "    }\n";
  c += o.server_conf + "\n";
  c += "  }\n";
  c += "}\n";
  return c;
}

}  // namespace

NginxServer::NginxServer(const std::string& root_dir, const NginxOptions& opts)
    : root_(std::filesystem::absolute(root_dir).lexically_normal().string()) {
  if (!std::filesystem::is_directory(root_))
    throw std::runtime_error("NginxServer: root " + root_ + " is not a directory");
  const std::string nginx = "/usr/sbin/nginx";
  if (::access(nginx.c_str(), X_OK) != 0)
    throw std::runtime_error("NginxServer: " + nginx + " not found (apt-get install nginx-light or nginx)");
  std::filesystem::create_directories(dir_ / "tmp");
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    std::filesystem::remove(dir_ / "nginx.pid");
    write_file(dir_ / "nginx.conf", config(dir_.path(), root_, port_, opts));
    proc_ = std::make_unique<Process>(
        std::vector<std::string>{nginx, "-p", dir_.path() + "/", "-e", dir_ / "error.log", "-c", dir_ / "nginx.conf",
                                 "-g", "daemon off;"},
        dir_ / "stderr.log");
    bool up = false;
    for (int i = 0; i < 200 && proc_->running(); ++i) {
      // The pid file appears once the master has bound its sockets and is about to serve.
      if (exists(dir_ / "nginx.pid") && wait_for_port(port_, 0.05)) {
        up = true;
        break;
      }
      ::usleep(25'000);
    }
    if (up) return;
    proc_->stop();  // most likely the port was taken between free_port() and bind(): retry
  }
  throw std::runtime_error("nginx did not start; error log:\n" + error_log() + proc_->log());
}

NginxServer::~NginxServer() = default;

std::string NginxServer::error_log() const {
  std::string p = dir_ / "error.log";
  return exists(p) ? read_file(p) : std::string();
}

std::string NginxServer::access_log() const {
  std::string p = dir_ / "access.log";
  return exists(p) ? read_file(p) : std::string();
}

int NginxServer::stop() { return proc_->stop(); }

}  // namespace distd::test
