#include "distd/regional/status_report.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <memory>

#include "distd/net/http_client.h"
#include "distd/regional/journal.h"
#include "distd/regional/sync.h"
#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/version.h"

namespace distd {

nlohmann::json channel_status_json(const ChannelConfig& ch, Journal* j, bool with_items) {
  ChannelRecord rec;
  Pending pend;
  std::vector<PlanItem> unfinished;
  if (j) {
    rec = j->channel_record(ch.name);
    auto plan = j->plan(ch.name);
    if (plan && !plan->done) {
      pend = j->pending(ch.name);
      if (with_items) unfinished = j->unfinished_items(ch.name, -1);
    }
  }
  auto utc = [](int64_t t) { return t ? nlohmann::json(format_utc(t)) : nlohmann::json(nullptr); };
  nlohmann::json c = {{"channel", ch.name},
                      {"path", ch.path},
                      {"installed_version", rec.installed_version},
                      {"latest_known_version", rec.latest_known_version},
                      {"pending_files", pend.files},
                      {"pending_bytes", pend.bytes},
                      {"last_attempt", utc(rec.last_attempt)},
                      {"last_success", utc(rec.last_success)},
                      {"last_error", rec.last_error.empty() ? nullptr : nlohmann::json(rec.last_error)},
                      {"last_error_time", utc(rec.last_error_time)},
                      {"warnings", rec.warnings},
                      {"unfinished", nlohmann::json::array()}};
  for (auto& it : unfinished)
    c["unfinished"].push_back({{"path", it.path},
                               {"size", it.size},
                               {"action", action_name(it.action)},
                               {"state", state_name(it.state)},
                               {"offset", it.offset},
                               {"attempts", it.attempts},
                               {"last_error", it.last_error}});
  return c;
}

namespace {

constexpr size_t kMaxWarnings = 8;     // per channel in a report
constexpr size_t kMaxTextBytes = 512;  // per warning or error in a report

std::string cut(const std::string& s) { return s.size() <= kMaxTextBytes ? s : s.substr(0, kMaxTextBytes) + "..."; }

}  // namespace

std::string status_report_body(const Config& cfg, int64_t now) {
  std::unique_ptr<Journal> j;
  struct stat st {};
  const std::string jp = journal_path(cfg);
  if (::stat(jp.c_str(), &st) == 0) j = std::make_unique<Journal>(jp, Journal::ReadOnly{});
  nlohmann::json chans = nlohmann::json::array();
  for (const auto& ch : cfg.channels) {
    nlohmann::json c = channel_status_json(ch, j.get(), false);
    for (const char* k : {"path", "unfinished", "last_attempt"}) c.erase(k);
    if (c["last_error"].is_string()) c["last_error"] = cut(c["last_error"].get<std::string>());
    nlohmann::json w = nlohmann::json::array();
    for (const auto& s : c["warnings"])
      if (w.size() < kMaxWarnings) w.push_back(cut(s.get<std::string>()));
    if (c["warnings"].size() > kMaxWarnings)
      w.push_back("... and " + std::to_string(c["warnings"].size() - kMaxWarnings) + " more");
    c["warnings"] = std::move(w);
    chans.push_back(std::move(c));
  }
  struct statvfs vfs {};
  nlohmann::json free = nullptr;
  if (::statvfs(cfg.state_dir.c_str(), &vfs) == 0) free = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  nlohmann::json r = {{"format", "distd-report 1"}, {"site", cfg.site},  {"time", now},
                      {"distd_version", distd_version()},   {"channels", chans}, {"free_bytes", free}};
  std::string body = r.dump();
  while (body.size() > kMaxReportBytes && !r["channels"].empty()) {  // hundreds of channels: the first ones
    r["channels"].erase(r["channels"].size() - 1);
    r["truncated"] = true;
    body = r.dump();
  }
  return body;
}

void send_status_report(const Config& cfg, const std::function<void(const std::string&)>& log) {
  auto say = [&](const std::string& s) {
    if (log) log(s);
  };
  try {
    RegionalSettings rs = RegionalSettings::from(cfg);
    HttpOptions ho = rs.link_options(nullptr);
    ho.request_timeout_s = std::min<long>(ho.request_timeout_s ? ho.request_timeout_s : 60, 60);
    HttpClient http(rs.hq_url, ho);
    HttpAnswer a = http.post("/report", status_report_body(cfg, static_cast<int64_t>(::time(nullptr))), 4096);
    if (a.status != 200) {
      std::string why = a.body.substr(0, a.body.find('\n'));
      say("status report not taken by HQ (HTTP " + std::to_string(a.status) +
          (why.empty() ? "" : ": " + why.substr(0, 300)) + "); the sync is not affected");
    }
  } catch (const std::exception& e) {
    say(std::string("status report not sent: ") + e.what() + "; the sync is not affected");
  }
}

}  // namespace distd
