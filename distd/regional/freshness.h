// Is HQ still signing? A center that verifies HQ's newest manifest over a working link warns
// (sync log, `sync --json` "warnings", `distctl status`) when that manifest is old — HQ's
// publisher may be stuck or HQ frozen — and when it expires soon or is already living on
// [regional] expiry_slack_days. Without this, an expired manifest inside the slack read as
// "up to date" for up to expires_days + expiry_slack_days (docs/regional.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "manifest/manifest.h"

namespace distd {

struct FreshnessLimits {
  int64_t stale_after_days = 7;     // [regional] stale_after_days; 0 = never warn
  int64_t expiry_warning_days = 14;  // [regional] expiry_warning_days; 0 = never warn
  int64_t expiry_slack_days = 30;
};

// The warnings for HQ's newest manifest m at unix time now (empty when all is well), each one
// line naming the channel, what is wrong, and what to do.
std::vector<std::string> freshness_warnings(const Manifest& m, int64_t now, const FreshnessLimits& lim);

}  // namespace distd
