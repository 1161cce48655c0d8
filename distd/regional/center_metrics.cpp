#include "distd/regional/center_metrics.h"

#include <sys/stat.h>

#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>

#include "distd/regional/journal.h"
#include "distd/regional/status_report.h"
#include "distd/regional/sync.h"
#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/fs.h"
#include "manifest/version.h"

namespace distd {

namespace {

// A label value in the text format: backslash, double quote and line feed escaped.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Unix seconds of a channel_status_json time ("2026-12-03T08:00:00Z" or null); 0 = never.
int64_t unix_of(const nlohmann::json& t) {
  if (!t.is_string()) return 0;
  return parse_utc(t.get<std::string>()).value_or(0);
}

}  // namespace

std::string render_center_metrics(const Config& cfg, int64_t now) {
  std::unique_ptr<Journal> j = open_journal_read_only(cfg);
  std::vector<nlohmann::json> chans;
  for (const auto& ch : cfg.channels) chans.push_back(channel_status_json(ch, j.get(), false));

  std::string o;
  auto head = [&](const char* name, const char* help) {
    o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n";
  };
  head("distd_center_build_info", "distd's version at this center (the value is always 1).");
  o += "distd_center_build_info{site=\"" + label(cfg.site) + "\",version=\"" + label(distd_version()) + "\"} 1\n";
  auto per_channel = [&](const char* name, const char* help, const std::function<uint64_t(const nlohmann::json&)>& v) {
    head(name, help);
    for (const auto& c : chans)
      o += std::string(name) + "{channel=\"" + label(c["channel"].get<std::string>()) + "\"} " +
           std::to_string(v(c)) + "\n";
  };
  auto field = [](const char* key) {
    return [key](const nlohmann::json& c) { return c[key].get<uint64_t>(); };
  };
  per_channel("distd_center_installed_version", "The channel's installed version (0: none).",
              field("installed_version"));
  per_channel("distd_center_latest_known_version", "The newest version of the channel HQ offered (0: unknown).",
              field("latest_known_version"));
  per_channel("distd_center_pending_files", "Files of the current plan still to fetch.", field("pending_files"));
  per_channel("distd_center_pending_bytes", "Bytes of the current plan still to fetch.", field("pending_bytes"));
  per_channel("distd_center_last_success_timestamp_seconds",
              "Unix time of the channel's last successful sync (0: never).",
              [](const nlohmann::json& c) { return static_cast<uint64_t>(unix_of(c["last_success"])); });
  per_channel("distd_center_last_attempt_timestamp_seconds", "Unix time of the channel's last sync attempt (0: never).",
              [](const nlohmann::json& c) { return static_cast<uint64_t>(unix_of(c["last_attempt"])); });
  per_channel("distd_center_last_error", "1 when the channel's last sync failed (until a later success), else 0.",
              [](const nlohmann::json& c) { return c["last_error"].is_null() ? 0u : 1u; });
  per_channel("distd_center_warnings", "Warnings the channel's last sync gave (a stale or expiring manifest).",
              [](const nlohmann::json& c) { return static_cast<uint64_t>(c["warnings"].size()); });
  if (const std::optional<uint64_t> avail = available_bytes(cfg.state_dir)) {
    head("distd_center_free_bytes", "Free bytes in the center's state directory.");
    o += "distd_center_free_bytes " + std::to_string(*avail) + "\n";
  }
  head("distd_center_metrics_timestamp_seconds", "Unix time these metrics were written.");
  o += "distd_center_metrics_timestamp_seconds " + std::to_string(now) + "\n";
  return o;
}

std::string center_metrics_path(const Config& cfg) {
  const std::string p = cfg.get_string("regional.metrics_file");
  return p.empty() ? p : cfg.resolve(p);
}

void write_center_metrics(const Config& cfg, const std::function<void(const std::string&)>& log) {
  std::string path;
  try {
    path = center_metrics_path(cfg);
    if (path.empty()) return;
    write_file_atomic(path, render_center_metrics(cfg, static_cast<int64_t>(::time(nullptr))), 0644);
  } catch (const std::exception& e) {
    if (log)
      log("metrics file not written ([regional] metrics_file" + (path.empty() ? "" : " '" + path + "'") +
          "): " + e.what() + "; the sync is not affected");
  }
}

}  // namespace distd
