#include "distd/fleet/fleet.h"

#include <algorithm>
#include <fstream>
#include <mutex>
#include <sstream>

#include "distd/hq/layout.h"
#include "distd/hq/settings.h"
#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/request_auth.h"
#include "manifest/version.h"
#include "manifest/fs.h"

namespace distd::fleet {
namespace {

std::mutex store_mu;  // one report at a time rewrites a history file

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::string latest_path(const Config& cfg, const std::string& site) { return fleet_dir(cfg) + "/" + site + ".json"; }
std::string history_path(const Config& cfg, const std::string& site) {
  return fleet_dir(cfg) + "/" + site + ".history.jsonl";
}

std::string label(const std::string& v) {  // a Prometheus label value, escaped
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string fleet_dir(const Config& cfg) { return cfg.state_dir + "/fleet"; }

ReportReply handle_report(const Config& cfg, const std::string& signer, const std::string& body, int64_t now) {
  if (body.size() > kMaxReportBytes)
    return {413, "a status report has at most " + std::to_string(kMaxReportBytes) + " bytes"};
  nlohmann::json r = nlohmann::json::parse(body, nullptr, false);
  if (!r.is_object() || r.value("format", "") != "distd-report 1" || !r.contains("site") || !r["site"].is_string() ||
      !r.contains("channels") || !r["channels"].is_array())
    return {400, "the body is not a \"distd-report 1\" status report (docs/formats/http.md, POST /report)"};
  const std::string site = r["site"];
  if (site != signer)
    return {403, "the report is about site '" + site + "' but signed by site '" + signer +
                     "'; a center reports only itself"};
  if (!valid_site_id(site)) return {400, "site id '" + site + "' cannot name a report file"};
  store_report(cfg, site, std::move(r), "link", now);
  return {200, "report of site " + site + " stored"};
}

bool store_report(const Config& cfg, const std::string& site, nlohmann::json report, const std::string& how,
                  int64_t now, bool only_if_newer) {
  report["how"] = how;
  report["received"] = now;
  const std::string line = report.dump();
  std::lock_guard<std::mutex> g(store_mu);
  if (only_if_newer) {  // a stick's report may be older than the one the link brought meanwhile
    auto time_of = [](const nlohmann::json& j) {
      auto it = j.find("time");
      return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : int64_t{-1};
    };
    nlohmann::json old;
    try {
      old = nlohmann::json::parse(read_file(latest_path(cfg, site), kMaxReportBytes + 4096, "report"), nullptr, false);
    } catch (const Error&) {  // none stored yet
    }
    if (old.is_object() && time_of(old) > time_of(report)) return false;
  }
  make_dirs(fleet_dir(cfg), 0750);
  write_file_atomic(latest_path(cfg, site), line + "\n", 0640);
  // The history: the last kHistory lines kept, rewritten whole (a power cut leaves the old one).
  std::vector<std::string> lines;
  try {
    std::istringstream in(read_file(history_path(cfg, site), kHistory * (kMaxReportBytes + 256), "report history"));
    for (std::string l; std::getline(in, l);)
      if (!l.empty()) lines.push_back(l);
  } catch (const Error&) {  // none yet, or too big: start again
  }
  lines.push_back(line);
  if (lines.size() > kHistory) lines.erase(lines.begin(), lines.end() - kHistory);
  std::string out;
  for (auto& l : lines) out += l + "\n";
  write_file_atomic(history_path(cfg, site), out, 0640);
  return true;
}

std::map<std::string, uint64_t> hq_latest_versions(const Config& cfg) {
  std::map<std::string, uint64_t> out;
  hq::Layout layout{cfg.state_dir};
  for (const auto& ch : cfg.channels) {
    uint64_t v = 0;
    try {
      // The header names the version on its third line: no need to read (or verify) every entry.
      std::ifstream f(layout.latest_manifest(ch.name), std::ios::binary);
      std::string head(4096, '\0');
      f.read(head.data(), static_cast<std::streamsize>(head.size()));
      head.resize(static_cast<size_t>(f.gcount()));
      auto at = head.find("\nversion ");
      if (at != std::string::npos) {
        auto end = head.find('\n', at + 9);
        if (auto p = parse_u64(head.substr(at + 9, end == std::string::npos ? std::string::npos : end - at - 9)))
          v = *p;
      }
    } catch (const std::exception&) {
    }
    out[ch.name] = v;
  }
  return out;
}

std::vector<SiteView> fleet_view(const Config& cfg, int64_t now, int64_t stale_after) {
  std::map<std::string, SiteView> sites;
  for (const auto& name : list_dir(hq::hq_settings(cfg).sites_dir))
    if (ends_with(name, ".pub") && valid_site_id(name.substr(0, name.size() - 4))) {
      auto& v = sites[name.substr(0, name.size() - 4)];
      v.enrolled = true;
    }
  for (const auto& name : list_dir(fleet_dir(cfg)))
    if (ends_with(name, ".json") && valid_site_id(name.substr(0, name.size() - 5))) sites[name.substr(0, name.size() - 5)];
  const auto latest = hq_latest_versions(cfg);
  std::vector<SiteView> out;
  for (auto& [site, v] : sites) {
    v.site = site;
    try {
      nlohmann::json r = nlohmann::json::parse(read_file(latest_path(cfg, site), kMaxReportBytes + 4096, "report"));
      v.seen = true;
      read_report(r, latest, v);
    } catch (const std::exception&) {  // none (never seen), or unreadable: not seen
      SiteView blank;
      blank.site = v.site;
      blank.enrolled = v.enrolled;
      v = std::move(blank);
    }
    set_flags(v, now, stale_after);
    out.push_back(std::move(v));
  }
  return out;
}

nlohmann::json to_json(const SiteView& v) {
  auto utc = [](int64_t t) { return t ? nlohmann::json(format_utc(t)) : nlohmann::json(nullptr); };
  auto unix_or_null = [](int64_t t) { return t ? nlohmann::json(t) : nlohmann::json(nullptr); };
  auto text = [](const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); };
  nlohmann::json chans = nlohmann::json::array();
  for (const auto& c : v.channels)
    chans.push_back({{"channel", c.channel},
                     {"installed_version", c.installed},
                     {"latest_known_version", c.latest_known},
                     {"hq_latest_version", c.hq_latest},
                     {"pending_files", c.pending_files},
                     {"pending_bytes", c.pending_bytes},
                     {"plan_started", utc(c.plan_started)},
                     {"last_success", utc(c.last_success)},
                     {"last_error", text(c.last_error)},
                     {"last_error_code", text(c.last_error_code)},
                     {"last_error_time", utc(c.last_error_time)},
                     {"manifest_expires", utc(c.manifest_expires)},
                     {"manifest_expires_unix", unix_or_null(c.manifest_expires)},
                     {"warnings", c.warnings},
                     {"flags", c.flags}});
  nlohmann::json replica = nullptr;
  if (v.replica)
    replica = {{"configured", v.replica->configured},
               {"ok", v.replica->ok},
               {"reachable", v.replica->reachable},
               {"lag_seconds", v.replica->lag_seconds ? nlohmann::json(*v.replica->lag_seconds) : nullptr},
               {"error", text(v.replica->error)},
               {"warnings", v.replica->warnings}};
  return {{"site", v.site},
          {"enrolled", v.enrolled},
          {"last_seen", v.seen ? nlohmann::json(format_utc(v.received)) : nullptr},
          {"last_seen_unix", v.seen ? nlohmann::json(v.received) : nullptr},
          {"how", v.seen ? nlohmann::json(v.how) : nullptr},
          {"distd_version", v.seen ? nlohmann::json(v.distd_version) : nullptr},
          {"free_bytes", v.free_bytes ? nlohmann::json(*v.free_bytes) : nullptr},
          {"replica", replica},
          {"outbox_posts", v.outbox_posts ? nlohmann::json(*v.outbox_posts) : nullptr},
          {"channels", chans},
          {"flags", v.flags}};
}

std::string render_metrics(const Config& cfg, int64_t now) {
  constexpr int64_t kUpWithin = 48 * 3600;  // distd_site_up: a report within 48 h (distctl fleet's default)
  const auto sites = fleet_view(cfg, now, kUpWithin);
  std::string o;
  auto head = [&](const char* name, const char* help) {
    o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n";
  };
  head("distd_build_info", "distd's version at HQ.");
  o += std::string("distd_build_info{version=\"") + distd_version() + "\"} 1\n";
  head("distd_channel_latest_version", "HQ's latest published version of the channel (0: none).");
  for (const auto& [ch, v] : hq_latest_versions(cfg))
    o += "distd_channel_latest_version{channel=\"" + label(ch) + "\"} " + std::to_string(v) + "\n";
  head("distd_site_up", "1 when the site reported within 48 hours, else 0.");
  for (const auto& s : sites)
    o +=
        "distd_site_up{site=\"" + label(s.site) + "\"} " + (s.seen && now - s.received <= kUpWithin ? "1" : "0") + "\n";
  head("distd_site_last_seen_seconds", "Unix time HQ received the site's latest status report.");
  for (const auto& s : sites)
    if (s.seen)
      o += "distd_site_last_seen_seconds{site=\"" + label(s.site) + "\"} " + std::to_string(s.received) + "\n";
  head("distd_site_free_bytes", "Free bytes in the site's state directory, as it reported.");
  for (const auto& s : sites)
    if (s.free_bytes)
      o += "distd_site_free_bytes{site=\"" + label(s.site) + "\"} " + std::to_string(*s.free_bytes) + "\n";
  auto per_channel = [&](const char* name, const char* help, uint64_t SiteChannel::*field) {
    head(name, help);
    for (const auto& s : sites)
      for (const auto& c : s.channels)
        o += std::string(name) + "{site=\"" + label(s.site) + "\",channel=\"" + label(c.channel) + "\"} " +
             std::to_string(c.*field) + "\n";
  };
  per_channel("distd_site_installed_version", "The version the site has installed (0: none).", &SiteChannel::installed);
  per_channel("distd_site_pending_files", "Files the site still has to fetch.", &SiteChannel::pending_files);
  per_channel("distd_site_pending_bytes", "Bytes the site still has to fetch.", &SiteChannel::pending_bytes);
  head("distd_site_manifest_expires_timestamp_seconds", "Unix time the site's installed manifest expires.");
  for (const auto& s : sites)
    for (const auto& c : s.channels)
      if (c.manifest_expires)
        o += "distd_site_manifest_expires_timestamp_seconds{site=\"" + label(s.site) + "\",channel=\"" +
             label(c.channel) + "\"} " + std::to_string(c.manifest_expires) + "\n";
  head("distd_site_replica_ok", "1 when the site's database replica is reachable, replicating and within its lag limit.");
  for (const auto& s : sites)
    if (s.replica && s.replica->configured)
      o += "distd_site_replica_ok{site=\"" + label(s.site) + "\"} " + (s.replica->ok ? "1" : "0") + "\n";
  head("distd_site_replica_lag_seconds", "Seconds the site's database replica is behind HQ's, as it reported.");
  for (const auto& s : sites)
    if (s.replica && s.replica->lag_seconds)
      o += "distd_site_replica_lag_seconds{site=\"" + label(s.site) + "\"} " + std::to_string(*s.replica->lag_seconds) +
           "\n";
  head("distd_site_outbox_posts", "Forum posts waiting at the site for HQ's answer.");
  for (const auto& s : sites)
    if (s.outbox_posts)
      o += "distd_site_outbox_posts{site=\"" + label(s.site) + "\"} " + std::to_string(*s.outbox_posts) + "\n";
  return o;
}

}  // namespace distd::fleet
