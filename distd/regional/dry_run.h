// distctl sync --dry-run: what a sync of one channel would do now, without doing it.
//
// Fetches HQ's latest manifest (as a delta when HQ can, like a sync) and verifies it exactly as
// a sync does (pinned key followed through HQ's key records in memory, expiry, rollback), then
// plans it against the tree (or continues the journal's unfinished plan for the same manifest)
// and measures the free space of the staging and tree file systems.
//
// Writes nothing to the tree, the staging area, the journal (opened read-only), manifests/ or
// trust/. Its only writes: the lock file <state_dir>/regional.lock (created if missing, never
// written into) and the stat cache <state_dir>/statcache/<channel>.sqlite that any scan of the
// tree refreshes (sizes and times of files it hashed; a later sync then need not hash them
// again). The site key is used when it exists, never created.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "distd/config/config.h"
#include "distd/regional/sync.h"

namespace distd {

// 1 MiB more than the files need: the journal, the manifests, a directory or two.
constexpr uint64_t kDryRunSpaceMargin = uint64_t(1) << 20;

struct DryRunPlan {
  std::string channel;
  uint64_t from_version = 0, to_version = 0;
  bool up_to_date = false;  // the installed version is HQ's latest and every file is in place
  bool resumed = false;     // the journal's unfinished plan for this manifest would go on
  // Files by what they need (not yet installed ones only); deleted: in the installed version,
  // not in the new one.
  uint64_t unchanged = 0, copy = 0, delta = 0, full = 0, deleted = 0;
  // Bytes HQ sends in this run, by kind: whole objects (size minus what a cut download already
  // holds); deltas: the delta's size when HQ already made it, else the new file's size, the most
  // a delta costs (HQ sends one only when delta + signature <= 90% of the file, otherwise the
  // whole object comes).
  uint64_t full_bytes = 0, delta_bytes = 0;
  uint64_t fetch_bytes = 0;      // full_bytes + delta_bytes: an upper bound, HTTP overhead aside
  uint64_t signature_bytes = 0;  // sent to HQ: the deltas' basis signatures (estimated from sizes)
  uint64_t deferred_files = 0, deferred_bytes = 0;  // big files that wait for the window (not counted above)
  uint64_t bandwidth_limit = 0;  // bytes/s of this run (--bwlimit or [regional] bandwidth_limit); 0: no cap
  int64_t eta_seconds = -1;      // fetch_bytes at the cap, rounded up; -1 without a cap
  // Space: the bytes the new files take in staging before any replaced or deleted file frees
  // its own (copies included, cut downloads' bytes already there not), plus kDryRunSpaceMargin.
  uint64_t space_needed = 0;
  uint64_t staging_free = 0, tree_free = 0;  // bytes available to this user
  std::string staging_dir, tree_dir;         // where they were measured (the nearest existing directory)
  bool space_ok = true;
  std::vector<std::string> warnings;  // HQ's manifest is old or expires soon (freshness.h)
};

// The plan of one channel. Uses opts.priority, honour_window, now, stop, log and
// bandwidth_limit (progress is not called). Throws what a sync would throw before it changes
// anything: Error{usage, busy (the state lock), network, not_found, bad_signature, expired,
// rollback, corrupt, database}. A lack of space is not thrown: space_ok says it.
DryRunPlan dry_run_channel(const Config& cfg, const std::string& channel, const SyncOptions& opts);

}  // namespace distd
