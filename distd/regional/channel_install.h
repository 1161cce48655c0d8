// The steps that install a verified version of a channel, whichever way its bytes arrive: a
// network sync (sync.cpp) and a bundle import from a stick (distd/bundle/importer.cpp) both
//   1. prepare_channel_plan(): refuse a rollback, keep the target manifest on disk, continue the
//      journal's plan for it or make a new one (priorities, partial downloads carried over);
//   2. install_local_copies(): files that are here under another path, before anything changes;
//   3. bring the rest (their own way), installing verified files in groups: install_verified();
//   4. finish_channel_install(): deletions, record the version, after-install steps.
// REQUIRES for all of them: the regional state lock is held (StateLock).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "distd/config/config.h"
#include "distd/regional/installer.h"
#include "distd/regional/journal.h"
#include "distd/regional/sync.h"
#include "manifest/keys.h"
#include "manifest/manifest.h"

namespace distd {

// The exclusive lock on a regional state directory (<state_dir>/regional.lock) held by a sync,
// a bundle import or a bundle request for as long as they run. Throws Error{usage} when another
// holds it.
class StateLock {
 public:
  explicit StateLock(const std::string& state_dir);
  ~StateLock();
  StateLock(const StateLock&) = delete;
  StateLock& operator=(const StateLock&) = delete;

 private:
  int fd_ = -1;
};

// The [regional] hq_public_key: an inline "ed25519-public ..." key or a key file.
PublicKey regional_pinned_key(const Config& cfg);
// The key HQ signs with now: the pinned key followed through the key records stored under
// <state_dir>/trust/ (distd/regional/trust.h, docs/formats/keys.md).
PublicKey regional_hq_key(const Config& cfg);

// Scans a channel's tree the way a plan needs it: the channel's excludes (and the moodledata
// preset's), special files skipped, the stat cache <state_dir>/statcache/<channel>.sqlite, one
// reader thread. Empty when the tree does not exist yet. log gets "<channel>: scan: ..." lines.
std::vector<Entry> scan_channel_tree(const Config& cfg, const ChannelConfig& ch, const LogLineFn& log);

// The journal's record of the channel. When the journal is new or was lost, the installed
// version is read back from installed.manifest (verified with hq_key) and recorded.
ChannelRecord installed_record(const Config& cfg, const PublicKey& hq_key, Journal& j, const std::string& channel);

struct PlanOptions {
  std::string offered_by = "HQ offered";  // starts a rollback refusal: "the bundle brings", ...
  std::string rollback_hint;              // what to do about a refused rollback
  std::vector<std::string> priority;      // paths or base names; priority_providers() add theirs
  // When the target is the installed version (same digest), report up to date without scanning
  // the tree (a bundle brings nothing then; a sync rather checks that every file is in place).
  bool trust_installed = false;
  LogLineFn log;  // lines start with "<channel>: "
};

struct ChannelPlan {
  std::vector<PlanItem> items;  // in ord order; installed ones included
  uint64_t unchanged = 0;       // entries already in place that a new plan only counts
  bool resumed = false;         // the journal's plan for this very manifest goes on
  bool up_to_date = false;      // the target is installed and in place: nothing to do
  std::string target_file;      // <state_dir>/manifests/<channel>/target.manifest
};

// Checks that sm (verified: pinned key, expiry) is not older than what is installed or being
// installed (Error{rollback}, nothing changed), writes it as the target manifest (body is freed
// afterwards), then continues the journal's unfinished plan for it, or scans the tree and makes
// a new plan (priority from opts and priority_providers()), carrying over the offsets of partly
// fetched whole objects of an older unfinished plan, cleans the staging area of everything else
// and stores the plan. Up to date (the target is the installed version and nothing needs doing):
// no plan is stored and the target file is removed.
// The highest manifest version this center has verified for channel (0 when none is recorded):
// <state_dir>/manifests/<channel>/highest-version, raised by prepare_channel_plan().
uint64_t version_floor(const Config& cfg, const std::string& channel);

// The paths and base names a plan fetches first: given, and what every priority provider
// (priority_providers(): the replica's missing files) names for ch; a provider that fails is
// one log line.
std::set<std::string> plan_priorities(const Config& cfg, const ChannelConfig& ch, const std::vector<std::string>& given,
                                      const LogLineFn& log);

ChannelPlan prepare_channel_plan(const Config& cfg, const ChannelConfig& ch, Journal& j, Installer& inst,
                                 const ChannelRecord& rec, const SignedManifest& sm, std::string& body,
                                 const PlanOptions& opts);

// Puts verified staged files into place together (Installer::install_many: every byte and
// rename durable) and then records them as installed in one journal transaction. A crash in
// between leaves some files in place that the journal still calls pending; a later run finds
// them verified in place (Installer::final_matches) or installs the same bytes again.
// REQUIRES: items[k] belongs to files[k], each staged file verified.
void install_verified(Installer& inst, Journal& j, const std::string& channel, const std::vector<PlanItem*>& items,
                      const std::vector<Installer::Staged>& files);
// The two halves of install_verified(), for a caller that puts files in place on another
// thread: place_verified() touches only the file system (no journal, no PlanItem), then
// record_installed() on the journal's thread.
void place_verified(const Installer& inst, const std::vector<Installer::Staged>& files);
void record_installed(Journal& j, const std::string& channel, const std::vector<PlanItem*>& items);

// Step 2 of every plan: copies from files that are here now (renames, a file in two places)
// are all staged before anything is overwritten, then installed together. Copies whose content
// this plan brings in (their source path is fetched too) wait for the fetch. A copy whose source
// changed becomes a whole download (journal too) and is added to *fell_back. Returns the number
// of files installed.
// Copies from another channel's tree (Action::copy_other) look their channel up in roots; one
// not found there falls back to a full download like a copy whose source changed.
uint64_t install_local_copies(Installer& inst, Journal& j, const std::string& channel, std::vector<PlanItem>& items,
                              const LogLineFn& log, std::vector<PlanItem*>* fell_back = nullptr,
                              const std::map<std::string, std::string>* roots = nullptr);

// True for a copy item whose content this plan fetches (at its basis path); installed after it.
// fetched: path -> the full or delta item at that path.
template <class Map>
bool copies_fetched_content(const PlanItem& it, const Map& fetched) {
  if (it.action != Action::copy || it.basis_path == it.path) return false;
  auto f = fetched.find(it.basis_path);
  return f != fetched.end() && f->second->digest == it.digest;
}

// Step 4, once every file of the target is in place: deletes what the installed version had and
// the target does not, renames the target manifest to installed.manifest, records the version
// and digest (the target's body digest) in the journal (plan finished, success), empties the
// staging area, calls recorded(deleted) and runs the after-install steps (run_after_install).
// Returns the number of files deleted.
uint64_t finish_channel_install(const Config& cfg, const ChannelConfig& ch, const PublicKey& hq_key, Journal& j,
                                Installer& inst, uint64_t version, const Digest& digest,
                                const std::string& target_file, const std::function<void(uint64_t)>& recorded,
                                const LogLineFn& log);

}  // namespace distd
