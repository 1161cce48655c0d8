// HQ's HTTP server (cpp-httplib): the static layout of docs/formats/http.md with Range and
// HEAD, the delta endpoint, /status, and the routes plug-ins add (below). Only the documented
// URL shapes are answered; every path component is validated (channel names, versions, 64-hex
// digests) before it touches the file system, so no request can name a file outside public/.
// Slow and flooding clients are bounded by http_limits.h ([hq] header_timeout, body_min_rate,
// per_peer_connections, max_delta_jobs; docs/hq.md "Limits against slow and flooding clients").
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>
#include <string>

#include "distd/config/config.h"

namespace distd::hq {

struct ListenAddress {
  std::string host;
  int port = 0;
};
// "127.0.0.1:8750", "[::1]:8750", ":8750" (all IPv4 interfaces), "0.0.0.0:80".
// Throws Error{usage} naming the text.
ListenAddress parse_listen(const std::string& text);

// Routes that plug-ins add (the forum's POST /posts, the fleet's POST /report, GET /metrics and /fleet,
// wired by distd/plugins.cpp). A POST handler gets the whole body (at most 64 MiB), a GET one an
// empty body; both return the status and a body; called on a worker thread. A route with
// signed_by_site answers only a request signed by an enrolled site (site_gate.h, even with
// [hq] require_signed_requests = false): its handler gets the verified site, others get "".
struct PluginReply {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain";
  std::vector<std::pair<std::string, std::string>> headers;  // more; a Cache-Control replaces the default
};
using PluginPostHandler =
    std::function<PluginReply(const Config& cfg, const std::string& site, const std::string& body)>;
struct PluginRoute {
  std::string path;  // exact, e.g. "/posts"
  PluginPostHandler handler;
  bool signed_by_site = false;  // POST only
};
// Filled once by register_plugins() before any server starts.
std::vector<PluginRoute>& plugin_post_routes();
std::vector<PluginRoute>& plugin_get_routes();

struct HttpServerOptions {
  unsigned threads = 64;         // worker threads; each open connection holds one ([hq] threads)
  unsigned delta_threads = 1;    // deltas computed at the same time
};

class HttpServer {
 public:
  HttpServer(const Config& cfg, const HttpServerOptions& opts = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds [hq] listen. Throws Error{network} when the address cannot be bound (in use, ...).
  void bind();
  // Serves until stop(). REQUIRES: bind() succeeded.
  void run();
  // Thread-safe; run() returns soon after. A stop() before run() has started listening is
  // lost: call it again until run() returns (or wait for running() first).
  void stop();
  bool running() const;

  const ListenAddress& address() const;
  uint64_t requests() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace distd::hq
