// One sync of a regional center: fetch and verify the latest signed manifest of a channel, plan,
// fetch (local copy, librsync delta or whole object, resuming from the journal's offsets),
// verify, install, delete what the new version dropped, record the installed version.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "distd/config/config.h"
#include "distd/net/http_client.h"
#include "distd/regional/installer.h"
#include "distd/regional/journal.h"
#include "manifest/error.h"
#include "manifest/keys.h"

namespace distd {

// The [regional] section of the config (see docs/config.md).
struct RegionalSettings {
  std::string hq_url;
  PublicKey hq_key;
  int64_t expiry_slack_days = 30;
  // [regional] staging_dir, or <state_dir>/staging when unset: the bundle import's spool (.bundle/).
  std::string staging_dir;
  bool staging_dir_set = false;      // staging_dir was configured: then channels stage in <staging_dir>/<channel>
  // Where a channel's downloads wait to be renamed into its tree: <staging_dir>/<channel> when
  // staging_dir is set, else <path>/.distd-staging, which is on the tree's own mount, so renames
  // work under systemd's ReadWritePaths= bind mounts with no drop-in (docs/regional.md).
  std::string channel_staging(const ChannelConfig& ch) const;
  long connect_timeout = 30;         // seconds
  long low_speed_limit = 64;         // bytes/s ...
  long low_speed_time = 60;          // ... for this many seconds: the transfer is aborted
  uint64_t bandwidth_limit = 0;      // bytes/s, 0 = unlimited
  std::string big_files_window;      // "22:00-06:00" (local time), empty = any time
  int window_start_min = -1, window_end_min = -1;
  uint64_t big_file_threshold = 10 * 1024 * 1024;
  int64_t probe_min_seconds = 10, probe_max_seconds = 900;
  int max_attempts = 3;
  long request_timeout = 3600;       // seconds: the most one HTTP request may take (downloads resume after it)
  uint64_t max_manifest_size = uint64_t(32) << 20;  // bytes: a bigger latest.manifest is refused unread
  FileModes file_modes = FileModes::safe;            // [regional] file_modes: "safe" or "signed"
  int64_t stale_after_days = 7, expiry_warning_days = 14;  // freshness warnings (freshness.h)
  std::string site_secret_key, site_public_key;  // this center's key pair; <state_dir>/site.key, site.pub
  std::string site;                               // the config's site id

  // Throws Error{usage} naming the key and what to write.
  static RegionalSettings from(const Config& cfg);
  // Only expiry_slack_days, staging_dir, file_modes and the site key pair, with the same defaults, checking
  // nothing else: what a bundle import or request reads, at a center with or without hq_url.
  // Throws Error{usage} when one of them has the wrong type.
  static RegionalSettings offline(const Config& cfg);
  // True when big files may be fetched at unix time `now` (always true without a window).
  bool big_files_allowed(int64_t now) const;
  // The HTTP client's limits for the link to HQ (timeouts, low-speed abort; no bandwidth cap),
  // and the site key that signs its POSTs (created when the center has none yet).
  HttpOptions link_options(const std::atomic<bool>* stop) const;
  // This center's key pair, created (secret 0600, public 0644) when there is none. *created says
  // whether it was. Throws Error{usage} when the two files do not belong together.
  KeyPair site_keys(bool* created = nullptr) const;
};

struct SyncProgress {
  std::string channel;
  std::string current;           // path being fetched
  uint64_t wire_bytes = 0;       // bytes received from HQ in this run
  uint64_t bytes_done = 0;       // content bytes of this run's work that are installed or staged
  uint64_t bytes_total = 0;      // content bytes this run has to bring in
  uint64_t files_done = 0, files_total = 0;
};

struct SyncOptions {
  // Fetched first: paths or base names (moodledata: SHA-1 content hashes the DB references).
  std::vector<std::string> priority;
  bool honour_window = true;  // false: big files are fetched now, window or not
  int64_t now = 0;            // 0 = the clock (tests pass a time to exercise the window)
  const std::atomic<bool>* stop = nullptr;
  // bytes/s for this run instead of [regional] bandwidth_limit (0: no cap); none: the config's
  std::optional<uint64_t> bandwidth_limit;
  std::function<void(const SyncProgress&)> progress;  // called often; throttle in the callee
  std::function<void(const std::string&)> log;        // one human line per notable event
};

struct ChannelResult {
  std::string channel;
  uint64_t from_version = 0, to_version = 0;
  bool converged = false;
  bool up_to_date = false;  // nothing to do: the installed version is HQ's latest
  uint64_t unchanged = 0, copied = 0, delta = 0, full = 0, deleted = 0;
  uint64_t delta_fallbacks = 0, rejected = 0;  // deltas that became full downloads; bytes that did not verify
  uint64_t bytes_received = 0, bytes_sent = 0;  // on the wire, this run
  uint64_t content_bytes = 0;                   // size of what had to come in (copies excluded)
  uint64_t deferred_files = 0, deferred_bytes = 0;  // big files waiting for the window
  uint64_t failed_files = 0;
  bool ok = true;               // false when an error stopped or spoiled the run
  Errc code = Errc::internal;   // when !ok
  std::string error, hint;      // when !ok, or a summary when not converged
  std::vector<std::string> warnings;  // HQ's manifest is old or expires soon (freshness.h)
};

struct SyncResult {
  std::vector<ChannelResult> channels;
  bool converged() const;
};

// A run that ended cleanly while big files wait for the time window exits kExitDeferred (75,
// EX_TEMPFAIL; manifest/error.h).

// Syncs one channel. Returns the result; errors that stop the run (bad signature, rollback,
// expired, network, disk full, ...) are thrown as distd::Error after being recorded in the
// journal. Only one sync runs at a time per state directory (Error{usage} otherwise).
ChannelResult sync_channel(const Config& cfg, const std::string& channel, const SyncOptions& opts);

// Syncs every configured channel; per-channel errors land in the results (ok = false). After a
// network error the remaining channels are not tried (the link is down).
SyncResult sync_all(const Config& cfg, const SyncOptions& opts);

// Extension points: the engines above the center's sync plug in here, and the mains compose them
// (register_plugins() in distd/plugins.h); this engine names none of them. Both run inside the
// sync's state lock; a bundle import calls them the same way.
//  - after_install_hooks(): run by run_after_install() once a channel converged (a new version
//    installed, or already up to date), e.g. the course engine rebuilding course archives. An
//    exception is logged, never fails the sync.
//  - priority_providers(): extra priority names (paths or base names) when a channel is planned,
//    e.g. the files the database replica already references, or the published courses' files.
// Both start empty. REQUIRES: filled before the first sync, from one thread.
using LogLineFn = std::function<void(const std::string&)>;
using AfterInstallFn = std::function<void(const Config&, const ChannelConfig&, const LogLineFn& log)>;
using PriorityFn = std::function<std::vector<std::string>(const Config&, const ChannelConfig&)>;
std::vector<AfterInstallFn>& after_install_hooks();
std::vector<PriorityFn>& priority_providers();
void run_after_install(const Config& cfg, const ChannelConfig& ch, const LogLineFn& log);

// Paths of the regional state (for status and tests).
std::string journal_path(const Config& cfg);
// The journal opened read-only (status, metrics, reports, sync --dry-run); null when there is
// none yet (nothing synced). Throws Error{database} for a damaged one.
std::unique_ptr<Journal> open_journal_read_only(const Config& cfg);
std::string installed_manifest_path(const Config& cfg, const std::string& channel);

}  // namespace distd
