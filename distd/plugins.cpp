#include "distd/plugins.h"

#include <sys/stat.h>

#include <ctime>
#include <mutex>

#include "distd/bundle/hooks.h"
#include "distd/course/course_library.h"
#include "distd/course/course_priority.h"
#include "distd/db/sql_connection.h"
#include "distd/fleet/fleet.h"
#include "distd/fleet/page.h"
#include "distd/forum/channel.h"
#include "distd/forum/inbox.h"
#include "distd/forum/outbox.h"
#include "distd/hq/http_server.h"
#include "distd/regional/daemon.h"
#include "distd/regional/status_report.h"
#include "distd/regional/sync.h"
#include "distd/replica/file_check.h"
#include "distd/replica/health.h"
#include "distd/replica/replica_config.h"
#include "manifest/error.h"

namespace distd {

namespace {

// Files the local database replica already references but the disk lacks come first: each is a
// broken download for a student until it arrives. A replica that cannot be asked costs only the
// ordering, never the sync.
std::vector<std::string> replica_referenced_missing(const Config& cfg, const ChannelConfig& ch) {
  std::vector<std::string> out;
  if (ch.preset != "moodledata") return out;
  try {
    if (!replica::load_replica_config(cfg, false).present) return out;
    for (auto& f : replica::referenced_missing_files(cfg)) out.push_back(f.sha1);
  } catch (const Error&) {
  }
  return out;
}

std::vector<std::string> course_files_first(const Config& cfg, const ChannelConfig& ch) {
  return ch.preset == "moodledata" ? course::course_priority_hashes(cfg) : std::vector<std::string>{};
}

// A broken or writable replica is a warning of the daemon's.
std::vector<std::string> replica_warnings(const Config& cfg) {
  std::vector<std::string> out;
  try {
    if (!replica::load_replica_config(cfg, false).present) return out;
    for (auto& w : replica::replica_health(cfg).warnings) out.push_back("replica: " + w);
  } catch (const Error& e) {
    out.push_back(std::string("replica: cannot check the replica: ") + e.what());
  }
  return out;
}

// Posts that wait too long at the center are the daemon's warning: the link or HQ needs a look.
std::vector<std::string> forum_warnings(const Config& cfg) {
  std::vector<std::string> out;
  forum::ForumSettings fs = forum::ForumSettings::from(cfg);
  struct stat st {};
  if (::stat(fs.outbox.c_str(), &st) != 0) return out;
  forum::Outbox ob(fs.outbox);
  size_t n = ob.count_unanswered();
  auto oldest = ob.unanswered(1);
  if (n > 0 && !oldest.empty() && ::time(nullptr) - oldest.front().created > 6 * 3600)
    out.push_back("forum: " + std::to_string(n) + " posts wait for HQ, the oldest for " +
                  std::to_string((::time(nullptr) - oldest.front().created) / 3600) +
                  " h; they go with the link or the next stick ('distctl post list')");
  return out;
}

// The status report's "replica" section (docs/formats/http.md): the replica's health without the
// profile check, asked with short timeouts so that a replica that is down delays a report by
// seconds, not minutes.
nlohmann::json replica_report(const Config& cfg) {
  try {
    replica::ReplicaConfig rc = replica::load_replica_config(cfg, false);
    if (!rc.present) return {{"configured", false}};
    db::ConnectParams p = rc.conn;
    p.connect_timeout_s = 3;
    p.read_timeout_s = 5;
    db::SqlConnection db(p);
    replica::ReplicaHealth h = replica::replica_health(db, rc, false);
    nlohmann::json w = nlohmann::json::array();
    for (const auto& s : h.warnings)
      if (w.size() < 3) w.push_back(s.substr(0, 300));
    nlohmann::json j = {{"configured", true},
                        {"ok", h.ok()},
                        {"reachable", h.reachable},
                        {"io_running", h.io_running},
                        {"sql_running", h.sql_running},
                        {"seconds_behind", h.seconds_behind ? nlohmann::json(*h.seconds_behind) : nullptr},
                        {"lag_warn_seconds", h.lag_warn_seconds},
                        {"warnings", w}};
    if (!h.error.empty()) j["error"] = h.error.substr(0, 300);
    return j;
  } catch (const std::exception& e) {  // unreachable, or a broken [replica] section
    return {{"configured", true}, {"ok", false}, {"reachable", false}, {"error", std::string(e.what()).substr(0, 300)}};
  }
}

// The status report's "outbox" section: how many forum posts wait for HQ's answer (queued or sent).
nlohmann::json outbox_report(const Config& cfg) {
  forum::ForumSettings fs = forum::ForumSettings::from(cfg);
  struct stat st {};
  if (::stat(fs.outbox.c_str(), &st) != 0) return {{"posts", 0}};
  forum::Outbox ob(fs.outbox);
  return {{"posts", ob.count_unanswered()}};
}

}  // namespace

void register_plugins() {
  static std::once_flag once;
  std::call_once(once, [] {
    after_install_hooks().push_back(course::after_install);
    priority_providers().push_back(replica_referenced_missing);
    priority_providers().push_back(course_files_first);
    health_checks().push_back(replica_warnings);
    health_checks().push_back(forum_warnings);
    // What the center's status report says beyond its channels (HQ's fleet view, docs/hq.md).
    report_sections().push_back({"replica", replica_report});
    report_sections().push_back({"outbox", outbox_report});
    // The forum channel: POST /posts at HQ, and posts and answers on every stick.
    hq::plugin_post_routes().push_back({"/posts", [](const Config& cfg, const std::string&, const std::string& body) {
                                          forum::PostsReply r = forum::handle_posts_request(cfg, body);
                                          return hq::PluginReply{r.status, r.body, "text/plain", {}};
                                        }});
    // The fleet: each center's status report after its syncs (signed by the site), and the
    // Prometheus view of them all.
    hq::plugin_post_routes().push_back(
        {"/report",
         [](const Config& cfg, const std::string& site, const std::string& body) {
           fleet::ReportReply r = fleet::handle_report(cfg, site, body, static_cast<int64_t>(::time(nullptr)));
           return hq::PluginReply{r.status, r.body + "\n", "text/plain", {}};
         },
         true});
    hq::plugin_get_routes().push_back({"/metrics", [](const Config& cfg, const std::string&, const std::string&) {
                                         return hq::PluginReply{200, fleet::render_metrics(cfg, ::time(nullptr)),
                                                                "text/plain; version=0.0.4; charset=utf-8", {}};
                                       }});
    hq::plugin_get_routes().push_back({"/fleet", [](const Config& cfg, const std::string&, const std::string&) {
                                         return hq::PluginReply{200, fleet::render_fleet_page(cfg, ::time(nullptr)),
                                                                fleet::kPageContentType, fleet::page_headers()};
                                       }});
    bundle::request_hooks().push_back(
        [](const Config& cfg, const bundle::HookLogFn& log) { forum::write_sealed_posts(cfg, log); });
    bundle::export_hooks().push_back([](const Config& cfg, const std::string& site, const std::string& inbound,
                                        const std::vector<std::string>& received, const bundle::HookLogFn& log) {
      std::vector<bundle::StickFile> out;
      for (auto& [name, data] : forum::answer_stick_posts(cfg, site, inbound, received, log)) out.push_back({name, data});
      return out;
    });
    bundle::import_hooks().push_back([](const Config& cfg, const std::string& dir, const bundle::HookLogFn& log) {
      return forum::read_sealed_answers(cfg, dir, log);
    });
  });
}

}  // namespace distd
