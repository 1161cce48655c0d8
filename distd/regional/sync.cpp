#include "distd/regional/sync.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "distd/delta/rsync.h"
#include "distd/io/background_hasher.h"
#include "distd/io/pause.h"
#include "distd/net/http_client.h"
#include "distd/regional/channel_install.h"
#include "distd/regional/other_channels.h"
#include "distd/regional/delta_request.h"
#include "distd/regional/freshness.h"
#include "distd/regional/installer.h"
#include "distd/regional/journal.h"
#include "distd/regional/planner.h"
#include "distd/regional/sync_run.h"
#include "distd/regional/trust.h"
#include "manifest/encoding.h"
#include "manifest/fault.h"
#include "manifest/fs.h"
#include "manifest/manifest.h"
#include "manifest/scan.h"

namespace distd {

bool SyncResult::converged() const {
  for (auto& c : channels)
    if (!c.converged) return false;
  return !channels.empty();
}

std::vector<AfterInstallFn>& after_install_hooks() {
  static std::vector<AfterInstallFn> hooks;  // filled by the mains (distd/plugins.h)
  return hooks;
}

std::vector<PriorityFn>& priority_providers() {
  static std::vector<PriorityFn> providers;  // filled by the mains (distd/plugins.h)
  return providers;
}

void run_after_install(const Config& cfg, const ChannelConfig& ch, const LogLineFn& log) {
  for (auto& hook : after_install_hooks()) {
    try {
      hook(cfg, ch, log);
    } catch (const std::exception& e) {
      if (log) log(ch.name + ": after-install step failed: " + e.what());
    }
  }
}

std::string journal_path(const Config& cfg) { return cfg.state_dir + "/journal.sqlite"; }
std::unique_ptr<Journal> open_journal_read_only(const Config& cfg) {
  const std::string p = journal_path(cfg);
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return nullptr;
  return std::make_unique<Journal>(p, Journal::ReadOnly{});
}
std::string installed_manifest_path(const Config& cfg, const std::string& channel) {
  return cfg.state_dir + "/manifests/" + channel + "/installed.manifest";
}

// ---------------------------------------------------------------------------------------------
// The run (its rooms: manifest_fetch.cpp, item_fetch.cpp, batch_fetch.cpp)

namespace {

using namespace sync_detail;

// The work of one plan, in three steps (local copies, downloads, copies of what was
// downloaded), and what the steps share: the paths copies take their content from, and which
// items wait for the big-files window. One per execute(); REQUIRES: items outlives it and is not
// resized (the maps point into it).
class Execution {
 public:
  Execution(Run& r, std::vector<PlanItem>& items) : r_(r), items_(items) {
    int64_t now = r.opts.now ? r.opts.now : now_s();
    big_ok_ = !r.opts.honour_window || r.rs.big_files_allowed(now);
    for (auto& it : items_)
      if (it.action == Action::copy && it.basis_path != it.path) copy_sources_.insert(it.basis_path);
    for (auto& it : items_)
      if ((it.action == Action::full || it.action == Action::delta) && copy_sources_.count(it.path))
        fetched_.emplace(it.path, &it);
  }

  // Carries out every step. Returns true when every item is installed.
  bool run() {
    count_totals();
    copy_local();
    download();
    copy_fetched();
    return all_installed();
  }

 private:
  // True for an item that waits for the big-files window.
  bool deferred(const PlanItem& it) const { return !big_ok_ && !it.priority && it.size > r_.rs.big_file_threshold; }
  // True for an item that may come in a batch (a small whole object not begun).
  bool batchable(const PlanItem& it) const {
    return !r_.batches_unsupported && it.action == Action::full && it.size <= kBatchObjectMax && it.offset == 0 &&
           (it.state == ItemState::planned || it.state == ItemState::fetching || it.state == ItemState::failed);
  }

  // Adds the items not installed yet to the progress totals (the bytes of those fetched now).
  void count_totals() {
    for (auto& it : items_) {
      if (it.state == ItemState::installed) continue;
      r_.prog.files_total++;
      if ((it.action == Action::full || it.action == Action::delta) && !deferred(it)) {
        r_.prog.bytes_total += it.size;
        r_.res.content_bytes += it.size;
      }
    }
  }

  // 1. Copies from files here now (renames, duplicates), before anything is overwritten. A copy
  // whose source changed becomes a download.
  void copy_local() {
    std::vector<PlanItem*> fell_back;
    const ChannelRoots roots = channel_roots(r_.cfg);
    uint64_t copied = install_local_copies(*r_.inst, r_.j, r_.ch.name, items_, r_.opts.log, &fell_back, &roots);
    r_.res.copied += copied;
    r_.prog.files_done += copied;
    for (PlanItem* it : fell_back) {
      if (copy_sources_.count(it->path)) fetched_.emplace(it->path, it);
      if (!deferred(*it)) {
        r_.prog.bytes_total += it->size;
        r_.res.content_bytes += it->size;
      }
    }
  }

  // 2. Downloads, in plan order (priority, then small first): small whole objects in batches,
  // the others (and a batch that brought nothing) one by one with retries.
  void download() {
    uint64_t done = 0;
    std::vector<PlanItem*> order;
    for (auto& it : items_)
      if ((it.action == Action::full || it.action == Action::delta) && it.state != ItemState::installed)
        order.push_back(&it);
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->ord < b->ord; });
    for (size_t i = 0; i < order.size();) {
      PlanItem* it = order[i];
      if (it->state == ItemState::installed) {  // a batch brought it ahead of its turn
        ++i;
        continue;
      }
      if (deferred(*it)) {
        r_.res.deferred_files++;
        r_.res.deferred_bytes += it->size;
        ++i;
        continue;
      }
      if (it->state == ItemState::failed) set_state(r_, *it, ItemState::planned);  // a new run, a new chance
      if (batchable(*it)) {
        if (!fetch_next_batch(order, i, done)) continue;
        it = order[i];  // nothing came through: this one the careful way (retries, backoff)
      }
      fetch_item(r_, *it, done);
      if (it->state == ItemState::installed) done += it->size;
      r_.prog.bytes_done = done;
      r_.progress(true);
      ++i;
    }
  }

  // One batch of the small whole objects from order[i] on (REQUIRES: batchable(*order[i])),
  // many per request, installed together; i moves past what is installed. Returns true when
  // order[i] is to be fetched the careful way now (the batch brought nothing), false when the
  // download loop goes on from i.
  bool fetch_next_batch(const std::vector<PlanItem*>& order, size_t& i, uint64_t& done) {
    std::vector<PlanItem*> group;
    uint64_t bytes = 0;
    size_t j = i;
    const size_t limit = r_.batch_limit ? r_.batch_limit : kBatchFiles;
    for (; j < order.size() && group.size() < limit && bytes < kBatchBytes; ++j) {
      if (order[j]->state == ItemState::installed || deferred(*order[j])) continue;
      // A delta not begun waits for its turn: the small objects around it still share one
      // request and one compression stream (a course update interleaves them by size).
      if (order[j]->action == Action::delta && order[j]->delta_id.empty() && order[j]->offset == 0) continue;
      if (!batchable(*order[j])) break;
      group.push_back(order[j]);
      bytes += order[j]->size;
    }
    const size_t asked = group.size();
    bool progressed = fetch_batch(r_, group, done);
    if (r_.batch_missing) {
      // HQ lacks an object of this batch (404): bisect. Halves go on as batches, so finding
      // it costs about 2 log2(n) requests, not one failing request per object after it.
      r_.batch_missing = false;
      if (asked > 1) {
        r_.batch_limit = std::max<size_t>(1, asked / 2);
        return false;
      }
      r_.batch_limit = 0;  // alone, it takes the careful way below, which records why it is missing
    } else if (progressed) {
      r_.batch_limit = 0;
    }
    while (i < order.size() && order[i]->state == ItemState::installed) ++i;
    if (progressed || i >= order.size() || r_.batches_unsupported) return false;
    return !deferred(*order[i]);
  }

  // 3. Copies of content fetched above (the same new file at several paths), installed in
  // groups; a copy whose content did not come is recorded failed (or deferred with it).
  void copy_fetched() {
    std::vector<PlanItem*> copies;
    std::vector<Installer::Staged> copy_group;
    for (auto& it : items_) {
      if (!copies_fetched_content(it, fetched_) || it.state == ItemState::installed) continue;
      PlanItem* leader = fetched_.find(it.basis_path)->second;
      if (leader->state != ItemState::installed) {
        if (deferred(*leader)) {
          r_.res.deferred_files++;
          r_.res.deferred_bytes += it.size;
        } else {
          record_failure(r_, it, "its content ('" + leader->path + "') could not be fetched");
        }
        continue;
      }
      std::string sp = r_.inst->staged("c" + std::to_string(it.ord) + ".copy");
      if (!r_.inst->stage_copy(it.basis_path, sp, it.digest, it.size, /*sync=*/false)) {
        record_failure(r_, it, "copying '" + it.basis_path + "' did not verify (was it changed locally?)");
        continue;
      }
      copies.push_back(&it);
      copy_group.push_back({sp, it.path, it.mode});
      if (copies.size() >= kBatchFiles) {
        install_group(r_, copies, copy_group);
        r_.res.copied += copies.size();
        copies.clear();
        copy_group.clear();
      }
    }
    install_group(r_, copies, copy_group);
    r_.res.copied += copies.size();
  }

  // True when every item is installed; counts the unchanged ones in the result.
  bool all_installed() {
    bool all = true;
    for (auto& it : items_) {
      if (it.state != ItemState::installed) all = false;
      else if (it.action == Action::unchanged) r_.res.unchanged++;
    }
    return all;
  }

  Run& r_;
  std::vector<PlanItem>& items_;
  bool big_ok_ = true;
  // path (in items) -> delta/full item, for the paths copy items take their content from
  std::unordered_set<std::string_view> copy_sources_;
  std::unordered_map<std::string_view, PlanItem*> fetched_;
};

// The work of one plan. Returns true when every item is installed.
bool execute(Run& r, std::vector<PlanItem>& items) { return Execution(r, items).run(); }

ChannelResult run_channel(const Config& cfg, const RegionalSettings& rs, const ChannelConfig& ch,
                          const SyncOptions& opts, Journal& j) {
  ChannelResult res;
  res.channel = ch.name;
  HttpOptions ho = rs.link_options(opts.stop);
  ho.max_recv_speed = opts.bandwidth_limit.value_or(rs.bandwidth_limit);
  HttpClient http(rs.hq_url, ho);
  Run r(cfg, rs, ch, opts, j, http, res);
  r.prog.channel = ch.name;
  http.options().on_wire_bytes = [&](uint64_t) { r.progress(); };

  j.record_attempt(ch.name);
  ChannelRecord rec = installed_record(cfg, rs.hq_key, j, ch.name);
  res.from_version = rec.installed_version;

  // 1. The manifest: signed by the pinned key, not expired beyond the slack, not older.
  std::string body;
  VerifyOptions vo;
  vo.now = opts.now;
  vo.expiry_slack_seconds = rs.expiry_slack_days * 86400;
  std::optional<SignedManifest> verified;
  for (bool whole : {false, true}) {
    try {
      body = fetch_manifest(r, whole);
    } catch (const Error& e) {
      if (e.code() == Errc::network) j.record_link(false, e.what());
      throw;
    }
    try {
      verified.emplace(verify_hq_manifest(cfg, body, rs.hq_key, vo, http.url("/channels/" + ch.name + "/latest.manifest")));
      break;
    } catch (const Error& e) {
      // A delta-built manifest that does not verify is fetched whole once (a damaged delta must
      // not stop a sync); the whole one's verdict stands.
      if (whole || e.code() == Errc::expired) throw;
      r.log(std::string("manifest built from a delta did not verify (") + e.what() + "); fetching it whole");
    }
  }
  j.record_link(true, "manifest of " + ch.name + " fetched");
  SignedManifest sm = std::move(*verified);
  verified.reset();
  const Manifest& m = sm.manifest;
  if (m.channel != ch.name)
    throw Error(Errc::mismatch, "HQ's manifest for channel '" + ch.name + "' is for channel '" + m.channel + "'",
                "check [regional] hq_url and the channel names at HQ");
  const Digest digest = sm.body_digest;
  res.to_version = m.version;
  j.set_latest_known(ch.name, m.version);
  res.warnings = freshness_warnings(m, opts.now ? opts.now : static_cast<int64_t>(::time(nullptr)),
                                    {rs.stale_after_days, rs.expiry_warning_days, rs.expiry_slack_days});
  for (const auto& w : res.warnings) r.log("warning: " + w);
  j.set_warnings(ch.name, res.warnings);
  // 2. The plan: continue the journal's plan for this very manifest, or make a new one.
  r.inst = std::make_unique<Installer>(ch.path, rs.channel_staging(ch), rs.file_modes);
  PlanOptions po;
  po.rollback_hint =
      "nothing was changed (a replayed or rolled-back manifest?); if HQ really restored an older state, it must "
      "publish a new, higher version";
  po.priority = opts.priority;
  po.log = opts.log;
  ChannelPlan cp = prepare_channel_plan(cfg, ch, j, *r.inst, rec, sm, body, po);
  if (cp.up_to_date) {
    res.up_to_date = res.converged = true;
    res.unchanged = cp.unchanged;
    j.record_success(ch.name);
    r.log("up to date (version " + std::to_string(m.version) + ")");
    run_after_install(cfg, ch, [&r](const std::string& s) { r.log(s); });
    return res;
  }
  std::vector<PlanItem> items = std::move(cp.items);
  uint64_t unchanged = cp.unchanged;  // not planned: counted only
  const std::string target_file = cp.target_file;
  r.wire_base = http.bytes_received();

  // 3. Fetch, verify, install. The manifest's entries are not needed meanwhile (the deletions
  // read the target file again): their memory goes to the plan.
  std::vector<Entry>().swap(sm.manifest.entries);
  bool all = execute(r, items);
  std::vector<PlanItem>().swap(items);
  res.unchanged += unchanged;
  res.bytes_received = http.bytes_received();
  res.bytes_sent = http.bytes_sent();
  r.progress(true);
  if (!all) {
    res.converged = false;
    if (res.failed_files == 0 && res.deferred_files > 0) {
      res.error = std::to_string(res.deferred_files) + " big files (" + human_bytes(res.deferred_bytes) +
                  ") wait for the big-files window " + rs.big_files_window;
      res.hint = "they are fetched inside the window; run 'distctl sync --now' to fetch them at once";
    } else {
      res.ok = false;
      if (res.code == Errc::internal) res.code = Errc::mismatch;
      res.error = std::to_string(res.failed_files) + " files of channel '" + ch.name +
                  "' could not be installed; first: " + res.error;
      res.hint = "see 'distctl status' for each file's last error; the next run tries them again";
    }
    j.record_error(ch.name, res.error);
    return res;
  }

  // 4. Deletions, only now that the whole new version is in place; then record it.
  res.deleted = finish_channel_install(
      cfg, ch, rs.hq_key, j, *r.inst, m.version, digest, target_file,
      [&](uint64_t deleted) {
        res.converged = true;
        r.log("installed version " + std::to_string(m.version) + " (" + std::to_string(res.copied) + " copied, " +
              std::to_string(res.delta) + " by delta, " + std::to_string(res.full) + " whole, " +
              std::to_string(deleted) + " deleted; " + human_bytes(res.bytes_received) + " received)");
      },
      opts.log);
  return res;
}

}  // namespace

ChannelResult sync_channel(const Config& cfg, const std::string& channel, const SyncOptions& opts) {
  cfg.require_role("regional", "sync runs at a regional center");
  RegionalSettings rs = RegionalSettings::from(cfg);
  const ChannelConfig& ch = cfg.channel(channel);
  StateLock lock(cfg.state_dir);
  // A rotated HQ key first (docs/formats/keys.md): the manifests below are signed with it.
  rs.hq_key = follow_keys_over_link(cfg, rs.hq_url, rs.link_options(opts.stop), opts.log);
  Journal j(journal_path(cfg));
  if (!j.rebuilt_from().empty() && opts.log)
    opts.log("warning: the journal was damaged (" + j.damage() + "); it was moved to " + j.rebuilt_from() +
             " and a new one started: the installed versions come from installed.manifest, and this sync "
             "re-plans from the files on disk (downloads in progress start over)");
  try {
    return run_channel(cfg, rs, ch, opts, j);
  } catch (const Error& e) {
    try {
      j.record_error(channel, e.what());
    } catch (...) {
    }
    throw;
  }
}

SyncResult sync_all(const Config& cfg, const SyncOptions& opts) {
  SyncResult out;
  if (cfg.channels.empty())
    throw Error(Errc::usage, "config " + cfg.file + " has no [[channel]]", "add the channels this center receives");
  for (const auto& ch : cfg.channels) {
    try {
      out.channels.push_back(sync_channel(cfg, ch.name, opts));
    } catch (const Error& e) {
      ChannelResult r;
      r.channel = ch.name;
      r.ok = false;
      r.code = e.code();
      r.error = e.what();
      r.hint = e.hint();
      out.channels.push_back(r);
      if (e.code() == Errc::network || e.code() == Errc::usage || e.code() == Errc::no_space) break;
    }
  }
  return out;
}

}  // namespace distd
