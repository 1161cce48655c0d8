// distctl sync: one sync of a regional center in the foreground.
#include <cstdio>
#include <fstream>

#include "cli/command.h"
#include "cli/json_out.h"
#include "cli/progress.h"
#include "distd/config/config.h"
#include "distd/regional/status_report.h"
#include "distd/regional/sync.h"
#include "manifest/encoding.h"
#include "manifest/error.h"

namespace distd::cli {
namespace {

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

void register_sync(CLI::App& app, Action& chosen) {
  auto* cmd = app.add_subcommand("sync", "Bring this regional center up to HQ's latest versions (one run)");
  cmd->footer(
      "Fetches each channel's latest signed manifest from [regional] hq_url, verifies it with the\n"
      "pinned [regional] hq_public_key, refuses older versions and expired manifests, then copies\n"
      "local files, fetches librsync deltas or whole objects (resuming cut downloads from the\n"
      "journal), verifies every file against its signed digest and renames it into place.\n"
      "Exit status 0 only when every channel converged; 75 when only big files wait for the\n"
      "[regional] big_files_window; otherwise the error's status (12 network, 8 rollback, ...).\n"
      "See docs/regional.md.\n\n"
      "Examples:\n"
      "  distctl sync\n"
      "  distctl sync --channel moodledata --json\n"
      "  distctl sync --now --priority-file /run/distd/missing-hashes.txt");
  struct Args {
    std::string config, channel, priority_file;
    bool json = false, now = false;
  };
  static Args a;
  a.config = default_config_path();
  cmd->add_option("-c,--config", a.config, "config file ($DISTD_CONFIG or /etc/distd/distd.toml)");
  cmd->add_option("--channel", a.channel, "sync only this channel (default: all configured channels)");
  cmd->add_flag("--json", a.json, "print a summary as JSON on stdout");
  cmd->add_flag("--now", a.now, "fetch big files now, ignoring [regional] big_files_window");
  cmd->add_option("--priority-file", a.priority_file,
                  "file with one path or base name per line (e.g. SHA-1 content hashes): fetched first");
  cmd->callback([&chosen] {
    chosen = [] {
      Config cfg = load_config(a.config);
      std::vector<std::string> names;
      if (!a.channel.empty())
        names.push_back(cfg.channel(a.channel).name);
      else
        for (auto& c : cfg.channels) names.push_back(c.name);
      if (names.empty())
        throw Error(Errc::usage, "config " + cfg.file + " has no [[channel]]", "add the channels this center receives");

      SyncOptions opts;
      opts.honour_window = !a.now;
      if (!a.priority_file.empty()) {
        std::ifstream f(a.priority_file);
        if (!f) throw Error(Errc::not_found, "cannot read priority file '" + a.priority_file + "'", "check the path");
        for (std::string line; std::getline(f, line);)
          if (!line.empty()) opts.priority.push_back(line);
      }
      ProgressLine bar("syncing");
      opts.progress = [&bar](const SyncProgress& p) {
        bar.update(p.bytes_done, p.bytes_total,
                   p.channel + " " + std::to_string(p.files_done) + "/" + std::to_string(p.files_total) + " files");
      };
      opts.log = [&bar](const std::string& line) {
        bar.finish();
        std::fprintf(stderr, "distctl: %s\n", line.c_str());
      };

      std::vector<ChannelResult> results;
      for (auto& name : names) {
        try {
          results.push_back(sync_channel(cfg, name, opts));
        } catch (const Error& e) {
          ChannelResult r;
          r.channel = name;
          r.ok = false;
          r.code = e.code();
          r.error = e.what();
          r.hint = e.hint();
          results.push_back(r);
          if (e.code() == Errc::network || e.code() == Errc::usage || e.code() == Errc::no_space) break;
        }
      }
      bar.finish();
      bool link_down = false;  // then the report would only wait for the same timeout again
      for (auto& r : results) link_down = link_down || (!r.ok && r.code == Errc::network);
      if (!link_down) send_status_report(cfg, opts.log);  // best effort: HQ's fleet view (docs/hq.md)

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
      } else if (status == 0) {
        for (auto& r : results)
          std::printf("%s: %s version %llu (%s received)\n", r.channel.c_str(),
                      r.up_to_date ? "up to date at" : "installed", static_cast<unsigned long long>(r.to_version),
                      human_bytes(r.bytes_received).c_str());
      }
      return status;
    };
  });
}

const CommandRegistrar registrar_sync(40, register_sync);

}  // namespace
}  // namespace distd::cli
