#include "distd/regional/freshness.h"

#include "manifest/encoding.h"

namespace distd {

namespace {

std::string days(int64_t seconds) {
  int64_t d = seconds / 86400;
  return std::to_string(d) + (d == 1 ? " day" : " days");
}

}  // namespace

std::vector<std::string> freshness_warnings(const Manifest& m, int64_t now, const FreshnessLimits& lim) {
  std::vector<std::string> out;
  const std::string what = "HQ's newest manifest of channel '" + m.channel + "' (version " + std::to_string(m.version) + ")";
  if (lim.stale_after_days > 0 && now - m.created > lim.stale_after_days * 86400)
    out.push_back(what + " was signed " + days(now - m.created) + " ago (" + format_utc(m.created) +
                  "), more than stale_after_days = " + std::to_string(lim.stale_after_days) +
                  ": HQ may be stuck or frozen. Check HQ's publish timer (publish_interval) and its logs; if HQ "
                  "publishes less often on purpose, raise [regional] stale_after_days");
  if (now > m.expires) {
    int64_t left = m.expires + lim.expiry_slack_days * 86400 - now;
    out.push_back(what + " expired " + days(now - m.expires) + " ago (" + format_utc(m.expires) +
                  "); it is accepted for " + days(left > 0 ? left : 0) + " more (expiry_slack_days = " +
                  std::to_string(lim.expiry_slack_days) + "), then syncs stop with exit 7. HQ must publish (it "
                  "re-signs an unchanged channel)");
  } else if (lim.expiry_warning_days > 0 && m.expires - now < lim.expiry_warning_days * 86400) {
    out.push_back(what + " expires in " + days(m.expires - now) + " (" + format_utc(m.expires) +
                  "), less than expiry_warning_days = " + std::to_string(lim.expiry_warning_days) +
                  ": HQ has not re-signed it; check HQ's publish timer (publish_interval) and its logs");
  }
  return out;
}

}  // namespace distd
