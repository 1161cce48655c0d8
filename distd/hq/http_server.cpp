#include "distd/hq/http_server.h"

#include <fcntl.h>
#include <zlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <httplib.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "distd/hq/delta_service.h"
#include "distd/hq/http_limits.h"
#include "distd/hq/layout.h"
#include "distd/hq/manifest_zstd.h"
#include "distd/hq/object_batch.h"
#include "distd/hq/stored_zstd.h"
#include "distd/net/byte_range.h"
#include "distd/hq/publisher.h"
#include "distd/hq/settings.h"
#include "distd/hq/site_gate.h"
#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/fs.h"
#include "manifest/manifest.h"
#include "manifest/request_auth.h"
#include "manifest/version.h"

namespace distd::hq {

namespace {

thread_local std::chrono::steady_clock::time_point request_started;  // of this worker's request (access log)

constexpr size_t kSendChunk = 256 * 1024;  // fewer send() calls: 1 GiB at loopback speed

void send_text(httplib::Response& res, int status, const std::string& text) {
  res.status = status;
  res.set_content(text + "\n", "text/plain; charset=utf-8");
}

int status_for(Errc c) {
  switch (c) {
    case Errc::not_found: return 404;
    case Errc::corrupt:
    case Errc::unsafe_path: return 400;
    case Errc::usage: return 413;
    case Errc::no_space: return 507;
    default: return 500;
  }
}

// gzip (RFC 1952) of bytes in memory with zlib, or nullopt when zlib fails (then the answer goes
// uncompressed).
std::optional<std::string> gzip_bytes(std::string_view in) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return std::nullopt;
  std::string out(deflateBound(&zs, in.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return std::nullopt;
  return out;
}

// Streams a file (or the requested byte range of it) without reading it into memory.
// Handles Range itself (one range; several ranges get the whole file, which RFC 9110 allows).
void serve_file(const httplib::Request& req, httplib::Response& res, const std::string& path,
                const std::string& what, const std::string& cache_control, const std::string& etag = {}) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) return send_text(res, 404, what + " not found");
    return send_text(res, 500, "cannot open " + what);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return send_text(res, 404, what + " not found");
  const uint64_t size = static_cast<uint64_t>(st.st_size);

  uint64_t begin = 0, length = size;
  bool partial = false;
  // httplib parsed the header into req.ranges; we answer it ourselves and clear it so that
  // httplib does not slice the answer a second time.
  auto& ranges = const_cast<httplib::Request&>(req).ranges;
  if (ranges.size() == 1) {
    auto [first, last] = ranges[0];
    auto r = resolve_range(first, last, size);
    if (!r) {
      ranges.clear();
      res.set_header("Content-Range", "bytes */" + std::to_string(size));
      return send_text(res, 416, "range not satisfiable: " + what + " has " + std::to_string(size) + " bytes");
    }
    begin = r->begin;
    length = r->length;
    partial = true;
    res.set_header("Content-Range", "bytes " + std::to_string(begin) + "-" + std::to_string(begin + length - 1) + "/" +
                                        std::to_string(size));
  }
  ranges.clear();
  res.status = partial ? 206 : 200;
  res.set_header("Accept-Ranges", "bytes");
  if (!cache_control.empty()) res.set_header("Cache-Control", cache_control);
  if (!etag.empty()) res.set_header("ETag", "\"" + etag + "\"");
  if (length == 0) {
    res.set_content("", "application/octet-stream");
    return;
  }
  struct Source {
    UniqueFd fd;
    std::vector<char> buf;
  };
  auto src = std::make_shared<Source>();
  src->fd = std::move(fd);
  res.set_content_provider(
      static_cast<size_t>(length), "application/octet-stream",
      [src, begin](size_t offset, size_t len, httplib::DataSink& sink) {
        if (src->buf.empty()) src->buf.resize(kSendChunk);
        size_t want = std::min(len, src->buf.size());
        ssize_t n;
        do {
          n = ::pread(src->fd.get(), src->buf.data(), want, static_cast<off_t>(begin + offset));
        } while (n < 0 && errno == EINTR);
        if (n <= 0) return false;  // truncated under us: abort the connection
        return sink.write(src->buf.data(), static_cast<size_t>(n));
      },
      [src](bool) { src->fd = UniqueFd(); });
}

// Answers POST /channels/<ch>/latest.manifest: the manifest at path as a librsync delta against
// the copy whose signature is the body, gzipped when the client accepts it. 404 when it cannot be read.
void serve_manifest_delta(const httplib::Request& req, httplib::Response& res, const std::string& path) {
  std::string body;
  try {
    body = read_file(path, kMaxManifestBytes, "manifest");
  } catch (const Error& e) {
    return send_text(res, e.code() == Errc::not_found || e.code() == Errc::io ? 404 : 500, "channel not found");
  }
  try {
    std::string delta = delta_of_bytes(req.body, body);
    std::string().swap(body);
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    // The new lines are mostly hex digests: gzip halves them.
    if (req.get_header_value("Accept-Encoding").find("gzip") != std::string::npos) {
      if (auto z = gzip_bytes(delta)) {
        res.set_header("Content-Encoding", "gzip");
        delta = std::move(*z);
      }
    }
    res.set_content(std::move(delta), "application/octet-stream");
  } catch (const Error& e) {
    send_text(res, status_for(e.code()), std::string(e.what()) + (e.hint().empty() ? "" : "; " + e.hint()));
  }
}

}  // namespace

struct HttpServer::Impl {
  Config cfg;
  HqSettings settings;
  HttpServerOptions opts;
  Layout layout;
  ListenAddress addr;
  LimitedServer svr;
  DeltaService deltas;
  JobSlots jobs;
  SiteGate gate;
  std::atomic<uint64_t> requests{0};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  bool bound = false;

  // /status reads each channel's latest manifest only when it changed on disk.
  struct ChannelInfo {
    uint64_t ino = 0, size = 0;
    int64_t mtime_ns = 0;
    nlohmann::json json;
  };
  std::mutex status_mu;
  std::map<std::string, ChannelInfo> status_cache;
  CompressedManifests manifests_z{settings.compression_level};
  ManifestPatches manifest_patches{settings.compression_level};

  Impl(const Config& c, const HttpServerOptions& o)
      : cfg(c), settings(hq_settings(c)), opts(o), layout{c.state_dir}, addr(parse_listen(settings.listen)),
        svr(ConnectionLimits{std::chrono::seconds(settings.header_timeout), settings.per_peer_connections,
                             settings.uncapped_peers, 64 * 1024, settings.body_min_rate,
                             std::chrono::seconds(3 * settings.header_timeout)}),
        deltas(c.state_dir, o.delta_threads, settings.delta_cache_bytes, settings.compression_level), jobs(settings.max_delta_jobs),
        gate(cfg, settings) {}

  // A smart endpoint's request with its body: true when it may be answered (signed by an
  // enrolled site, or signatures not required); otherwise res holds the refusal.
  bool admitted(const httplib::Request& req, httplib::Response& res) {
    if (!gate.enabled()) return true;
    auto no = gate.check(req.get_header_value("Authorization"), req.method, req.target, req.body, now_unix(), nullptr);
    if (!no) return true;
    refuse_unsigned(res, *no);
    return false;
  }
  static void refuse_unsigned(httplib::Response& res, const GateRefusal& no) {
    if (no.status == 401) res.set_header("X-Distd-Time", std::to_string(now_unix()));
    send_text(res, no.status, no.message);
  }
  static int64_t now_unix() { return static_cast<int64_t>(::time(nullptr)); }

  nlohmann::json channel_status(const std::string& name) {
    nlohmann::json j = {{"name", name}};
    const std::string path = layout.latest_manifest(name);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      j["version"] = nullptr;
      return j;
    }
    int64_t mt = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    std::lock_guard<std::mutex> g(status_mu);
    auto& c = status_cache[name];
    if (c.json.is_null() || c.ino != st.st_ino || c.size != static_cast<uint64_t>(st.st_size) || c.mtime_ns != mt) {
      try {
        SignedManifest sm = parse_manifest(read_file(path, kMaxManifestBytes, "manifest"), path);
        const Manifest& m = sm.manifest;
        c.json = {{"name", name},
                  {"version", m.version},
                  {"created", format_utc(m.created)},
                  {"expires", format_utc(m.expires)},
                  {"files", m.entries.size()},
                  {"bytes", m.total_bytes()}};
        c.ino = st.st_ino;
        c.size = static_cast<uint64_t>(st.st_size);
        c.mtime_ns = mt;
      } catch (const Error& e) {
        return {{"name", name}, {"version", nullptr}, {"error", e.what()}};
      }
    }
    return c.json;
  }

  // Registers every route and hook, in the order httplib matches them. REQUIRES: called once,
  // before the server runs.
  void routes() {
    channel_routes();
    key_routes();
    object_routes();
    delta_routes();
    plugin_routes();
    plugin_gets();
    status_route();
    limit_hooks();
    error_and_log_hooks();
  }

  // POST /channels/<ch>/latest.manifest with "distd-basis <version> <digest>\n" (the center's copy
  // of a version): the latest as a zstd patch from it (Content-Encoding: distd-patch), else whole
  // as one zstd frame (Content-Encoding: zstd), else the file.
  void serve_manifest_patch(const httplib::Request& req, httplib::Response& res, const std::string& ch) {
    const std::string latest = layout.latest_manifest(ch);
    std::istringstream in(req.body.substr(0, 200));
    std::string word, version, digest;
    in >> word >> version >> digest;
    const auto v = parse_u64(version);
    if (!v || *v == 0 || digest.size() != 64 || digest.find_first_not_of("0123456789abcdef") != std::string::npos)
      return send_text(res, 400, "the body is not 'distd-basis <version> <64 hex digest>'");
    res.set_header("Cache-Control", "no-cache");
    if (req.get_header_value("Accept-Encoding").find("distd-patch") != std::string::npos)
      if (auto z = manifest_patches.get(latest, layout.manifest(ch, *v), digest)) {
        res.status = 200;
        res.set_header("Content-Encoding", "distd-patch");
        return res.set_content(*z, "application/octet-stream");
      }
    if (req.get_header_value("Accept-Encoding").find("zstd") != std::string::npos)
      if (auto z = manifests_z.get(latest)) {
        res.status = 200;
        res.set_header("Content-Encoding", "zstd");
        return res.set_content(*z, "application/octet-stream");
      }
    serve_file(req, res, latest, "channel", "no-cache");
  }

  // GET and POST /channels/<ch>/latest.manifest, GET /channels/<ch>/manifests/<version>.manifest.
  void channel_routes() {
    const std::string ch = "([A-Za-z0-9_-]{1,128})";
    svr.Get("/channels/" + ch + R"(/latest\.manifest)", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string path = layout.latest_manifest(req.matches[1]);
      if (!req.has_header("Range") && req.get_header_value("Accept-Encoding").find("zstd") != std::string::npos)
        if (auto z = manifests_z.get(path)) {  // compressed once per version (manifest_zstd.h)
          res.status = 200;
          res.set_header("Cache-Control", "no-cache");
          res.set_header("Content-Encoding", "zstd");
          return res.set_content(*z, "application/octet-stream");
        }
      serve_file(req, res, path, "channel", "no-cache");
    });
    // The latest manifest as a librsync delta against the client's copy of an older one (the
    // body is that copy's signature): a center that has a manifest fetches a few KiB instead of
    // the whole list again. Plain web servers answer 405 and the client GETs the file instead.
    svr.Post("/channels/" + ch + R"(/latest\.manifest)", [this](const httplib::Request& req, httplib::Response& res) {
      if (!admitted(req, res)) return;
      if (req.body.rfind("distd-basis ", 0) == 0) return serve_manifest_patch(req, res, req.matches[1]);
      serve_manifest_delta(req, res, layout.latest_manifest(req.matches[1]));
    });
    svr.Get("/channels/" + ch + R"(/manifests/([1-9][0-9]{0,18})\.manifest)",
            [this](const httplib::Request& req, httplib::Response& res) {
              auto v = parse_u64(std::string(req.matches[2]));
              if (!v) return send_text(res, 404, "version not found");
              serve_file(req, res, layout.manifest(req.matches[1], *v), "manifest version",
                         "public, max-age=31536000, immutable");
            });
  }

  // GET /keys/<N>.keys: HQ's signing-key records (docs/formats/keys.md); 404 = no such rotation.
  void key_routes() {
    svr.Get(R"(/keys/([1-9][0-9]{0,18})\.keys)", [this](const httplib::Request& req, httplib::Response& res) {
      auto v = parse_u64(std::string(req.matches[1]));
      if (!v) return send_text(res, 404, "key record not found");
      serve_file(req, res, layout.key_record(*v), "key record", "no-cache");
    });
  }

  // GET /objects/<xx>/<digest> and POST /objects (a batch).
  void object_routes() {
    // <hex>.zst: the object's stored compressed form (docs/formats/compression.md), 404 when none.
    svr.Get(R"(/objects/([0-9a-f]{2})/([0-9a-f]{64})(\.zst)?)", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string hex = req.matches[2];
      const bool form = req.matches[3].length() > 0;
      if (hex.compare(0, 2, std::string(req.matches[1])) != 0) return send_text(res, 404, "object not found");
      auto d = parse_digest_hex(hex);
      if (!d) return send_text(res, 404, "object not found");
      serve_file(req, res, form ? zstd_form(layout.object(*d)) : layout.object(*d), "object",
                 "public, max-age=31536000, immutable", form ? hex + ".zst" : hex);
    });
    // Many objects in one answer: the body lists raw 32-byte digests, the answer is their bytes
    // concatenated in that order (the client knows every size from the signed manifest), so
    // small files cost no request and header each. Plain web servers answer 405; the client then
    // GETs each object.
    svr.Post("/objects", [this](const httplib::Request& req, httplib::Response& res) {
      if (admitted(req, res)) serve_object_batch(req, res, layout, settings.batch_compression_level, settings.compression_level > 0);
    });
  }

  // GET /deltas/<id> and POST /deltas?target=<digest> (computes or reuses a delta).
  void delta_routes() {
    svr.Get(R"(/deltas/([0-9a-f]{64})(\.zst)?)", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string id = req.matches[1];
      const bool form = req.matches[2].length() > 0;
      serve_file(req, res, form ? zstd_form(layout.delta(id)) : layout.delta(id), "delta",
                 "public, max-age=31536000, immutable", form ? id + ".zst" : id);
    });
    svr.Post("/deltas", [this](const httplib::Request& req, httplib::Response& res) {
      if (!admitted(req, res)) return;
      const std::string target = req.get_param_value("target");
      auto d = is_hex64(target) ? parse_digest_hex(target) : std::nullopt;
      if (!d) return send_text(res, 400, "POST /deltas needs ?target=<64 lower-case hex digits>");
      try {
        DeltaInfo info = deltas.get_or_compute(*d, req.body);
        if (info.outcome == DeltaOutcome::not_smaller)
          return send_text(res, 422, "a delta to object " + target.substr(0, 16) +
                                         "... from this basis is not clearly smaller than the object (delta and "
                                         "signature over 90% of its " + std::to_string(info.target_size) +
                                         " bytes, or of its stored zstd form): nothing is stored; fetch the object whole");
        if (info.outcome == DeltaOutcome::no_room)
          return send_text(res, 507, "the delta to object " + target.substr(0, 16) + "... (" +
                                         std::to_string(info.size) + " bytes) is larger than HQ's delta cache ([hq] "
                                         "delta_cache_bytes = " + std::to_string(deltas.cache().quota()) +
                                         "); fetch the object whole");
        nlohmann::json j = {{"id", info.id}, {"size", info.size}, {"target", target}, {"target_size", info.target_size}};
        if (info.zsize) j["zsize"] = info.zsize;
        res.status = 200;
        res.set_content(j.dump() + "\n", "application/json");
        std::fprintf(stderr, "distd: delta %s for %s: %s bytes for a %s-byte target (%s)\n", info.id.substr(0, 16).c_str(),
                     target.substr(0, 16).c_str(), std::to_string(info.size).c_str(),
                     std::to_string(info.target_size).c_str(), info.computed ? "computed" : "reused");
      } catch (const Error& e) {
        send_text(res, status_for(e.code()), std::string(e.what()) + (e.hint().empty() ? "" : "; " + e.hint()));
      }
    });
  }

  // Before a request's body is read: refuses what its headers already condemn (refuse_body), and
  // gives each POST /deltas and manifest-delta POST one of [hq] max_delta_jobs slots (one per
  // client address), held until its answer is about to be written, or 503 when none is free.
  // Either refusal closes the connection.
  void limit_hooks() {
    using HR = httplib::Server::HandlerResponse;
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      request_started = std::chrono::steady_clock::now();
      const uint64_t limit = req.path == "/objects" ? kMaxBatchObjects * 32 : kMaxSignatureBytes;
      if (auto no = refuse_body(req, limit)) {
        send_text(res, no->status, no->message);
        LimitedServer::close_after_answer(res);
        return HR::Handled;
      }
      const bool delta_job = req.method == "POST" && (req.path == "/deltas" || (req.path.rfind("/channels/", 0) == 0 &&
                                                                               req.path.size() > 16 &&
                                                                               req.path.ends_with("/latest.manifest")));
      const bool gated = req.method == "POST" && (req.path == "/objects" || req.path == "/report");
      if (gate.enabled() && (delta_job || gated)) {
        if (auto no = gate.precheck(req.get_header_value("Authorization"), now_unix())) {
          refuse_unsigned(res, *no);  // before the body is read, so an unknown peer costs no memory
          LimitedServer::close_after_answer(res);
          return HR::Handled;
        }
      }
      if (!delta_job) return HR::Unhandled;
      // One slot per enrolled site when requests are signed (behind nginx every center comes
      // from 127.0.0.1), else per address.
      auto who = gate.enabled() ? parse_request_credentials(req.get_header_value("Authorization")) : std::nullopt;
      auto slot = jobs.try_acquire(who ? "site " + who->site : req.remote_addr);
      if (!slot) {
        res.set_header("Retry-After", "5");
        send_text(res, 503, "HQ is busy with " + std::to_string(jobs.in_use()) +
                                " delta requests ([hq] max_delta_jobs, one per site or client address); try again in a few seconds");
        LimitedServer::close_after_answer(res);
        return HR::Handled;
      }
      LimitedServer::hold_until_answered(std::move(slot));
      return HR::Unhandled;
    });
    svr.set_post_routing_handler([](const httplib::Request&, httplib::Response&) { LimitedServer::release_held(); });
  }

  // The POST routes plug-ins registered in plugin_post_routes(); their answers are never cached.
  void plugin_routes() {
    for (const auto& route : plugin_post_routes()) {
      svr.Post(route.path, [this, route](const httplib::Request& req, httplib::Response& res) {
        try {
          std::string site;  // a route that needs its site checks the signature, required or not
          if (route.signed_by_site)
            if (auto no = gate.check(req.get_header_value("Authorization"), req.method, req.target, req.body,
                                     now_unix(), &site))
              return refuse_unsigned(res, *no);
          PluginReply r = route.handler(cfg, site, req.body);
          res.status = r.status;
          res.set_header("Cache-Control", "no-store");
          res.set_content(r.body, r.content_type);
        } catch (const Error& e) {
          send_text(res, status_for(e.code()), std::string(e.what()) + (e.hint().empty() ? "" : "; " + e.hint()));
        }
      });
    }
  }

  // The GET routes plug-ins registered (the fleet's /metrics): public, like /status.
  void plugin_gets() {
    for (const auto& route : plugin_get_routes())
      svr.Get(route.path, [this, route](const httplib::Request&, httplib::Response& res) {
        PluginReply r = route.handler(cfg, "", "");
        res.status = r.status;
        bool cache_set = false;
        for (const auto& [name, value] : r.headers) {
          res.set_header(name, value);
          cache_set = cache_set || name == "Cache-Control";
        }
        if (!cache_set) res.set_header("Cache-Control", "no-cache");
        res.set_content(r.body, r.content_type);
      });
  }

  // GET /status: role, uptime, request count, each channel's latest version, delta counts (JSON).
  void status_route() {
    svr.Get("/status", [this](const httplib::Request&, httplib::Response& res) {
      nlohmann::json chans = nlohmann::json::array();
      for (const auto& c : cfg.channels) chans.push_back(channel_status(c.name));
      auto up = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count();
      nlohmann::json j = {{"role", "hq"},
                          {"site", cfg.site},
                          {"server", std::string("distd ") + distd_version()},
                          {"uptime_seconds", up},
                          {"requests", requests.load()},
                          {"channels", chans},
                          {"deltas",
                           {{"computed", deltas.computed()},
                            {"reused", deltas.reused()},
                            {"declined", deltas.declined()},
                            {"cache_bytes", deltas.cache().bytes()},
                            {"evicted", deltas.cache().evicted()}}},
                          {"limits",
                           {{"connections_refused", svr.refused_connections()},
                            {"deadline_cuts", svr.deadline_cuts()},
                            {"delta_jobs", jobs.in_use()},
                            {"unsigned_refused", gate.refused()}}}};
      res.set_header("Cache-Control", "no-cache");
      res.set_content(j.dump() + "\n", "application/json");
    });
  }

  // A handler's exception becomes a 500 logged to stderr; every request is counted, and answers
  // of 400 and above (but 404 and 416) are logged.
  void error_and_log_hooks() {
    svr.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown";
      try {
        if (ep) std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      std::fprintf(stderr, "distd: internal error serving %s %s: %s\n", req.method.c_str(), req.path.c_str(),
                   what.c_str());
      send_text(res, 500, "internal error");
    });
    // One line per request (journald adds the time), with [hq] access_log; else only failures.
    svr.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      ++requests;
      const bool failure = res.status >= 400 && res.status != 404 && res.status != 416;
      if (!settings.access_log && !failure) return;
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                      request_started).count();
      auto who = parse_request_credentials(req.get_header_value("Authorization"));
      const std::string target = req.target.empty() ? req.path : req.target;
      std::fprintf(stderr, "distd: %s%s%s \"%s %.300s\" %d %zu B %lld ms\n", req.remote_addr.c_str(),
                   who ? " site=" : "", who ? who->site.c_str() : "", req.method.c_str(), target.c_str(),
                   res.status, res.content_length_ ? res.content_length_ : res.body.size(),
                   static_cast<long long>(ms));
    });
  }
};

std::vector<PluginRoute>& plugin_post_routes() {
  static std::vector<PluginRoute> routes;
  return routes;
}
std::vector<PluginRoute>& plugin_get_routes() {
  static std::vector<PluginRoute> routes;
  return routes;
}

HttpServer::HttpServer(const Config& cfg, const HttpServerOptions& opts) : impl_(std::make_unique<Impl>(cfg, opts)) {
  auto& s = impl_->svr;
  unsigned n = opts.threads ? opts.threads : 64;
  s.new_task_queue = [n] { return new httplib::ThreadPool(n); };
  s.set_payload_max_length(static_cast<size_t>(kMaxSignatureBytes));
  s.set_keep_alive_max_count(1000);
  s.set_keep_alive_timeout(5);
  s.set_read_timeout(60, 0);   // per receive: a slow link may send a signature for hours
  s.set_write_timeout(60, 0);
  s.set_tcp_nodelay(true);
  // httplib's default also sets SO_REUSEPORT, which lets a second distd bind the same port
  // and take half the connections; SO_REUSEADDR alone still allows a quick restart.
  s.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  impl_->routes();
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::bind() {
  auto& a = impl_->addr;
  if (!impl_->svr.bind_to_port(a.host, a.port))
    throw Error(Errc::network,
                "cannot listen on " + a.host + ":" + std::to_string(a.port) + " (address in use or not available)",
                "stop whatever uses that port, or set [hq] listen = \"HOST:PORT\" in " + impl_->cfg.file);
  (void)impl_->svr.widen_backlog(1024);  // best effort: httplib's 5 still works, only slower under load
  impl_->bound = true;
}

void HttpServer::run() {
  if (!impl_->bound) bind();
  impl_->svr.listen_after_bind();
}

void HttpServer::stop() { impl_->svr.stop(); }

bool HttpServer::running() const { return impl_->svr.is_running(); }

const ListenAddress& HttpServer::address() const { return impl_->addr; }

uint64_t HttpServer::requests() const { return impl_->requests.load(); }

}  // namespace distd::hq
