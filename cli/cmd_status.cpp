// distctl status: what a regional center has installed, what is pending, and how the link was.
#include <sys/stat.h>

#include <cstdio>
#include <ctime>

#include "cli/command.h"
#include "cli/json_out.h"
#include "distd/config/config.h"
#include "distd/regional/center_metrics.h"
#include "distd/regional/journal.h"
#include "distd/regional/status_report.h"
#include "distd/regional/sync.h"
#include "distd/replica/file_check.h"
#include "distd/replica/health.h"
#include "distd/replica/replica_config.h"
#include "manifest/encoding.h"
#include "manifest/error.h"

namespace distd::cli {
namespace {

constexpr int kStatusNotConverged = 75;  // EX_TEMPFAIL, as sync's "big files wait"

// The local database replica, when [replica] is configured: health, and the files its
// mdl_files references that the disk still lacks. Returns its lines for the text summary.
std::string replica_section(const Config& cfg, nlohmann::json& out) {
  std::string replica_text;
  if (replica::load_replica_config(cfg, false).present) {
    replica::ReplicaHealth h = replica::replica_health(cfg);
    out["replica"] = replica::to_json(h);
    replica_text = replica::health_summary(h);
    try {
      replica::FileCheckReport fc = replica::check_files(cfg, false);
      out["replica"]["referenced_missing_files"] = fc.missing.size();
      out["replica"]["referenced_missing_bytes"] = fc.missing_bytes;
      replica_text += "\n  files the database references but the disk lacks: " + std::to_string(fc.missing.size()) +
                      " (" + human_bytes(fc.missing_bytes) + "); they are fetched first";
    } catch (const Error& e) {
      out["replica"]["referenced_missing_error"] = e.what();
      replica_text += std::string("\n  cannot check referenced files: ") + e.what();
    }
  }
  return replica_text;
}

void print_text(const nlohmann::json& out, const std::string& site, bool have_journal,
                const std::string& replica_text) {
  std::printf("site %s%s\n", site.c_str(), have_journal ? "" : " (never synced)");
  for (auto& c : out["channels"]) {
    std::printf("\nchannel %s -> %s\n", c["channel"].get<std::string>().c_str(), c["path"].get<std::string>().c_str());
    uint64_t inst = c["installed_version"], latest = c["latest_known_version"];
    std::printf("  installed version   %s\n", inst ? std::to_string(inst).c_str() : "none");
    std::printf("  HQ's latest known   %s\n", latest ? std::to_string(latest).c_str() : "unknown");
    std::printf("  pending             %llu files, %s\n",
                static_cast<unsigned long long>(c["pending_files"].get<uint64_t>()),
                human_bytes(c["pending_bytes"].get<uint64_t>()).c_str());
    auto s = [](const nlohmann::json& v) { return v.is_null() ? std::string("never") : v.get<std::string>(); };
    std::printf("  last success        %s\n", s(c["last_success"]).c_str());
    for (const auto& w : c["warnings"]) std::printf("  WARNING             %s\n", w.get<std::string>().c_str());
    if (!c["last_error"].is_null())
      std::printf("  last error          %s: %s\n", s(c["last_error_time"]).c_str(),
                  c["last_error"].get<std::string>().c_str());
    for (auto& it : c["unfinished"]) {
      const uint64_t offset = it["offset"], attempts = it["attempts"];
      std::string at = offset ? ", at " + human_bytes(offset) : "";
      if (attempts) at += ", " + std::to_string(attempts) + (attempts == 1 ? " attempt" : " attempts");
      const std::string err = it["last_error"];
      std::printf("    %-9s %-6s %s (%s%s)%s\n", it["state"].get<std::string>().c_str(),
                  it["action"].get<std::string>().c_str(), it["path"].get<std::string>().c_str(),
                  human_bytes(it["size"].get<uint64_t>()).c_str(), at.c_str(), err.empty() ? "" : (": " + err).c_str());
    }
  }
  std::printf("\nlink to HQ (newest first)\n");
  if (out["link"].empty()) std::printf("  no probes recorded yet\n");
  for (auto& ev : out["link"])
    std::printf("  %s  %-4s %s\n", ev["time"].get<std::string>().c_str(), ev["up"].get<bool>() ? "up" : "down",
                ev["detail"].get<std::string>().c_str());
  if (!replica_text.empty()) std::printf("\nreplica\n%s\n", replica_text.c_str());
}

// The exit status (docs/cli.md): 75 when a channel is not converged (nothing installed, files
// pending, HQ offered a newer version, or its last sync failed), else 1 when anything warns
// (a stale or expiring manifest, the replica), else 0.
int verdict(const nlohmann::json& out) {
  bool warn = out.contains("replica") && out["replica"].value("warnings", nlohmann::json::array()).size() > 0;
  for (const auto& c : out["channels"]) {
    const uint64_t inst = c["installed_version"], latest = c["latest_known_version"];
    if (inst == 0 || latest > inst || c["pending_files"].get<uint64_t>() > 0 || !c["last_error"].is_null())
      return kStatusNotConverged;
    if (!c["warnings"].empty()) warn = true;
  }
  return warn ? 1 : 0;
}

int run_status(const std::string& config_path, bool json, bool prometheus) {
  Config cfg = load_config(config_path);
  cfg.require_role("regional", "status describes a regional center");
  if (prometheus) {  // the text [regional] metrics_file holds; exit 0 once printed (a cron job's "&&")
    std::fputs(render_center_metrics(cfg, static_cast<int64_t>(::time(nullptr))).c_str(), stdout);
    return 0;
  }
  std::unique_ptr<Journal> j = open_journal_read_only(cfg);

  nlohmann::json out = {{"site", cfg.site}, {"channels", nlohmann::json::array()}, {"link", nlohmann::json::array()}};
  for (auto& ch : cfg.channels) out["channels"].push_back(channel_status_json(ch, j.get()));
  if (j)
    for (auto& ev : j->link_history(10))
      out["link"].push_back({{"time", format_utc(ev.time)}, {"up", ev.up}, {"detail", ev.detail}});
  std::string replica_text = replica_section(cfg, out);

  if (json) {
    print_json(out);
  } else {
    print_text(out, cfg.site, j != nullptr, replica_text);
  }
  return verdict(out);
}

void register_status(CLI::App& app, Action& chosen) {
  auto* cmd = app.add_subcommand("status", "Show what this center has installed and what is pending");
  cmd->footer(
      "Per channel: the installed version, the newest version HQ offered, files and bytes still\n"
      "pending, the last success and the last error; then the link's up/down history. Reads the\n"
      "journal only, read-only (no network; a user who can read the state directory may run it).\n"
      "Every unfinished file is listed. See docs/regional.md.\n\n"
      "--prometheus prints the center's metrics in Prometheus' text format instead (what\n"
      "[regional] metrics_file holds, for node-exporter's textfile collector) and exits 0.\n\n"
      "Exit status, for scripts and monitoring:\n"
      "  0   every channel has HQ's latest known version installed, nothing pending, no warning\n"
      "  1   converged, but something warns (a stale or expiring manifest, the replica)\n"
      "  75  a channel is not converged: nothing installed yet, files pending, a newer version\n"
      "      known, or its last sync failed (its error is shown until a later success)\n\n"
      "Examples:\n"
      "  distctl status\n"
      "  distctl status --json\n"
      "  distctl status --prometheus   (a cron job: to a temporary file, then mv; docs/regional.md)");
  struct Args {
    std::string config;
    bool json = false;
    bool prometheus = false;
  };
  static Args a;
  a.config = default_config_path();
  cmd->add_option("-c,--config", a.config, "config file ($DISTD_CONFIG or /etc/distd/distd.toml)");
  auto* json = cmd->add_flag("--json", a.json, "print as JSON on stdout");
  cmd->add_flag("--prometheus", a.prometheus, "print the center's metrics in Prometheus' text format")
      ->excludes(json);
  cmd->callback([&chosen] {
    chosen = [] { return run_status(a.config, a.json, a.prometheus); };
  });
}

const CommandRegistrar registrar_status(41, register_status);

}  // namespace
}  // namespace distd::cli
