#include "distd/regional/status_report.h"

#include <sys/stat.h>

#include <fstream>
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

std::vector<ReportSection>& report_sections() {
  static std::vector<ReportSection> sections;
  return sections;
}

std::string refusal_code(const std::string& e) {
  auto has = [&](const char* s) { return e.find(s) != std::string::npos; };
  // Wording of the throws in manifest/manifest.cpp, manifest/path.cpp, manifest/key_record.cpp,
  // regional/channel_install.cpp and regional/trust.cpp; tests/test_fleet.cpp holds one of each.
  if (has("has a bad signature") || has(" is signed by key ") || has(" is signed by HQ's key ") ||
      has("the signature does not verify") || (has("the signature of key") && has("does not verify")))
    return "bad_signature";
  if (has(") expired on ")) return "expired";
  if (has("; refusing to go back") || (has(" a different manifest with the installed version ") && has("refusing it")))
    return "rollback";
  if (has(": path '") || has(" is a symbolic link; refusing to ") || (has("manifest entry ") && has(" appears twice")))
    return "unsafe_path";
  if (e.rfind("manifest ", 0) == 0 &&
      (has(" is truncated") || has(" is empty") || has(" is larger than 1 GiB") || has(" does not start with '") ||
       has(" has data after the signature line") || has(" line ")))
    return "corrupt";
  return {};
}

namespace {

constexpr size_t kMaxWarnings = 8;     // per channel in a report
constexpr size_t kMaxTextBytes = 512;  // per warning or error in a report

std::string cut(const std::string& s) { return s.size() <= kMaxTextBytes ? s : s.substr(0, kMaxTextBytes) + "..."; }

nlohmann::json utc_or_null(int64_t t) { return t ? nlohmann::json(format_utc(t)) : nlohmann::json(nullptr); }

// The "expires" line of the installed manifest's header (verified when it was installed), 0
// when there is none. The header is the first lines: no need to read 100,000 entries.
int64_t installed_manifest_expires(const Config& cfg, const std::string& channel) {
  std::ifstream f(installed_manifest_path(cfg, channel), std::ios::binary);
  if (!f) return 0;
  std::string head(4096, '\0');
  f.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(f.gcount()));
  auto at = head.find("\nexpires ");
  if (at == std::string::npos) return 0;
  auto end = head.find('\n', at + 9);
  if (end == std::string::npos) return 0;
  return parse_utc(head.substr(at + 9, end - at - 9)).value_or(0);
}

nlohmann::json section_json(const Config& cfg, const ReportSection& s) {
  try {
    nlohmann::json j = s.fn(cfg);
    if (j.dump().size() > kMaxSectionBytes) return {{"error", "section too big"}};
    return j;
  } catch (const std::exception& e) {
    return {{"error", cut(e.what())}};
  }
}

}  // namespace

std::string status_report_body(const Config& cfg, int64_t now) {
  std::unique_ptr<Journal> j = open_journal_read_only(cfg);
  nlohmann::json chans = nlohmann::json::array();
  for (const auto& ch : cfg.channels) {
    nlohmann::json c = channel_status_json(ch, j.get(), false);
    for (const char* k : {"path", "unfinished", "last_attempt"}) c.erase(k);
    c["last_error_code"] = nullptr;
    if (c["last_error"].is_string()) {
      const std::string code = refusal_code(c["last_error"].get<std::string>());
      if (!code.empty()) c["last_error_code"] = code;
      c["last_error"] = cut(c["last_error"].get<std::string>());
    }
    c["manifest_expires"] = utc_or_null(installed_manifest_expires(cfg, ch.name));
    std::optional<RunPlan> plan = j ? j->plan(ch.name) : std::nullopt;
    c["plan_started"] = utc_or_null(plan && !plan->done ? plan->started : 0);
    nlohmann::json w = nlohmann::json::array();
    for (const auto& s : c["warnings"])
      if (w.size() < kMaxWarnings) w.push_back(cut(s.get<std::string>()));
    if (c["warnings"].size() > kMaxWarnings)
      w.push_back("... and " + std::to_string(c["warnings"].size() - kMaxWarnings) + " more");
    c["warnings"] = std::move(w);
    chans.push_back(std::move(c));
  }
  const std::optional<uint64_t> avail = available_bytes(cfg.state_dir);
  const nlohmann::json free = avail ? nlohmann::json(*avail) : nlohmann::json(nullptr);
  nlohmann::json r = {{"format", "distd-report 1"}, {"site", cfg.site},  {"time", now},
                      {"distd_version", distd_version()},   {"channels", chans}, {"free_bytes", free}};
  try {
    r["expiry_warning_days"] = RegionalSettings::from(cfg).expiry_warning_days;
  } catch (const std::exception&) {  // a broken [regional] section: the sync says so, not the report
  }
  for (const auto& s : report_sections()) r[s.name] = section_json(cfg, s);
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
