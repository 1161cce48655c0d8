// distctl bundle request|export|import|auto-import: USB-stick sneakernet (docs/sneakernet.md).
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>

#include "cli/command.h"
#include "cli/json_out.h"
#include "cli/progress.h"
#include "distd/bundle/exporter.h"
#include "distd/bundle/importer.h"
#include "distd/bundle/request.h"
#include "distd/config/config.h"
#include "distd/fleet/fleet.h"
#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/fs.h"
#include "manifest/path.h"

namespace distd::cli {
namespace {

using namespace distd::bundle;

void log_line(const std::string& s) { std::fprintf(stderr, "distctl: %s\n", s.c_str()); }

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> out;
  if (path.empty()) return out;
  std::ifstream f(path);
  if (!f) throw Error(Errc::not_found, "cannot read priority file '" + path + "'", "check the path");
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

nlohmann::json import_json(const ImportResult& r) {
  nlohmann::json j = {{"bundle", r.bundle_id},  {"site", r.site},
                      {"volumes", r.volumes},   {"complete", r.complete()},
                      {"bytes_read", r.bytes_read}, {"unneeded_items", r.unneeded_items},
                      {"missing_volumes", r.missing_volumes}, {"truncated_volumes", r.truncated_volumes},
                      {"refused_volumes", r.refused_volumes}, {"channels", nlohmann::json::array()},
                      {"problems", nlohmann::json::array()}, {"notes", r.notes}};
  for (auto& c : r.channels) {
    nlohmann::json cj = {{"channel", c.channel},   {"from_version", c.from_version}, {"to_version", c.to_version},
                         {"converged", c.converged}, {"up_to_date", c.up_to_date},   {"installed", c.installed},
                         {"delta", c.delta},         {"copied", c.copied},           {"skipped", c.skipped},
                         {"deleted", c.deleted},     {"installed_bytes", c.installed_bytes},
                         {"missing", nlohmann::json::array()}, {"warnings", c.warnings}};
    for (auto& m : c.missing) cj["missing"].push_back({{"path", encode_path(m.path)}, {"size", m.size}, {"why", m.why}});
    if (!c.ok) {
      cj["code"] = errc_name(c.code);
      cj["error"] = c.error;
      cj["hint"] = c.hint;
    }
    j["channels"].push_back(cj);
  }
  for (auto& p : r.problems) j["problems"].push_back({{"code", errc_name(p.code)}, {"message", p.message}});
  return j;
}

// What the import did, per channel. Each refusal and channel error was logged once while the
// import ran; here follows one "what to do" line for all of them.
void print_import_summary(const ImportResult& r) {
  std::vector<std::string> todo;
  auto advise = [&todo](const std::string& hint) {
    if (!hint.empty() && std::find(todo.begin(), todo.end(), hint) == todo.end()) todo.push_back(hint);
  };
  bool files_missing = !r.missing_volumes.empty() || !r.truncated_volumes.empty();
  for (auto& c : r.channels) {
    if (!c.ok) {
      advise(c.hint);
      continue;
    }
    files_missing |= !c.missing.empty();
    for (auto& w : c.warnings) std::printf("%s: WARNING %s\n", c.channel.c_str(), w.c_str());
    if (c.up_to_date) {
      std::printf("%s: already at version %llu (nothing to install)\n", c.channel.c_str(),
                  static_cast<unsigned long long>(c.to_version));
      continue;
    }
    std::printf("%s: %s version %llu: installed %llu (%llu by delta, %s), copied %llu, skipped %llu (already present), "
                "missing %zu\n",
                c.channel.c_str(), c.converged ? "now at" : "partly installed", static_cast<unsigned long long>(c.to_version),
                static_cast<unsigned long long>(c.installed), static_cast<unsigned long long>(c.delta),
                human_bytes(c.installed_bytes).c_str(), static_cast<unsigned long long>(c.copied),
                static_cast<unsigned long long>(c.skipped), c.missing.size());
    size_t n = 0;
    for (auto& m : c.missing) {
      if (++n > 10) {
        std::printf("  ... %zu more missing (see --json)\n", c.missing.size() - 10);
        break;
      }
      std::printf("  missing %s (%s): %s\n", quote_path(m.path).c_str(), human_bytes(m.size).c_str(), m.why.c_str());
    }
  }
  if (!r.problems.empty())
    advise("nothing refused was installed; export a new bundle at HQ if the stick was damaged or altered");
  if (files_missing || !r.problems.empty())
    advise("what is missing comes with the next bundle or the next network sync");
  if (todo.empty()) return;
  std::string line;
  for (auto& t : todo) line += (line.empty() ? "" : "; ") + t;
  std::fprintf(stderr, "  what to do: %s\n", line.c_str());
}

// The options import and auto-import share: the config, the stick's directory, --json.
struct StickArgs {
  std::string config = default_config_path(), from;
  bool json = false;
};
void add_stick_options(CLI::App* cmd, StickArgs& a, const char* from_help, const char* json_help) {
  cmd->add_option("-c,--config", a.config, "config file (regional)");
  cmd->add_option("--from", a.from, from_help)->required();
  cmd->add_flag("--json", a.json, json_help);
}

ImportResult run_import(const Config& cfg, const std::string& from, bool quiet_progress) {
  ProgressLine bar("importing");
  ImportOptions o;
  if (!quiet_progress)
    o.progress = [&bar](const ImportProgress& p) {
      bar.update(p.bytes_done, p.bytes_total,
                 "volume " + std::to_string(p.volume) + "/" + std::to_string(p.volumes));
    };
  o.log = [&bar](const std::string& s) {
    bar.finish();
    log_line(s);
  };
  ImportResult r = import_bundle(cfg, from, o);
  bar.finish();
  return r;
}

// The status report of site's request, verified by the export (ExportResult::request_report;
// docs/hq.md "The fleet"), stored with how
// "stick" and received at the report's own time (when the center wrote it; HQ's clock when that
// is later), unless the stored report is newer. Never fails the export: what is not stored is a
// warning. Returns for --json: "stored", "older" (the stored one is newer), "none" (a request
// without a report), "refused".
std::string store_stick_report(const Config& cfg, const std::string& site, const std::string& report,
                               std::vector<std::string>* warn) {
  auto refuse = [&](const std::string& why) {
    warn->push_back("the status report in the request of site '" + site + "' was not stored: " + why);
    return std::string("refused");
  };
  try {
    if (report.empty()) return "none";
    nlohmann::json r = nlohmann::json::parse(report, nullptr, false);
    auto text = [&r](const char* k) { return r.contains(k) && r[k].is_string() ? r[k].get<std::string>() : ""; };
    if (!r.is_object() || text("format") != "distd-report 1" || !r.contains("channels") || !r["channels"].is_array() ||
        !r.contains("time") || !r["time"].is_number_integer() || r["time"].get<int64_t>() < 0)
      return refuse("it is not a \"distd-report 1\" status report");
    if (text("site") != site)
      return refuse("it is about site '" + text("site") + "'; a center reports only itself");
    const int64_t written = std::min<int64_t>(r["time"].get<int64_t>(), std::time(nullptr));
    if (!fleet::store_report(cfg, site, std::move(r), "stick", written, true)) {
      log_line("kept HQ's status report of site " + site + ": the request's (written " + format_utc(written) +
               ") is older");
      return "older";
    }
    log_line("stored the status report of site " + site + " (written " + format_utc(written) + ", by stick)");
    return "stored";
  } catch (const Error& e) {
    return refuse(e.what());
  }
}

void add_request(CLI::App* b, Action& chosen) {
  auto* cmd = b->add_subcommand("request", "Write this center's signed request to a stick (regional)");
  cmd->footer(
      "Writes DIR/distd-request.txt: the site id, the installed version of each channel and a summary\n"
      "of the content this center holds, signed with the site's own key (created on first use under\n"
      "the state dir; HQ must enroll its public key as <sites_dir>/<site>.pub). Files waiting in\n"
      "<state_dir>/outbound/ travel along in DIR/distd-outbound/.\n\n"
      "Example:\n  distctl bundle request --to /media/distd");
  struct Args {
    std::string config, to, priority_file;
    bool json = false;
  };
  static Args a;
  a.config = default_config_path();
  cmd->add_option("-c,--config", a.config, "config file (regional)");
  cmd->add_option("--to", a.to, "directory on the stick")->required();
  cmd->add_option("--priority-file", a.priority_file, "paths or base names HQ should pack first, one a line");
  cmd->add_flag("--json", a.json, "print the result as JSON");
  cmd->callback([&chosen] {
    chosen = [] {
      Config cfg = load_config(a.config);
      RequestOptions o;
      o.priority = read_lines(a.priority_file);
      o.log = log_line;
      RequestResult r = write_request(cfg, a.to, o);
      if (a.json) {
        nlohmann::json j = {{"path", r.path}, {"site", r.site}, {"key_id", r.key_id},
                            {"public_key", r.public_key_path}, {"key_created", r.key_created},
                            {"bytes", r.bytes}, {"outbound", r.request.outbound.size()},
                            {"channels", nlohmann::json::array()}};
        for (auto& c : r.request.channels)
          j["channels"].push_back({{"channel", c.name}, {"installed_version", c.installed_version},
                                   {"held", c.held.size()}});
        print_json(j);
      } else {
        std::printf("wrote %s (%s) for site %s, key id %s\n", r.path.c_str(), human_bytes(r.bytes).c_str(),
                    r.site.c_str(), r.key_id.c_str());
        for (auto& c : r.request.channels)
          std::printf("  %s: version %llu installed, %zu distinct files held\n", c.name.c_str(),
                      static_cast<unsigned long long>(c.installed_version), c.held.size());
      }
      return 0;
    };
  });
}

void add_export(CLI::App* b, Action& chosen) {
  auto* cmd = b->add_subcommand("export", "Write a bundle for a center to a stick (HQ)");
  cmd->footer(
      "Writes DIR/distd-bundle.idx (signed with [hq] secret_key) and DIR/distd-bundle-NNNN.tar volumes\n"
      "(POSIX tar, none over the volume size, default 3.9G: safe on FAT32). With --request: the\n"
      "manifests after the center's version and exactly the content it lacks, as librsync deltas\n"
      "where it has an older version. --since N: for a center at version N; neither: everything.\n"
      "--max-size packs priority and small files first and lists what did not fit.\n\n"
      "Examples:\n"
      "  distctl bundle export --to /media/stick --request /media/stick/distd-request.txt\n"
      "  distctl bundle export --to /media/stick --channel moodledata --since 41 --max-size 14G");
  struct Args {
    std::string config, to, request, channel, max_size, volume_size;
    uint64_t since = 0;
    bool json = false;
  };
  static Args a;
  a.config = default_config_path();
  cmd->add_option("-c,--config", a.config, "config file (HQ)");
  cmd->add_option("--to", a.to, "directory on the stick")->required();
  cmd->add_option("--request", a.request, "the center's request file (distd-request.txt)");
  cmd->add_option("--channel", a.channel, "only this channel");
  auto* since = cmd->add_option("--since", a.since, "the center has this version (without a request)");
  cmd->add_option("--max-size", a.max_size, "at most this many bytes on the stick (e.g. 7.5G)");
  cmd->add_option("--volume-size", a.volume_size, "split into volumes of this size (default 3.9G, max 4G-1)");
  cmd->add_flag("--json", a.json, "print the result as JSON");
  cmd->callback([&chosen, since] {
    chosen = [since] {
      Config cfg = load_config(a.config);
      ExportOptions o;
      o.request_path = a.request;
      o.channel = a.channel;
      if (since->count()) o.since = a.since;
      if (!a.max_size.empty()) o.max_size = parse_size(a.max_size, "--max-size");
      if (!a.volume_size.empty()) o.volume_size = parse_size(a.volume_size, "--volume-size");
      ProgressLine bar("exporting");
      o.progress = [&bar](uint64_t done, uint64_t total) { bar.update(done, total); };
      o.log = [&bar](const std::string& s) {
        bar.finish();
        log_line(s);
      };
      ExportResult r = export_bundle(cfg, a.to, o);
      bar.finish();
      const std::string report =
          a.request.empty() ? "none" : store_stick_report(cfg, r.site, r.request_report, &r.warnings);
      for (auto& w : r.warnings) std::fprintf(stderr, "distctl: warning: %s\n", w.c_str());
      for (auto& n : r.notes) std::fprintf(stderr, "distctl: %s\n", n.c_str());
      if (a.json) {
        nlohmann::json j = {{"dir", r.dir}, {"bundle", r.bundle_id}, {"site", r.site}, {"volumes", r.volumes},
                            {"bytes", r.bytes}, {"manifests", r.manifests}, {"manifest_deltas", r.manifest_deltas}, {"objects", r.objects},
                            {"deltas", r.deltas}, {"object_bytes", r.object_bytes}, {"delta_bytes", r.delta_bytes},
                            {"zstd_objects", r.zstd_objects}, {"zstd_object_content_bytes", r.zstd_object_content_bytes},
                            {"packs", r.packs}, {"packed_objects", r.packed_objects},
                            {"packed_content_bytes", r.packed_content_bytes},
                            {"delta_target_bytes", r.delta_target_bytes}, {"held_entries", r.held_entries},
                            {"held_elsewhere_entries", r.held_elsewhere_entries},
                            {"shared_entries", r.shared_entries}, {"omitted_bytes", r.omitted_bytes},
                            {"outbound_received", r.outbound_received}, {"warnings", r.warnings},
                            {"notes", r.notes}, {"extra_files", r.extra_files}, {"status_report", report},
                            {"channels", nlohmann::json::array()}, {"omitted", nlohmann::json::array()}};
        for (auto& c : r.channels) j["channels"].push_back({{"channel", c.name}, {"from", c.from}, {"to", c.to}});
        for (auto& m : r.omitted)
          j["omitted"].push_back({{"channel", m.channel}, {"path", encode_path(m.path)}, {"size", m.size}});
        print_json(j);
      } else {
        std::printf("wrote bundle %s to %s: %u volumes, %s\n", r.bundle_id.c_str(), r.dir.c_str(), r.volumes,
                    human_bytes(r.bytes).c_str());
        for (auto& c : r.channels)
          std::printf("  %s: version %llu -> %llu\n", c.name.c_str(), static_cast<unsigned long long>(c.from),
                      static_cast<unsigned long long>(c.to));
        std::printf("  %llu manifests, %llu objects (%s), %llu deltas (%s standing for %s); %llu files the center "
                    "already has\n",
                    static_cast<unsigned long long>(r.manifests), static_cast<unsigned long long>(r.objects),
                    human_bytes(r.object_bytes).c_str(), static_cast<unsigned long long>(r.deltas),
                    human_bytes(r.delta_bytes).c_str(), human_bytes(r.delta_target_bytes).c_str(),
                    static_cast<unsigned long long>(r.held_entries));
        if (r.zstd_objects)
          std::printf("  %llu of the objects compressed (zstd, %s when decoded)\n",
                      static_cast<unsigned long long>(r.zstd_objects), human_bytes(r.zstd_object_content_bytes).c_str());
        if (r.packs)
          std::printf("  %llu small objects (%s) packed into %llu zstd streams\n",
                      static_cast<unsigned long long>(r.packed_objects), human_bytes(r.packed_content_bytes).c_str(),
                      static_cast<unsigned long long>(r.packs));
        if (!r.omitted.empty()) {
          std::printf("  did NOT fit (--max-size): %zu files, %s:\n", r.omitted.size(),
                      human_bytes(r.omitted_bytes).c_str());
          size_t n = 0;
          for (auto& m : r.omitted) {
            if (++n > 20) {
              std::printf("    ... %zu more (see --json)\n", r.omitted.size() - 20);
              break;
            }
            std::printf("    %s/%s (%s)\n", m.channel.c_str(), encode_path(m.path).c_str(),
                        human_bytes(m.size).c_str());
          }
        }
      }
      return 0;
    };
  });
}

void add_import(CLI::App* b, Action& chosen) {
  auto* cmd = b->add_subcommand("import", "Verify a bundle on a stick and install it (regional)");
  cmd->footer(
      "Verifies the index (HQ's pinned key), every member's size and digest and every manifest (as\n"
      "sync does), then installs through the journal and the staging area like a network sync.\n"
      "Prints installed / skipped / missing. Exit status 0 when every channel is complete, 75 when\n"
      "files are missing (the next bundle or sync brings them), otherwise the error's status.\n\n"
      "Example:\n  distctl bundle import --from /media/distd");
  static StickArgs a;
  add_stick_options(cmd, a, "directory on the stick", "print the result as JSON");
  cmd->callback([&chosen] {
    chosen = [] {
      Config cfg = load_config(a.config);
      ImportResult r = run_import(cfg, a.from, false);
      if (a.json)
        print_json(import_json(r));
      else
        print_import_summary(r);
      return r.exit_status();
    };
  });
}

// auto-import is the udev/systemd path (distd-stick-import.service).
void add_auto_import(CLI::App* b, Action& chosen) {
  auto* cmd = b->add_subcommand("auto-import", "Import a stick's bundle if any, leave a result and a new request");
  cmd->footer(
      "For the distd-stick-import.service: imports DIR's bundle (when there is one), writes\n"
      "DIR/distd-import-result.txt for the traveller and a fresh DIR/distd-request.txt for the next trip.");
  static StickArgs a;
  add_stick_options(cmd, a, "the stick's mount point", "print the import result as JSON");
  cmd->callback([&chosen] {
    chosen = [] {
      Config cfg = load_config(a.config);
      struct stat st {};
      // The stick must be there: a mistyped mount point would otherwise get a result and a
      // request written into a new directory on the center's own disk, and exit 0.
      if (::stat(a.from.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw Error(Errc::not_found, "no stick at '" + a.from + "': it is not a directory",
                    "give the stick's mount point with --from (the service uses /media/distd); is the stick mounted?");
      ImportResult r;
      std::string text;
      int status = 0;
      bool had_bundle = ::stat((a.from + "/" + kIndexFile).c_str(), &st) == 0;
      if (had_bundle) {
        try {
          r = run_import(cfg, a.from, true);
          status = r.exit_status();
          text = render_result_text(r, cfg.site);
          if (!a.json) print_import_summary(r);
        } catch (const Error& e) {
          status = exit_status(e.code());
          text = render_refusal_text(e, cfg.site);
          log_line(std::string("error: ") + e.what());
        }
      } else {
        text = "distd at site " + cfg.site + ", " + format_utc(std::time(nullptr)) +
               "\nno bundle on this stick; wrote a request for HQ\n";
        log_line("no bundle on " + a.from + "; writing a request only");
      }
      try {
        RequestOptions o;
        o.log = log_line;
        RequestResult q = write_request(cfg, a.from, o);
        text += "\nnew request for HQ: " + std::string(kRequestFile) + " (site " + q.site + ", key id " + q.key_id +
                ")\n";
      } catch (const Error& e) {
        text += std::string("\ncould not write a new request: ") + e.what() + "\n";
        log_line(std::string("error: cannot write the request: ") + e.what());
        if (status == 0) status = exit_status(e.code());
      }
      write_file_atomic(a.from + "/" + kResultFile, text, 0644);
      if (a.json && had_bundle) print_json(import_json(r));
      log_line("wrote " + a.from + "/" + kResultFile);
      return status;
    };
  });
}

void register_bundle(CLI::App& app, Action& chosen) {
  auto* b = app.add_subcommand("bundle", "USB-stick sneakernet: request, export and import signed bundles");
  b->require_subcommand(1);
  b->footer("See docs/sneakernet.md and docs/formats/bundle.md.");
  add_request(b, chosen);
  add_export(b, chosen);
  add_import(b, chosen);
  add_auto_import(b, chosen);
}

const CommandRegistrar registrar_bundle(45, register_bundle);

}  // namespace
}  // namespace distd::cli
