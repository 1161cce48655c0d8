// What a center says of itself: each channel's journal record (distctl status prints it) and the
// status report the center POSTs to HQ after every sync (POST /report, docs/formats/http.md), so
// that HQ sees which center holds which version (docs/hq.md "The fleet: which centers hold what").
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "distd/config/config.h"

namespace distd {

class Journal;

// One channel: installed and latest known version, pending files and bytes (while a plan is not
// done), last attempt, success and error, warnings, and the unfinished items (all of them, or
// none with with_items false: a plan may hold 100,000). j may be null (never synced).
nlohmann::json channel_status_json(const ChannelConfig& ch, Journal* j, bool with_items = true);

inline constexpr size_t kMaxReportBytes = 64 * 1024;

// A part of the report that an engine above regional/ knows (the replica's health, the forum
// outbox's depth): distd/plugins.cpp registers them, this folder names none. fn returns the
// section's JSON; it runs during every report, so it must answer within seconds even when what
// it asks is down. A section that throws is sent as {"error": what}; one over kMaxSectionBytes as
// {"error": "section too big"}.
struct ReportSection {
  std::string name;  // the report's top-level key, e.g. "replica"
  std::function<nlohmann::json(const Config&)> fn;
};
std::vector<ReportSection>& report_sections();
inline constexpr size_t kMaxSectionBytes = 4096;

// "bad_signature", "rollback", "expired", "corrupt" or "unsafe_path" when a journal's last_error
// is one of distd's refusals of what HQ (or a stick) offered, else "". The journal keeps only
// the message, so this reads the message's wording (manifest/manifest.cpp, channel_install.cpp).
std::string refusal_code(const std::string& last_error);

// The report's body: compact JSON, "format": "distd-report 1", at most kMaxReportBytes (warning
// lists and long errors are cut, then channels dropped). Reads the journal read-only, each
// installed manifest's header (its expiry), then runs report_sections().
std::string status_report_body(const Config& cfg, int64_t now);

// POSTs the report to [regional] hq_url, signed with the site key. Best effort: a failure is
// one line to log, never an exception.
void send_status_report(const Config& cfg, const std::function<void(const std::string&)>& log);

}  // namespace distd
