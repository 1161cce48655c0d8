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

// Writes a report as received (how: "link"; a stick is a later step). Throws Error{io,no_space}.
void store_report(const Config& cfg, const std::string& site, nlohmann::json report, const std::string& how,
                  int64_t now);

std::string fleet_dir(const Config& cfg);

// HQ's latest published version per configured channel (0: none published).
std::map<std::string, uint64_t> hq_latest_versions(const Config& cfg);

struct SiteChannel {
  std::string channel;
  uint64_t installed = 0, latest_known = 0, hq_latest = 0, pending_files = 0, pending_bytes = 0;
  std::string last_error;
  std::vector<std::string> warnings;
};

struct SiteView {
  std::string site;
  bool enrolled = false;  // <sites_dir>/<site>.pub exists
  bool seen = false;      // a report is stored
  int64_t received = 0;   // when HQ got the latest report
  std::string how;        // "link"
  std::string distd_version;
  std::optional<uint64_t> free_bytes;
  std::vector<SiteChannel> channels;
  std::vector<std::string> flags;  // never-seen, stale, behind, error, warning
};

// Every enrolled site and every site that reported, sorted by name. stale_after: seconds.
std::vector<SiteView> fleet_view(const Config& cfg, int64_t now, int64_t stale_after);
nlohmann::json to_json(const SiteView& v);

// GET /metrics: Prometheus text exposition format 0.0.4.
std::string render_metrics(const Config& cfg, int64_t now);

}  // namespace distd::fleet
