// HQ's view of its centers (docs/hq.md "The fleet: which centers hold what"): the status reports
// centers POST to /report after every sync, stored per site, and what distctl fleet and
// GET /metrics make of them.
//
//   <state_dir>/fleet/<site>.json           the latest report, with "how" and "received" added
//   <state_dir>/fleet/<site>.history.jsonl  the last kHistory reports, one a line, oldest first
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "distd/config/config.h"

namespace distd::fleet {

inline constexpr size_t kHistory = 50;
inline constexpr size_t kMaxReportBytes = 64 * 1024;

struct ReportReply {
  int status = 200;
  std::string body;
};

// POST /report, its signature already verified as signer's: 400 for a body that is not a
// "distd-report 1" object of at most kMaxReportBytes, 403 when its site is not signer; else
// stores it (received at now, how = "link") and answers 200.
ReportReply handle_report(const Config& cfg, const std::string& signer, const std::string& body, int64_t now);

// Writes a report as received at `now` (how: "link", or "stick" from a request). With
// only_if_newer, stores nothing and returns false when the stored report's "time" (the center's
// clock) is later than this one's (at the same second the later arrival wins). Throws Error{io,no_space}.
bool store_report(const Config& cfg, const std::string& site, nlohmann::json report, const std::string& how,
                  int64_t now, bool only_if_newer = false);

std::string fleet_dir(const Config& cfg);

// HQ's latest published version per configured channel (0: none published).
std::map<std::string, uint64_t> hq_latest_versions(const Config& cfg);

// Times are unix seconds, 0 when the report did not say (never, or an older distd).
struct SiteChannel {
  std::string channel;
  uint64_t installed = 0, latest_known = 0, hq_latest = 0, pending_files = 0, pending_bytes = 0;
  int64_t last_success = 0;
  int64_t last_error_time = 0;
  std::string last_error;
  std::string last_error_code;   // a refusal: bad_signature, rollback, expired, corrupt, unsafe_path
  int64_t manifest_expires = 0;  // the installed manifest's "expires"
  int64_t plan_started = 0;      // when the unfinished plan (pending files) started
  std::vector<std::string> warnings;
  std::vector<std::string> flags;  // this channel's: behind, stuck, refusing, error, expiring, warning
};

// The report's "replica" section: the center's MariaDB replica of HQ's Moodle database.
struct SiteReplica {
  bool configured = false;  // the center has a [replica] section
  bool ok = false;          // reachable, both threads running, lag within its lag_warn_seconds
  bool reachable = false;
  std::optional<int64_t> lag_seconds;  // Seconds_Behind_Master; none while a thread is stopped
  std::string error;
  std::vector<std::string> warnings;
};

struct SiteView {
  std::string site;
  bool enrolled = false;  // <sites_dir>/<site>.pub exists
  bool seen = false;      // a report is stored
  int64_t received = 0;   // when HQ got the latest report
  std::string how;        // "link" or "stick"
  std::string distd_version;
  std::optional<uint64_t> free_bytes;
  int64_t expiry_warning_days = 0;       // the center's [regional] expiry_warning_days (0: not said)
  std::optional<SiteReplica> replica;    // none: the report has no "replica" section
  std::optional<uint64_t> outbox_posts;  // forum posts waiting for HQ; none: not said
  std::vector<SiteChannel> channels;
  // never-seen, stale, behind, stuck, refusing, error, expiring, replica, warning (kFlags order)
  std::vector<std::string> flags;
};

// Every flag, in the order views list them (docs/hq.md "The fleet").
inline constexpr const char* kFlags[] = {"never-seen", "stale",    "behind",  "stuck",  "refusing",
                                         "error",      "expiring", "replica", "warning"};
inline constexpr int64_t kExpiringWithin = 3 * 86400;  // expiring: at least this, or the center's window
inline constexpr int64_t kReplicaLagLimit = 3600;      // replica: lag above this (or not ok)

// Every enrolled site and every site that reported, sorted by name. stale_after: seconds.
std::vector<SiteView> fleet_view(const Config& cfg, int64_t now, int64_t stale_after);
nlohmann::json to_json(const SiteView& v);

// A stored report's fields (report: the JSON HQ stored) into v; hq_latest per channel from latest.
void read_report(const nlohmann::json& report, const std::map<std::string, uint64_t>& latest, SiteView& v);
// v.flags and each channel's flags, as of now (docs/hq.md "The fleet" has the rules).
void set_flags(SiteView& v, int64_t now, int64_t stale_after);

// GET /metrics: Prometheus text exposition format 0.0.4.
std::string render_metrics(const Config& cfg, int64_t now);

}  // namespace distd::fleet
