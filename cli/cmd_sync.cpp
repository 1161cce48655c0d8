// distctl sync: one sync of a regional center in the foreground (or, --dry-run, its plan).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>

#include "cli/command.h"
#include "cli/json_out.h"
#include "cli/progress.h"
#include "distd/config/config.h"
#include "distd/regional/center_metrics.h"
#include "distd/regional/dry_run.h"
#include "distd/regional/status_report.h"
#include "distd/regional/sync.h"
#include "manifest/encoding.h"
#include "manifest/error.h"

namespace distd::cli {
namespace {

struct Args {
  std::string config, channel, priority_file, bwlimit;
  bool json = false, now = false, dry_run = false, quiet = false, progress = false;
};

nlohmann::json result_json(const ChannelResult& r) {
  nlohmann::json j = {{"channel", r.channel},
                      {"from_version", r.from_version},
                      {"to_version", r.to_version},
                      {"converged", r.converged},
                      {"up_to_date", r.up_to_date},
                      {"unchanged", r.unchanged},
                      {"copied", r.copied},
                      {"delta", r.delta},
                      {"full", r.full},
                      {"deleted", r.deleted},
                      {"delta_fallbacks", r.delta_fallbacks},
                      {"rejected", r.rejected},
                      {"failed_files", r.failed_files},
                      {"deferred_files", r.deferred_files},
                      {"deferred_bytes", r.deferred_bytes},
                      {"content_bytes", r.content_bytes},
                      {"bytes_received", r.bytes_received},
                      {"bytes_sent", r.bytes_sent}};
  j["warnings"] = r.warnings;
  if (!r.ok) j["code"] = errc_name(r.code);
  if (!r.error.empty()) j["error"] = r.error;
  if (!r.hint.empty()) j["hint"] = r.hint;
  return j;
}

// "64k", "1.5M", "40000": bytes per second, k/M/G = 1024, 1024^2, 1024^3 (as [regional]
// bandwidth_limit, a plain number is bytes/s). 0: no cap for this run.
uint64_t parse_rate(const std::string& text) {
  const Error bad(Errc::usage, "--bwlimit '" + text + "' is not a rate",
                  "write bytes per second, optionally with k, M or G (1024, 1024^2, 1024^3): e.g. 64k, 1.5M, "
                  "40000; 0 for no cap");
  size_t used = 0;
  double n = 0;
  try {
    n = std::stod(text, &used);
  } catch (const std::exception&) {
    throw bad;
  }
  std::string unit = text.substr(used);
  double mult = 1;
  if (unit == "k" || unit == "K") mult = 1024;
  else if (unit == "m" || unit == "M") mult = 1024.0 * 1024;
  else if (unit == "g" || unit == "G") mult = 1024.0 * 1024 * 1024;
  else if (!unit.empty()) throw bad;
  if (!std::isfinite(n) || n < 0 || n * mult > 1e15 || (n > 0 && n * mult < 1)) throw bad;
  return static_cast<uint64_t>(std::llround(n * mult));
}

// The channels the run covers: --channel, or every configured one.
std::vector<std::string> channel_names(const Config& cfg, const Args& a) {
  std::vector<std::string> names;
  if (!a.channel.empty())
    names.push_back(cfg.channel(a.channel).name);
  else
    for (auto& c : cfg.channels) names.push_back(c.name);
  if (names.empty())
    throw Error(Errc::usage, "config " + cfg.file + " has no [[channel]]", "add the channels this center receives");
  return names;
}

SyncOptions sync_options(const Args& a) {
  SyncOptions opts;
  opts.honour_window = !a.now;
  if (!a.bwlimit.empty()) opts.bandwidth_limit = parse_rate(a.bwlimit);
  if (!a.priority_file.empty()) {
    std::ifstream f(a.priority_file);
    if (!f) throw Error(Errc::not_found, "cannot read priority file '" + a.priority_file + "'", "check the path");
    for (std::string line; std::getline(f, line);)
      if (!line.empty()) opts.priority.push_back(line);
  }
  return opts;
}

ChannelResult failed(const std::string& channel, const Error& e) {
  ChannelResult r;
  r.channel = channel;
  r.ok = false;
  r.code = e.code();
  r.error = e.what();
  r.hint = e.hint();
  return r;
}

// H:MM:SS
std::string clock_text(int64_t s) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return buf;
}

nlohmann::json plan_json(const DryRunPlan& p) {
  nlohmann::json j = {{"channel", p.channel},
                      {"from_version", p.from_version},
                      {"to_version", p.to_version},
                      {"up_to_date", p.up_to_date},
                      {"resumed", p.resumed},
                      {"unchanged", p.unchanged},
                      {"copy", p.copy},
                      {"delta", p.delta},
                      {"full", p.full},
                      {"delete", p.deleted},
                      {"full_bytes", p.full_bytes},
                      {"delta_bytes", p.delta_bytes},
                      {"fetch_bytes", p.fetch_bytes},
                      {"signature_bytes", p.signature_bytes},
                      {"deferred_files", p.deferred_files},
                      {"deferred_bytes", p.deferred_bytes},
                      {"bandwidth_limit", p.bandwidth_limit},
                      {"space_needed", p.space_needed},
                      {"staging_free", p.staging_free},
                      {"tree_free", p.tree_free},
                      {"staging_dir", p.staging_dir},
                      {"tree_dir", p.tree_dir},
                      {"space_ok", p.space_ok}};
  j["eta_seconds"] = p.eta_seconds >= 0 ? nlohmann::json(p.eta_seconds) : nlohmann::json(nullptr);
  j["warnings"] = p.warnings;
  return j;
}

void print_plan(const DryRunPlan& p, bool bwlimit_given) {
  if (p.up_to_date) {
    std::printf("%s: up to date at version %llu (%llu files): nothing to fetch\n", p.channel.c_str(),
                static_cast<unsigned long long>(p.to_version), static_cast<unsigned long long>(p.unchanged));
    return;
  }
  std::printf("%s: version %llu -> %llu%s\n", p.channel.c_str(), static_cast<unsigned long long>(p.from_version),
              static_cast<unsigned long long>(p.to_version), p.resumed ? " (continues the interrupted sync)" : "");
  std::printf("  files:   %llu unchanged, %llu copy, %llu delta, %llu full, %llu delete\n",
              static_cast<unsigned long long>(p.unchanged), static_cast<unsigned long long>(p.copy),
              static_cast<unsigned long long>(p.delta), static_cast<unsigned long long>(p.full),
              static_cast<unsigned long long>(p.deleted));
  std::printf("  fetch:   at most %s (whole objects %s, deltas at most %s; %s of signatures sent)\n",
              human_bytes(p.fetch_bytes).c_str(), human_bytes(p.full_bytes).c_str(), human_bytes(p.delta_bytes).c_str(),
              human_bytes(p.signature_bytes).c_str());
  if (p.deferred_files)
    std::printf("  waiting: %llu big files (%s) wait for the big-files window (--now fetches them)\n",
                static_cast<unsigned long long>(p.deferred_files), human_bytes(p.deferred_bytes).c_str());
  const char* source = bwlimit_given ? "--bwlimit" : "[regional] bandwidth_limit";
  if (p.bandwidth_limit)
    std::printf("  time:    ETA %s at %s/s (%s)\n", clock_text(p.eta_seconds).c_str(),
                human_bytes(p.bandwidth_limit).c_str(), source);
  else
    std::printf("  time:    no cap set (%s = 0): as fast as the link allows, no ETA\n", source);
  const bool one_fs = p.staging_free == p.tree_free;
  std::printf("  space:   needs %s; %s free in %s%s%s: %s\n", human_bytes(p.space_needed).c_str(),
              human_bytes(std::min(p.staging_free, p.tree_free)).c_str(), p.staging_dir.c_str(),
              one_fs ? "" : " / ", one_fs ? "" : p.tree_dir.c_str(), p.space_ok ? "enough" : "NOT ENOUGH");
}

int run_dry_run(const Args& a) {
  Config cfg = load_config(a.config);
  std::vector<std::string> names = channel_names(cfg, a);
  SyncOptions opts = sync_options(a);
  opts.log = [&a](const std::string& line) {
    if (!a.quiet) std::fprintf(stderr, "distctl: %s\n", line.c_str());
  };
  nlohmann::json out = {{"dry_run", true}, {"channels", nlohmann::json::array()}};
  int status = 0;
  for (auto& name : names) {
    try {
      DryRunPlan p = dry_run_channel(cfg, name, opts);
      if (a.json) out["channels"].push_back(plan_json(p));
      else if (!a.quiet) print_plan(p, !a.bwlimit.empty());
      if (!p.space_ok) {
        std::fprintf(stderr, "distctl: error: not enough free space for channel '%s': a sync needs %s in %s, %s is free\n",
                     name.c_str(), human_bytes(p.space_needed).c_str(), p.staging_dir.c_str(),
                     human_bytes(std::min(p.staging_free, p.tree_free)).c_str());
        std::fprintf(stderr, "  what to do: free space on that file system (or move [regional] staging_dir and the "
                             "channel's tree to a bigger one), then run the command again; nothing was changed\n");
        if (status == 0) status = exit_status(Errc::no_space);
      }
    } catch (const Error& e) {
      ChannelResult r = failed(name, e);
      if (a.json) out["channels"].push_back(result_json(r));
      std::fprintf(stderr, "distctl: error: %s\n", r.error.c_str());
      if (!r.hint.empty()) std::fprintf(stderr, "  what to do: %s\n", r.hint.c_str());
      if (status == 0) status = exit_status(r.code);
      if (e.code() == Errc::network || e.code() == Errc::usage || e.code() == Errc::busy) break;
    }
  }
  if (a.json) {
    out["ok"] = status == 0;
    print_json(out);
  }
  return status;
}

int run_sync(const Args& a) {
  Config cfg = load_config(a.config);
  std::vector<std::string> names = channel_names(cfg, a);
  SyncOptions opts = sync_options(a);
  using Mode = ProgressLine::Mode;
  ProgressLine bar("syncing", a.quiet ? Mode::never : a.progress ? Mode::always : Mode::automatic);
  opts.progress = [&bar](const SyncProgress& p) {
    bar.update(p.bytes_done, p.bytes_total,
               p.channel + " " + std::to_string(p.files_done) + "/" + std::to_string(p.files_total) + " files",
               p.current);
  };
  opts.log = [&bar, &a](const std::string& line) {
    if (a.quiet) return;
    bar.finish();
    std::fprintf(stderr, "distctl: %s\n", line.c_str());
  };

  std::vector<ChannelResult> results;
  for (auto& name : names) {
    try {
      results.push_back(sync_channel(cfg, name, opts));
    } catch (const Error& e) {
      results.push_back(failed(name, e));
      if (e.code() == Errc::network || e.code() == Errc::usage || e.code() == Errc::no_space) break;
    }
  }
  bar.finish();
  bool link_down = false;  // then the report would only wait for the same timeout again
  for (auto& r : results) link_down = link_down || (!r.ok && r.code == Errc::network);
  if (!link_down) send_status_report(cfg, opts.log);  // best effort: HQ's fleet view (docs/hq.md)
  write_center_metrics(cfg, opts.log);                 // best effort: [regional] metrics_file

  int status = 0;
  bool all = results.size() == names.size();
  for (auto& r : results) {
    if (!r.ok) {
      std::fprintf(stderr, "distctl: error: %s\n", r.error.c_str());
      if (!r.hint.empty()) std::fprintf(stderr, "  what to do: %s\n", r.hint.c_str());
      if (status == 0 || status == kExitDeferred) status = exit_status(r.code);
    } else if (!r.converged) {
      std::fprintf(stderr, "distctl: not converged: %s: %s\n", r.channel.c_str(), r.error.c_str());
      if (!r.hint.empty()) std::fprintf(stderr, "  what to do: %s\n", r.hint.c_str());
      if (status == 0) status = kExitDeferred;
    }
    all = all && r.converged;
  }
  if (a.json) {
    nlohmann::json j = {{"converged", all && status == 0}, {"channels", nlohmann::json::array()}};
    for (auto& r : results) j["channels"].push_back(result_json(r));
    print_json(j);
  } else if (status == 0 && !a.quiet) {
    for (auto& r : results)
      std::printf("%s: %s version %llu (%s received)\n", r.channel.c_str(),
                  r.up_to_date ? "up to date at" : "installed", static_cast<unsigned long long>(r.to_version),
                  human_bytes(r.bytes_received).c_str());
  }
  return status;
}

void register_sync(CLI::App& app, Action& chosen) {
  auto* cmd = app.add_subcommand("sync", "Bring this regional center up to HQ's latest versions (one run)");
  cmd->footer(
      "Fetches each channel's latest signed manifest from [regional] hq_url, verifies it with the\n"
      "pinned [regional] hq_public_key, refuses older versions and expired manifests, then copies\n"
      "local files, fetches librsync deltas or whole objects (resuming cut downloads from the\n"
      "journal), verifies every file against its signed digest and renames it into place.\n"
      "Exit status 0 only when every channel converged; 75 when only big files wait for the\n"
      "[regional] big_files_window; otherwise the error's status (12 network, 8 rollback, ...).\n"
      "--dry-run fetches and verifies the manifests and prints each channel's plan (files to copy,\n"
      "delta, fetch, delete), the bytes to fetch, the ETA at the cap and the free space; it installs\n"
      "nothing. Exit 0 when the plan was shown (or nothing is to do), 11 when the disk is too small.\n"
      "RATE: bytes/s like [regional] bandwidth_limit, k/M/G = 1024, 1024^2, 1024^3; 0 = no cap.\n"
      "See docs/regional.md and docs/cli.md.\n\n"
      "Examples:\n"
      "  distctl sync\n"
      "  distctl sync --dry-run                     # the plan, bytes, ETA and space; changes nothing\n"
      "  distctl sync --dry-run --quiet && distctl sync --quiet   # sync only when it fits\n"
      "  distctl sync --bwlimit 64k --progress 2>>/var/log/distd-sync.log\n"
      "  distctl sync --channel moodledata --json\n"
      "  distctl sync --now --priority-file /run/distd/missing-hashes.txt");
  static Args a;
  a.config = default_config_path();
  cmd->add_option("-c,--config", a.config, "config file ($DISTD_CONFIG or /etc/distd/distd.toml)");
  cmd->add_option("--channel", a.channel, "sync only this channel (default: all configured channels)");
  cmd->add_flag("--json", a.json, "print a summary (with --dry-run: the plan) as JSON on stdout");
  cmd->add_flag("--now", a.now, "fetch big files now, ignoring [regional] big_files_window");
  cmd->add_option("--priority-file", a.priority_file,
                  "file with one path or base name per line (e.g. SHA-1 content hashes): fetched first");
  cmd->add_flag("--dry-run", a.dry_run,
                "fetch and verify the manifests, print the plan, bytes, ETA and free space; install nothing");
  cmd->add_option("--bwlimit", a.bwlimit, "RATE: cap this run's downloads (overrides [regional] bandwidth_limit)");
  auto* quiet = cmd->add_flag("--quiet", a.quiet, "no progress, no log lines, no summary (unless --json); errors only");
  cmd->add_flag("--progress", a.progress, "show the progress line even when stderr is not a terminal")->excludes(quiet);
  cmd->callback([&chosen] {
    chosen = [] { return a.dry_run ? run_dry_run(a) : run_sync(a); };
  });
}

const CommandRegistrar registrar_sync(40, register_sync);

}  // namespace
}  // namespace distd::cli
