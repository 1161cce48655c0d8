#include "distd/regional/sync.h"

#include <sys/stat.h>

#include <cstdlib>
#include <memory>

#include "distd/regional/channel_install.h"
#include "manifest/error.h"
#include "manifest/fs.h"
#include "manifest/manifest.h"
#include "manifest/path.h"

namespace distd {

// [regional] settings: parsed once per run, with their defaults (docs/config.md).

namespace {

int parse_hhmm(const std::string& s) {
  if (s.size() != 5 || s[2] != ':' || !isdigit(s[0]) || !isdigit(s[1]) || !isdigit(s[3]) || !isdigit(s[4])) return -1;
  int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
  return h < 24 && m < 60 ? h * 60 + m : -1;
}

// The keys that need no link to HQ, with their defaults.
void read_offline_keys(const Config& cfg, RegionalSettings& s) {
  s.site = cfg.site;
  s.expiry_slack_days = cfg.get_int("regional.expiry_slack_days", 30);
  s.staging_dir_set = !cfg.get_string("regional.staging_dir", "").empty();
  s.staging_dir = cfg.resolve(cfg.get_string("regional.staging_dir", cfg.state_dir + "/staging"));
  s.site_secret_key = cfg.resolve(cfg.get_string("regional.site_secret_key", cfg.state_dir + "/site.key"));
  s.site_public_key = cfg.resolve(cfg.get_string("regional.site_public_key", cfg.state_dir + "/site.pub"));
  s.expiry_warning_days = cfg.get_int("regional.expiry_warning_days", 14);
  if (s.expiry_warning_days < 0)
    throw Error(Errc::usage, "config " + cfg.file + ": [regional] expiry_warning_days must be 0 (off) or a number of days",
                "the default is 14");
  std::string modes = cfg.get_string("regional.file_modes", "safe");
  if (modes != "safe" && modes != "signed")
    throw Error(Errc::usage, "config " + cfg.file + ": [regional] file_modes = '" + modes + "' is neither \"safe\" nor \"signed\"",
                "write file_modes = \"safe\" (0644, or 0755 for files HQ signed executable) or \"signed\" (HQ's "
                "permission bits, without setuid, setgid or sticky)");
  s.file_modes = modes == "signed" ? FileModes::as_signed : FileModes::safe;
}

}  // namespace

std::string RegionalSettings::channel_staging(const ChannelConfig& ch) const {
  return staging_dir_set ? staging_dir + "/" + ch.name : ch.path + "/" + std::string(kStagingDirName);
}

RegionalSettings RegionalSettings::offline(const Config& cfg) {
  RegionalSettings s;
  read_offline_keys(cfg, s);
  return s;
}

RegionalSettings RegionalSettings::from(const Config& cfg) {
  RegionalSettings s;
  const std::string where = "config " + cfg.file + ": ";
  s.hq_url = cfg.require_string("regional.hq_url");
  if (s.hq_url.rfind("http://", 0) != 0 && s.hq_url.rfind("https://", 0) != 0)
    throw Error(Errc::usage, where + "[regional] hq_url '" + s.hq_url + "' is not an http:// or https:// URL",
                "write e.g. hq_url = \"http://hq.example.org:8080\"");
  s.hq_key = regional_hq_key(cfg);
  read_offline_keys(cfg, s);
  s.connect_timeout = cfg.get_int("regional.connect_timeout", 30);
  s.low_speed_limit = cfg.get_int("regional.low_speed_limit", 64);
  s.low_speed_time = cfg.get_int("regional.low_speed_time", 60);
  int64_t bw = cfg.get_int("regional.bandwidth_limit", 0);
  s.big_files_window = cfg.get_string("regional.big_files_window", "");
  int64_t thr = cfg.get_int("regional.big_file_threshold", 10 * 1024 * 1024);
  s.probe_min_seconds = cfg.get_int("regional.probe_min_seconds", 10);
  s.probe_max_seconds = cfg.get_int("regional.probe_max_seconds", 900);
  s.max_attempts = static_cast<int>(cfg.get_int("regional.max_attempts", 3));
  s.request_timeout = cfg.get_int("regional.request_timeout", 3600);
  s.stale_after_days = cfg.get_int("regional.stale_after_days", 7);

  int64_t mms = cfg.get_int("regional.max_manifest_size", int64_t(32) << 20);
  if (s.expiry_slack_days < 0 || s.connect_timeout <= 0 || s.low_speed_limit < 0 || s.low_speed_time <= 0 || bw < 0 ||
      thr < 0 || s.probe_min_seconds <= 0 || s.probe_max_seconds < s.probe_min_seconds || s.max_attempts < 1 ||
      s.request_timeout <= 0 || s.stale_after_days < 0 || s.expiry_warning_days < 0 || mms < 4096 || static_cast<uint64_t>(mms) > kMaxManifestBytes)
    throw Error(Errc::usage,
                where + "[regional]: expiry_slack_days, bandwidth_limit, big_file_threshold, low_speed_limit, "
                        "stale_after_days, expiry_warning_days must be "
                        ">= 0; connect_timeout, low_speed_time, probe_min_seconds, max_attempts, request_timeout > 0; "
                        "probe_max_seconds >= probe_min_seconds; max_manifest_size from 4096 to " +
                        std::to_string(kMaxManifestBytes) + " bytes",
                "fix the values in the [regional] section (see docs/config.md)");
  s.max_manifest_size = static_cast<uint64_t>(mms);
  s.bandwidth_limit = static_cast<uint64_t>(bw);
  s.big_file_threshold = static_cast<uint64_t>(thr);
  if (!s.big_files_window.empty()) {
    auto dash = s.big_files_window.find('-');
    if (dash != std::string::npos) {
      s.window_start_min = parse_hhmm(s.big_files_window.substr(0, dash));
      s.window_end_min = parse_hhmm(s.big_files_window.substr(dash + 1));
    }
    if (s.window_start_min < 0 || s.window_end_min < 0)
      throw Error(Errc::usage, where + "[regional] big_files_window '" + s.big_files_window + "' is not HH:MM-HH:MM",
                  "write e.g. big_files_window = \"22:00-06:00\" (local time; may wrap past midnight)");
  }
  return s;
}

HttpOptions RegionalSettings::link_options(const std::atomic<bool>* stop) const {
  HttpOptions ho;
  ho.connect_timeout_s = connect_timeout;
  ho.low_speed_limit = low_speed_limit;
  ho.low_speed_time = low_speed_time;
  ho.request_timeout_s = request_timeout;
  ho.stop = stop;
  auto signer = std::make_shared<RequestSigner>();
  signer->site = site;
  signer->key = site_keys().sec;
  ho.signer = std::move(signer);
  return ho;
}

KeyPair RegionalSettings::site_keys(bool* created) const {
  struct stat st {};
  if (created) *created = false;
  if (::stat(site_secret_key.c_str(), &st) != 0) {
    make_dirs(dir_name(site_secret_key), 0750);
    make_dirs(dir_name(site_public_key), 0755);
    write_keypair(generate_keypair(), site_secret_key, site_public_key);
    if (created) *created = true;
  }
  KeyPair kp;
  kp.sec = load_secret_key(site_secret_key);
  kp.pub = kp.sec.public_key();
  if (::stat(site_public_key.c_str(), &st) == 0 && load_public_key(site_public_key).bytes != kp.pub.bytes)
    throw Error(Errc::usage,
                "the site public key " + site_public_key + " does not belong to the site secret key " + site_secret_key,
                "delete the wrong one (or fix [regional] site_public_key); HQ must enroll the public key of " +
                    site_secret_key);
  return kp;
}

bool RegionalSettings::big_files_allowed(int64_t now) const {
  if (window_start_min < 0) return true;
  time_t t = static_cast<time_t>(now);
  struct tm lt {};
  localtime_r(&t, &lt);
  int m = lt.tm_hour * 60 + lt.tm_min;
  if (window_start_min == window_end_min) return true;
  if (window_start_min < window_end_min) return m >= window_start_min && m < window_end_min;
  return m >= window_start_min || m < window_end_min;  // wraps past midnight
}

}  // namespace distd
