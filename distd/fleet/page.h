// GET /fleet: HQ's view of its centers as one self-contained HTML page (docs/hq.md "The fleet"),
// for a person with a browser or a phone. The same fleet_view() as distctl fleet and
// GET /metrics; one inline <style>, no script, no external asset, readable 360 px wide.
//
// Every text a report carries (site names, errors, warnings, versions, "how") is attacker-
// influenced: it is HTML-escaped here, and the route also sends a Content-Security-Policy that
// allows no script at all (kPageHeaders).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "distd/config/config.h"
#include "distd/fleet/fleet.h"

namespace distd::fleet {

// distctl fleet's default --stale-after (48 h).
inline constexpr int64_t kPageStaleAfter = 48 * 3600;

// The headers GET /fleet answers with, besides Content-Type (kPageContentType).
inline constexpr const char* kPageContentType = "text/html; charset=utf-8";
std::vector<std::pair<std::string, std::string>> page_headers();

struct PageContext {
  int64_t now = 0;                            // unix time the page is as of
  int64_t stale_after = kPageStaleAfter;      // seconds, shown in the legend
  std::string hq_site;                        // [site] of HQ, shown in the title
  std::map<std::string, uint64_t> hq_latest;  // HQ's latest version per channel (0: none)
};

// The page for sites as of ctx.now: a summary line (N sites, M need attention), then one row per
// site, the flagged ones first (else in sites' order). Pure: no I/O.
std::string render_fleet_page(const std::vector<SiteView>& sites, const PageContext& ctx);

// Reads the fleet (fleet_view, stale after kPageStaleAfter) and renders it as of now.
std::string render_fleet_page(const Config& cfg, int64_t now);

// & < > " ' as entities; everything else as it is.
std::string html_escape(std::string_view text);

// "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago"; "in 5 min" for a time ahead of now.
std::string relative_age(int64_t seconds_ago);

}  // namespace distd::fleet
