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

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : ",") + x;
  return out;
}

std::string replica_line(const fleet::SiteReplica& r) {
  if (!r.configured) return "not configured";
  std::string lag = r.lag_seconds ? std::to_string(*r.lag_seconds) + " s behind" : std::string("lag unknown");
  if (r.ok) return "ok, " + lag;
  std::string why = !r.warnings.empty() ? r.warnings.front() : !r.error.empty() ? r.error : lag;
  return "NOT OK: " + why.substr(0, 200);
}

void print_site(const fleet::SiteView& s) {
  std::string seen = s.seen ? format_utc(s.received) + " by " + s.how : std::string("never");
  std::string flags = join(s.flags);
  std::string version = s.seen ? "distd " + s.distd_version : std::string();
  std::printf("%-20s %-30s %-14s %s\n", s.site.c_str(), seen.c_str(), version.c_str(),
              flags.empty() ? "ok" : flags.c_str());
  for (const auto& c : s.channels) {
    std::string hq = c.hq_latest ? std::to_string(c.hq_latest) : std::string("-");
    std::string expires = c.manifest_expires ? ", expires " + format_utc(c.manifest_expires) : std::string();
    std::printf("  %-18s installed %-6s HQ %-6s pending %llu files, %s%s\n", c.channel.c_str(),
                c.installed ? std::to_string(c.installed).c_str() : "none", hq.c_str(),
                static_cast<unsigned long long>(c.pending_files), human_bytes(c.pending_bytes).c_str(), expires.c_str());
    std::string cflags = c.flags.empty() ? std::string() : "  [" + join(c.flags) + "]";
    std::printf("    last success: %s%s\n", c.last_success ? format_utc(c.last_success).c_str() : "never",
                cflags.c_str());
    if (!c.last_error.empty())
      std::printf("    last error%s: %.200s\n", c.last_error_code.empty() ? "" : (" (" + c.last_error_code + ")").c_str(),
                  c.last_error.c_str());
    for (const auto& w : c.warnings) std::printf("    warning: %.200s\n", w.c_str());
  }
  if (s.replica) std::printf("  replica: %s\n", replica_line(*s.replica).c_str());
  if (s.outbox_posts) std::printf("  outbox: %llu posts wait for HQ\n", static_cast<unsigned long long>(*s.outbox_posts));
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
      "HQ last heard from it and how (link or stick), its distd version, each channel's installed\n"
      "version against HQ's latest, what is pending, the installed manifest's expiry, the last success,\n"
      "error and warnings, the database replica and the forum posts waiting for HQ. Centers report\n"
      "after every sync (POST /report, or in a stick's request). Flags: never-seen, stale (no report\n"
      "for --stale-after hours), behind (installed < HQ's latest), stuck (files pending and no success\n"
      "or new plan for --stale-after hours), refusing (the last error is a refusal: bad signature,\n"
      "rollback, expired, corrupt, unsafe path), error (the last sync of a channel failed), expiring\n"
      "(the installed manifest expires within 3 days or the center's expiry_warning_days), replica\n"
      "(not ok, or over 1 hour behind), warning. See docs/hq.md \"The fleet\".\n\n"
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
