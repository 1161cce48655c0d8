#include "distd/regional/daemon.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "distd/io/pause.h"
#include "distd/net/http_client.h"
#include "distd/regional/center_metrics.h"
#include "distd/regional/journal.h"
#include "distd/regional/status_report.h"
#include "distd/regional/sync.h"
#include "manifest/encoding.h"
#include "manifest/error.h"

namespace distd {

namespace {

std::string human_seconds(double s) {
  if (s < 120) return std::to_string(static_cast<int>(s)) + "s";
  if (s < 7200) return std::to_string(static_cast<int>(s / 60)) + "m";
  return std::to_string(static_cast<int>(s / 3600)) + "h";
}


// Every health check's warnings go to the journal with its warning priority: said when the set
// changes (not every probe), and once more when all are clear again.
void report_health(const Config& cfg, const std::function<void(const std::string&)>& say,
                   std::vector<std::string>& last) {
  std::vector<std::string> now;
  for (auto& check : health_checks()) {
    try {
      for (auto& w : check(cfg)) now.push_back(w);
    } catch (const std::exception& e) {
      now.push_back(std::string("a health check failed: ") + e.what());
    }
  }
  if (now == last) return;
  for (auto& w : now) say("warning: " + w);
  if (now.empty() && !last.empty()) say(last.front().substr(0, last.front().find(':')) + " healthy again");
  last = std::move(now);
}

}  // namespace

std::vector<HealthCheckFn>& health_checks() {
  static std::vector<HealthCheckFn> checks;  // filled by the mains (distd/plugins.h)
  return checks;
}

int run_regional_daemon(const Config& cfg, const std::atomic<bool>& stop_in, const DaemonStatusFn& status,
                        const std::function<void()>& on_link_up) {
  // Called with stop already set (distd --once): one probe-and-sync pass, then return its status.
  const bool once = stop_in.load();
  std::atomic<bool> never{false};
  const std::atomic<bool>& stop = once ? never : stop_in;
  int once_status = 0;
  cfg.require_role("regional", "the regional daemon runs at a regional center");
  RegionalSettings rs = RegionalSettings::from(cfg);
  (void)center_metrics_path(cfg);  // a metrics_file that is not a string is refused now, not at every pass
  if (cfg.channels.empty())
    throw Error(Errc::usage, "config " + cfg.file + " has no [[channel]]", "add the channels this center receives");
  auto say = [&](const std::string& s) {
    if (status) status(s);
  };
  Backoff backoff(static_cast<double>(rs.probe_min_seconds), static_cast<double>(rs.probe_max_seconds));
  const std::string probe_path = "/channels/" + cfg.channels.front().name + "/latest.manifest";
  std::vector<std::string> last_health_warnings;

  while (!stop.load()) {
    // Probe: a HEAD of the first channel's latest manifest works against distd and plain nginx.
    bool up = false;
    std::string why;
    {
      HttpOptions ho = rs.link_options(&stop);
      try {
        HttpClient http(rs.hq_url, ho);
        long st = http.head(probe_path);
        up = st > 0 && st < 500;
        if (!up) why = "HQ answered " + std::to_string(st);
      } catch (const Error& e) {
        why = e.what();
      }
    }
    if (stop.load()) break;
    try {
      Journal j(journal_path(cfg));
      j.record_link(up, up ? "HQ answered the probe" : why);
    } catch (const Error& e) {
      say(std::string("journal: ") + e.what());
    }

    bool clean = false, deferred = false;
    if (up && on_link_up) on_link_up();
    if (up) {
      say("HQ is reachable; syncing");
      SyncOptions so;
      so.stop = &stop;
      so.log = [&](const std::string& line) { say(line); };
      so.progress = [&, last = std::chrono::steady_clock::time_point{}](const SyncProgress& p) mutable {
        auto now = std::chrono::steady_clock::now();
        if (now - last < std::chrono::seconds(5)) return;
        last = now;
        say("syncing " + p.channel + ": " + human_bytes(p.bytes_done) + " of " + human_bytes(p.bytes_total) + ", " +
            std::to_string(p.files_done) + "/" + std::to_string(p.files_total) + " files");
      };
      try {
        SyncResult res = sync_all(cfg, so);
        clean = true;
        for (auto& c : res.channels) {
          if (!c.ok) {
            clean = false;
            say(c.channel + ": " + c.error);
          } else if (!c.converged) {
            deferred = true;
          }
        }
        if (once) {
          once_status = 0;
          for (auto& c : res.channels)
            if (once_status == 0 && (!c.ok || !c.converged)) once_status = c.ok ? kExitDeferred : exit_status(c.code);
        }
        if (clean)
          say(deferred ? "synced what the time window allows; big files wait for " + rs.big_files_window
                       : "all channels up to date");
      } catch (const Error& e) {
        say(std::string("sync failed: ") + e.what());
        once_status = exit_status(e.code());
      }
      send_status_report(cfg, say);  // best effort: HQ's fleet view (docs/hq.md)
    } else {
      once_status = exit_status(Errc::network);
    }
    report_health(cfg, say, last_health_warnings);
    write_center_metrics(cfg, say);  // best effort: [regional] metrics_file (node-exporter's textfile collector)
    if (once) return once_status;
    if (stop.load()) break;
    double next;
    if (clean) {
      backoff.reset();
      next = static_cast<double>(rs.probe_max_seconds);  // converged: check for new versions now and then
      // With big files waiting, look again soon so the window's opening is not missed.
      if (deferred) next = std::min(next, 300.0);
    } else {
      next = backoff.step();  // with jitter: centers do not all knock at HQ in the same second
      say((up ? std::string("sync incomplete") : "HQ unreachable (" + why + ")") + "; next try in " +
          human_seconds(next));
    }
    if (!sleep_unless_stopped(&stop, next)) break;
  }
  say("stopping");
  return 0;
}

}  // namespace distd
