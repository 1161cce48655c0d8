// distctl fleet: which centers hold which version, from the status reports they send HQ (HQ).
#include <cstdio>
#include <ctime>

#include "cli/command.h"
#include "cli/json_out.h"
#include "distd/config/config.h"
#include "distd/fleet/fleet.h"
#include "manifest/encoding.h"
#include "manifest/error.h"

namespace distd::cli {
namespace {

void print_site(const fleet::SiteView& s) {
  std::string seen = s.seen ? format_utc(s.received) + " by " + s.how : std::string("never");
  std::string flags;
  for (const auto& f : s.flags) flags += (flags.empty() ? "" : ",") + f;
  std::printf("%-20s %-28s %s\n", s.site.c_str(), seen.c_str(), flags.empty() ? "ok" : flags.c_str());
  for (const auto& c : s.channels) {
    std::string hq = c.hq_latest ? std::to_string(c.hq_latest) : std::string("-");
    std::printf("  %-18s installed %-6s HQ %-6s pending %llu files, %s\n", c.channel.c_str(),
                c.installed ? std::to_string(c.installed).c_str() : "none", hq.c_str(),
                static_cast<unsigned long long>(c.pending_files), human_bytes(c.pending_bytes).c_str());
    if (!c.last_error.empty()) std::printf("    last error: %.200s\n", c.last_error.c_str());
    for (const auto& w : c.warnings) std::printf("    warning: %.200s\n", w.c_str());
  }
}

int run_fleet(const std::string& config_path, bool json, double stale_hours) {
  Config cfg = load_config(config_path);
  cfg.require_role("hq", "fleet shows what HQ's centers reported");
  if (!(stale_hours > 0)) throw Error(Errc::usage, "--stale-after must be a positive number of hours", "e.g. 48");
  const auto now = static_cast<int64_t>(::time(nullptr));
  auto sites = fleet::fleet_view(cfg, now, static_cast<int64_t>(stale_hours * 3600));
  bool flagged = false;
  for (const auto& s : sites) flagged = flagged || !s.flags.empty();
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : sites) out.push_back(fleet::to_json(s));
    print_json(out);
  } else {
    if (sites.empty()) std::printf("no site is enrolled and none has reported\n");
    for (const auto& s : sites) print_site(s);
  }
  return flagged ? 1 : 0;
}

void register_fleet(CLI::App& app, Action& chosen) {
  auto* cmd = app.add_subcommand("fleet", "Show which version each center holds, from their reports (HQ)");
  cmd->footer(
      "One entry per enrolled site (<[hq] sites_dir>/<site>.pub) and per site that reported: when\n"
      "HQ last heard from it and how, each channel's installed version against HQ's latest, what is\n"
      "pending, the last error and warnings. Centers report after every sync (POST /report). Flags:\n"
      "never-seen, stale (no report for --stale-after hours), behind (installed < HQ's latest),\n"
      "error (the last sync of a channel failed), warning. See docs/hq.md \"The fleet\".\n\n"
      "Exit status: 0 when no site is flagged, 1 when one is.\n\n"
      "Examples:\n"
      "  distctl fleet\n"
      "  distctl fleet --json --stale-after 12");
  struct Args {
    std::string config;
    bool json = false;
    double stale_hours = 48;
  };
  static Args a;
  a.config = default_config_path();
  cmd->add_option("-c,--config", a.config, "HQ's config file ($DISTD_CONFIG or /etc/distd/distd.toml)");
  cmd->add_flag("--json", a.json, "print a JSON array on stdout");
  cmd->add_option("--stale-after", a.stale_hours, "hours without a report before a site is stale (default 48)");
  cmd->callback([&chosen] {
    chosen = [] { return run_fleet(a.config, a.json, a.stale_hours); };
  });
}

const CommandRegistrar registrar_fleet(32, register_fleet);

}  // namespace
}  // namespace distd::cli
