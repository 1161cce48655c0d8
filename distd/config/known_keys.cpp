#include "distd/config/known_keys.h"

#include <algorithm>
#include <set>

#include "manifest/error.h"

namespace distd {
namespace {

// Sections are tables; [[channel]] is an array of tables whose keys are listed as channel.KEY.
const std::set<std::string> kTables = {"hq", "hq.database", "regional", "replica", "forum"};
const std::string kChannelArray = "channel";

const std::vector<std::string> kKeys = {
    "role", "site", "state_dir",
    // [hq] (docs/config.md, hq.md, courses.md, sneakernet.md)
    "hq", "hq.listen", "hq.secret_key", "hq.public_key", "hq.keep_versions", "hq.expires_days",
    "hq.publish_interval", "hq.threads", "hq.header_timeout", "hq.body_min_rate", "hq.per_peer_connections",
    "hq.uncapped_peers", "hq.renew_after_days", "hq.max_delta_jobs", "hq.delta_cache_bytes", "hq.access_log",
    "hq.require_signed_requests", "hq.request_clock_skew", "hq.sites_dir", "hq.courses_channel",
    "hq.max_expansion_ratio", "hq.php", "hq.compression_level", "hq.batch_compression_level",
    // [hq.database] (courses.md)
    "hq.database", "hq.database.host", "hq.database.port", "hq.database.socket", "hq.database.user",
    "hq.database.password", "hq.database.password_file", "hq.database.database", "hq.database.prefix",
    // [[channel]]
    "channel", "channel.name", "channel.path", "channel.exclude", "channel.preset", "channel.link",
    // [regional] (regional.md, sneakernet.md, courses.md)
    "regional", "regional.hq_url", "regional.hq_public_key", "regional.expiry_slack_days",
    "regional.stale_after_days", "regional.expiry_warning_days", "regional.staging_dir",
    "regional.connect_timeout", "regional.low_speed_limit", "regional.low_speed_time", "regional.bandwidth_limit",
    "regional.big_files_window", "regional.big_file_threshold", "regional.probe_min_seconds",
    "regional.probe_max_seconds", "regional.max_attempts", "regional.file_modes", "regional.request_timeout",
    "regional.max_manifest_size", "regional.site_secret_key", "regional.site_public_key",
    "regional.courses_channel", "regional.courses_dir", "regional.course_hook",
    "regional.metrics_file",
    // [forum] (forum.md)
    "forum", "forum.socket", "forum.socket_group", "forum.send_interval", "forum.max_message_bytes",
    "forum.moodle_dir", "forum.php", "forum.apply_command", "forum.apply_interval",
    // [replica] (replica.md)
    "replica", "replica.host", "replica.port", "replica.socket", "replica.user", "replica.password_file",
    "replica.database", "replica.prefix", "replica.moodle_user", "replica.moodle_host", "replica.filedir",
    "replica.extra_local_tables", "replica.lag_warn_seconds", "replica.gtid_domain_id", "replica.moodle_dir",
    "replica.php", "replica.moodle_purge_command", "replica.cache_watch_seconds", "replica.cache_watch_tables",
};

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The known key nearest to `dotted` in the same section, when near enough to be a typo.
std::string closest(const std::string& dotted) {
  const size_t dot = dotted.rfind('.');
  const std::string section = dot == std::string::npos ? "" : dotted.substr(0, dot + 1);
  std::vector<std::string> same;
  for (const std::string& k : kKeys)
    if (k.compare(0, section.size(), section) == 0 && k.find('.', section.size()) == std::string::npos)
      same.push_back(k.substr(section.size()));
  const std::string near = nearest_word(dotted.substr(section.size()), same);
  return near.empty() ? "" : section + near;
}

std::string shown(const std::string& dotted) {
  return dotted.rfind(kChannelArray + ".", 0) == 0 ? "[[channel]] " + dotted.substr(kChannelArray.size() + 1)
                                                   : dotted;
}

[[noreturn]] void refuse(const std::string& file, const toml::node& n, const std::string& dotted,
                         const std::string& why) {
  const std::string near = why.empty() ? closest(dotted) : "";
  throw Error(Errc::usage,
              "config " + file + " line " + std::to_string(n.source().begin.line) + ": " +
                  (why.empty() ? "unknown key '" + shown(dotted) + "'" : why) +
                  (near.empty() ? "" : " (did you mean '" + shown(near) + "'?)"),
              "every key distd reads is listed in docs/config.md; an unknown key is refused, not ignored, so "
              "that a misspelt setting cannot leave its default in force");
}

void check_table(const toml::table& t, const std::string& prefix, const std::string& file) {
  static const std::set<std::string> known(kKeys.begin(), kKeys.end());
  for (const auto& [key, node] : t) {
    const std::string dotted = prefix + std::string(key.str());
    if (!known.count(dotted)) refuse(file, node, dotted, "");
    if (kTables.count(dotted)) {
      if (!node.is_table()) refuse(file, node, dotted, "'" + dotted + "' must be a section: write [" + dotted + "]");
      check_table(*node.as_table(), dotted + ".", file);
    } else if (dotted == kChannelArray) {
      const toml::array* arr = node.as_array();
      if (!arr || (!arr->empty() && !arr->is_array_of_tables()))
        refuse(file, node, dotted, "'channel' must be a list of [[channel]] tables");
      for (const toml::node& ch : *arr) check_table(*ch.as_table(), kChannelArray + ".", file);
    }
  }
}

}  // namespace

const std::vector<std::string>& known_config_keys() { return kKeys; }

std::string nearest_word(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const std::string& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

void check_known_keys(const toml::table& table, const std::string& file) { check_table(table, "", file); }

}  // namespace distd
