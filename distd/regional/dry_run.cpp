#include "distd/regional/dry_run.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <unordered_set>

#include "distd/delta/rsync.h"
#include "distd/net/http_client.h"
#include "distd/regional/channel_install.h"
#include "distd/regional/freshness.h"
#include "distd/regional/journal.h"
#include "distd/regional/other_channels.h"
#include "distd/regional/planner.h"
#include "distd/regional/sync_run.h"
#include "distd/regional/trust.h"
#include "manifest/error.h"
#include "manifest/fs.h"
#include "manifest/key_record.h"

namespace distd {
namespace {

using namespace sync_detail;

void say(const LogLineFn& log, const std::string& s) {
  if (log) log(s);
}

// The link's options; signed by the site key only when it exists (a dry run creates none: HQ
// then serves the whole manifest, which verifies the same).
HttpOptions link_options_as_is(const RegionalSettings& rs, const std::atomic<bool>* stop) {
  if (exists_file(rs.site_secret_key)) return rs.link_options(stop);
  HttpOptions ho;
  ho.connect_timeout_s = rs.connect_timeout;
  ho.low_speed_limit = rs.low_speed_limit;
  ho.low_speed_time = rs.low_speed_time;
  ho.request_timeout_s = rs.request_timeout;
  ho.stop = stop;
  return ho;
}

// The key HQ signs with now: the pinned key through the stored records, then through HQ's newer
// records, which are verified as a sync verifies them but kept in memory only.
PublicKey hq_key_in_memory(const Config& cfg, const RegionalSettings& rs, const HttpOptions& ho, const LogLineFn& log) {
  TrustedKey tk = trusted_hq_key(cfg, regional_pinned_key(cfg), log);
  PublicKey key = tk.key;
  uint64_t version = tk.version;
  try {
    HttpClient http(rs.hq_url, ho);
    for (uint64_t n = 0; n < kMaxKeyRecordsPerRun; ++n) {
      std::string path = "/keys/" + std::to_string(version + 1) + ".keys";
      HttpAnswer a = http.get(path, kMaxKeyRecordBytes);
      if (a.status != 200) break;  // 404: the end of the chain (a sync warns about other answers)
      KeyRecord rec = verify_key_record(a.body, key, version + 1, http.url(path));
      key = rec.key;
      version = rec.version;
      say(log, "HQ's signing key is now " + key.short_id() + " (key record " + std::to_string(version) +
                   "; a dry run does not store it)");
    }
  } catch (const Error& e) {
    if (e.code() != Errc::network) throw;
    say(log, std::string("warning: could not ask HQ for new key records: ") + e.what());
  }
  return key;
}

// The journal read-only, or an empty one in memory when nothing was synced yet.
std::unique_ptr<Journal> journal_or_empty(const Config& cfg) {
  std::unique_ptr<Journal> j = open_journal_read_only(cfg);
  return j ? std::move(j) : std::make_unique<Journal>(":memory:");
}

// The nearest existing directory at or above path.
std::string existing_dir(std::string p) {
  for (;;) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) return p;
    auto slash = p.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    p.resize(slash);
  }
}

// Bytes of the file system holding dir that this user may fill.
uint64_t free_bytes(const std::string& dir) {
  const std::optional<uint64_t> n = available_bytes(dir);
  if (!n) throw_errno("cannot measure the free space of", dir, errno);
  return *n;
}

// About the size of the librsync signature of a basis of `size` bytes (header, then a weak and
// a strong sum per block: distd/delta/rsync.h signature_params).
uint64_t signature_estimate(uint64_t size) {
  size_t block = 0, strong = 0;
  signature_params(size, &block, &strong);
  return 12 + (size + block - 1) / block * (4 + strong);
}

// What is installed: the journal's record, or installed.manifest when the journal has none (a
// sync would record it; a dry run only reads it). *installed receives that manifest when there is one.
ChannelRecord read_installed(const Config& cfg, const PublicKey& hq_key, Journal& j, const std::string& channel,
                             std::optional<SignedManifest>* installed) {
  ChannelRecord rec = j.channel_record(channel);
  const std::string ip = installed_manifest_path(cfg, channel);
  if (!exists_file(ip)) return rec;
  VerifyOptions vo;
  vo.check_expiry = false;
  installed->emplace(verify_stored_manifest(cfg, read_file(ip, kMaxManifestBytes, "installed manifest"), hq_key, vo, ip));
  if (rec.installed_version == 0) {
    rec.installed_version = (*installed)->manifest.version;
    rec.installed_digest = (*installed)->body_digest;
  }
  return rec;
}

// Refuses what a sync refuses (prepare_channel_plan): older than verified, installed or being
// installed; another manifest under the installed version.
void refuse_rollback(const Config& cfg, const std::string& channel, const ChannelRecord& rec,
                     const std::optional<RunPlan>& plan, const SignedManifest& sm) {
  const uint64_t v = sm.manifest.version;
  const uint64_t have = std::max({version_floor(cfg, channel), rec.installed_version,
                                  plan && !plan->done ? plan->target_version : uint64_t(0)});
  const std::string hint =
      "nothing was changed (a replayed or rolled-back manifest?); if HQ really restored an older state, it must "
      "publish a new, higher version";
  if (v < have)
    throw Error(Errc::rollback,
                "HQ offered version " + std::to_string(v) + " of channel '" + channel + "', but this center has " +
                    "already verified or installed version " + std::to_string(have) + "; a sync would refuse it",
                hint);
  if (v == rec.installed_version && rec.installed_digest && sm.body_digest != *rec.installed_digest)
    throw Error(Errc::rollback,
                "HQ offered a different manifest with the installed version " + std::to_string(v) + " of channel '" +
                    channel + "'; a sync would refuse it",
                hint);
}

// The plan a sync would carry out: the journal's unfinished one for this very manifest, or a
// new one from a scan of the tree (priorities and the offsets of cut downloads as a sync has them).
std::vector<PlanItem> plan_items(const Config& cfg, const ChannelConfig& ch, const RegionalSettings& rs, Journal& j,
                                 const std::optional<RunPlan>& plan, const SignedManifest& sm, const SyncOptions& opts,
                                 DryRunPlan& out) {
  if (plan && !plan->done && plan->manifest_digest == sm.body_digest) {
    out.resumed = true;
    return j.items(ch.name);
  }
  std::vector<Entry> local = scan_channel_tree(cfg, ch, opts.log);
  PlanInput in;
  in.target = &sm.manifest;
  in.local = &local;
  in.unchanged_out = &out.unchanged;
  in.modes = rs.file_modes;
  in.priority = plan_priorities(cfg, ch, opts.priority, opts.log);
  std::vector<PlanItem> items = plan_with_other_channels(cfg, ch, in, opts.log);
  std::map<Digest, uint64_t> partial;
  if (plan && !plan->done)
    for (auto& old : j.items(ch.name))
      if (old.action == Action::full && old.offset > 0 && old.state != ItemState::installed)
        partial[old.digest] = old.offset;
  for (auto& it : items) {
    auto p = partial.find(it.digest);
    if (it.action == Action::full && p != partial.end() && p->second <= it.size) it.offset = p->second;
  }
  return items;
}

// Counts the items, their bytes and the space they take (see DryRunPlan).
void count(const std::vector<PlanItem>& items, const RegionalSettings& rs, const SyncOptions& opts, DryRunPlan& out) {
  const int64_t now = opts.now ? opts.now : static_cast<int64_t>(::time(nullptr));
  const bool big_ok = !opts.honour_window || rs.big_files_allowed(now);
  uint64_t staged = 0;
  for (const auto& it : items) {
    if (it.state == ItemState::installed) {
      out.unchanged++;
      continue;
    }
    if (!big_ok && !it.priority && it.size > rs.big_file_threshold &&
        (it.action == Action::full || it.action == Action::delta)) {
      out.deferred_files++;
      out.deferred_bytes += it.size;
      continue;
    }
    switch (it.action) {
      case Action::unchanged:
        out.unchanged++;
        continue;
      case Action::copy:
      case Action::copy_other:
        out.copy++;
        staged += it.size;
        continue;
      case Action::delta:
        out.delta++;
        out.delta_bytes += it.delta_size ? it.delta_size - std::min(it.offset, it.delta_size) : it.size;
        if (!it.delta_size) out.signature_bytes += signature_estimate(it.size);
        staged += it.size;
        continue;
      case Action::full:
        out.full++;
        out.full_bytes += it.size - std::min(it.offset, it.size);
        staged += it.size - std::min(it.offset, it.size);
        continue;
    }
  }
  out.fetch_bytes = out.full_bytes + out.delta_bytes;
  out.space_needed = staged + kDryRunSpaceMargin;
  if (out.bandwidth_limit > 0)
    out.eta_seconds = static_cast<int64_t>((out.fetch_bytes + out.bandwidth_limit - 1) / out.bandwidth_limit);
}

// Files of the installed version that the target does not have.
uint64_t count_deletions(const std::optional<SignedManifest>& installed, const Manifest& target) {
  if (!installed) return 0;
  std::unordered_set<std::string_view> keep;
  keep.reserve(target.entries.size());
  for (const auto& e : target.entries) keep.insert(e.path);
  uint64_t n = 0;
  for (const auto& e : installed->manifest.entries) n += keep.count(e.path) ? 0 : 1;
  return n;
}

}  // namespace

DryRunPlan dry_run_channel(const Config& cfg, const std::string& channel, const SyncOptions& opts) {
  cfg.require_role("regional", "sync --dry-run runs at a regional center");
  RegionalSettings rs = RegionalSettings::from(cfg);
  const ChannelConfig& ch = cfg.channel(channel);
  StateLock lock(cfg.state_dir);  // a sync's journal and stat cache are not read half-written
  const HttpOptions ho = link_options_as_is(rs, opts.stop);
  rs.hq_key = hq_key_in_memory(cfg, rs, ho, opts.log);
  std::unique_ptr<Journal> j = journal_or_empty(cfg);

  DryRunPlan out;
  out.channel = ch.name;
  out.bandwidth_limit = opts.bandwidth_limit.value_or(rs.bandwidth_limit);
  std::optional<SignedManifest> installed;
  ChannelRecord rec = read_installed(cfg, rs.hq_key, *j, ch.name, &installed);
  out.from_version = rec.installed_version;

  // The manifest, fetched and verified as a sync does it (a delta-built one that does not verify
  // is fetched whole once).
  ChannelResult res;
  HttpClient http(rs.hq_url, ho);
  Run r(cfg, rs, ch, opts, *j, http, res);
  VerifyOptions vo;
  vo.now = opts.now;
  vo.expiry_slack_seconds = rs.expiry_slack_days * 86400;
  std::optional<SignedManifest> verified;
  for (bool whole : {false, true}) {
    std::string body = fetch_manifest(r, whole);
    try {
      verified.emplace(verify_hq_manifest(cfg, body, rs.hq_key, vo, http.url("/channels/" + ch.name + "/latest.manifest")));
      break;
    } catch (const Error& e) {
      if (whole || e.code() == Errc::expired) throw;
      r.log(std::string("manifest built from a delta did not verify (") + e.what() + "); fetching it whole");
    }
  }
  const SignedManifest& sm = *verified;
  if (sm.manifest.channel != ch.name)
    throw Error(Errc::mismatch, "HQ's manifest for channel '" + ch.name + "' is for channel '" + sm.manifest.channel + "'",
                "check [regional] hq_url and the channel names at HQ");
  out.to_version = sm.manifest.version;
  out.warnings = freshness_warnings(sm.manifest, opts.now ? opts.now : static_cast<int64_t>(::time(nullptr)),
                                    {rs.stale_after_days, rs.expiry_warning_days, rs.expiry_slack_days});
  const std::optional<RunPlan> plan = j->plan(ch.name);
  refuse_rollback(cfg, ch.name, rec, plan, sm);

  std::vector<PlanItem> items = plan_items(cfg, ch, rs, *j, plan, sm, opts, out);
  count(items, rs, opts, out);
  const bool nothing = out.copy + out.delta + out.full + out.deferred_files == 0;
  if (out.resumed) out.unchanged = sm.manifest.entries.size() - std::min<uint64_t>(sm.manifest.entries.size(), items.size() - out.unchanged);
  if (!(nothing && sm.manifest.version == rec.installed_version)) out.deleted = count_deletions(installed, sm.manifest);
  out.up_to_date = nothing && out.deleted == 0 && sm.manifest.version == rec.installed_version;

  // Staging and tree share one file system (the installer refuses otherwise); both are measured.
  out.staging_dir = existing_dir(rs.channel_staging(ch));
  out.tree_dir = existing_dir(ch.path);
  out.staging_free = free_bytes(out.staging_dir);
  out.tree_free = free_bytes(out.tree_dir);
  out.space_ok = nothing || (out.space_needed <= out.staging_free && out.space_needed <= out.tree_free);
  return out;
}

}  // namespace distd
