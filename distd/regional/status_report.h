// What a center says of itself: each channel's journal record (distctl status prints it) and the
// status report the center POSTs to HQ after every sync (POST /report, docs/formats/http.md), so
// that HQ sees which center holds which version (docs/hq.md "The fleet: which centers hold what").
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "distd/config/config.h"

namespace distd {

class Journal;

// One channel: installed and latest known version, pending files and bytes (while a plan is not
// done), last attempt, success and error, warnings, and the unfinished items (all of them, or
// none with with_items false: a plan may hold 100,000). j may be null (never synced).
nlohmann::json channel_status_json(const ChannelConfig& ch, Journal* j, bool with_items = true);

inline constexpr size_t kMaxReportBytes = 64 * 1024;

// The report's body: compact JSON, "format": "distd-report 1", at most kMaxReportBytes (warning
// lists and long errors are cut, then channels dropped). Reads the journal read-only.
std::string status_report_body(const Config& cfg, int64_t now);

// POSTs the report to [regional] hq_url, signed with the site key. Best effort: a failure is
// one line to log, never an exception.
void send_status_report(const Config& cfg, const std::function<void(const std::string&)>& log);

}  // namespace distd
