#include "distd/regional/channel_install.h"
#include "distd/regional/trust.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <string_view>
#include <unordered_map>

#include "distd/regional/other_channels.h"
#include "distd/regional/planner.h"
#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/fault.h"
#include "manifest/fs.h"
#include "manifest/scan.h"

namespace distd {

namespace {

bool exists_file(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

void say(const LogLineFn& log, const std::string& s) {
  if (log) log(s);
}

std::string copy_name(const PlanItem& it) { return "c" + std::to_string(it.ord) + ".copy"; }

}  // namespace

StateLock::StateLock(const std::string& state_dir) {
  make_dirs(state_dir, 0750);
  std::string p = state_dir + "/regional.lock";
  fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw_errno("cannot open lock file", p, errno);
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    fd_ = -1;
    throw Error(Errc::busy,
                "another sync is running on " + state_dir + " (or a bundle import or request; lock " + p + " is held)",
                "wait for it to finish (see 'distctl status') and run the command again; distd and the nightly "
                "timer take turns");
  }
}

StateLock::~StateLock() {
  if (fd_ >= 0) ::close(fd_);
}

PublicKey regional_pinned_key(const Config& cfg) {
  std::string key = cfg.require_string("regional.hq_public_key");
  if (key.rfind("ed25519-public ", 0) == 0) return parse_public_key(key, cfg.file);
  return load_public_key(cfg.resolve(key));
}

PublicKey regional_hq_key(const Config& cfg) { return trusted_hq_key(cfg, regional_pinned_key(cfg)).key; }

std::vector<Entry> scan_channel_tree(const Config& cfg, const ChannelConfig& ch, const LogLineFn& log) {
  ScanOptions so;
  so.excludes = ch.excludes;
  if (ch.preset == "moodledata")
    so.excludes.insert(so.excludes.end(), moodledata_excludes().begin(), moodledata_excludes().end());
  so.special = SpecialFiles::skip;
  std::string cache_dir = cfg.state_dir + "/statcache";
  make_dirs(cache_dir, 0750);
  so.stat_cache_path = cache_dir + "/" + ch.name + ".sqlite";
  so.threads = 1;  // a Pi with an SD card: one reader is as fast as four and uses less memory
  so.warn = [&](const std::string& w) { say(log, ch.name + ": scan: " + w); };
  struct stat st {};
  if (::stat(ch.path.c_str(), &st) != 0) return {};  // nothing installed yet
  return scan_tree(ch.path, so);
}

ChannelRecord installed_record(const Config& cfg, const PublicKey& hq_key, Journal& j, const std::string& channel) {
  ChannelRecord rec = j.channel_record(channel);
  if (rec.installed_version != 0) return rec;
  // A lost or new journal: the installed manifest file still says what is here.
  std::string ip = installed_manifest_path(cfg, channel);
  if (!exists_file(ip)) return rec;
  VerifyOptions vo;
  vo.check_expiry = false;
  SignedManifest old =
      verify_stored_manifest(cfg, read_file(ip, kMaxManifestBytes, "installed manifest"), hq_key, vo, ip);
  rec.installed_version = old.manifest.version;
  rec.installed_digest = old.body_digest;
  j.set_installed(channel, rec.installed_version, old.body_digest);
  return rec;
}

std::string version_floor_path(const Config& cfg, const std::string& channel) {
  return cfg.state_dir + "/manifests/" + channel + "/highest-version";
}

uint64_t version_floor(const Config& cfg, const std::string& channel) {
  std::string p = version_floor_path(cfg, channel);
  if (!exists_file(p)) return 0;
  std::string text = read_file(p, 64, "version floor");
  if (!text.empty() && text.back() == '\n') text.pop_back();
  std::optional<uint64_t> v = parse_u64(text);
  if (!v)
    throw Error(Errc::corrupt, "'" + p + "' does not hold a version number",
                "it records the highest manifest version this center has verified (rollback protection); "
                "write the installed version into it (distctl status shows it) or delete it");
  return *v;
}

std::set<std::string> plan_priorities(const Config& cfg, const ChannelConfig& ch, const std::vector<std::string>& given,
                                      const LogLineFn& log) {
  std::set<std::string> out(given.begin(), given.end());
  for (auto& provider : priority_providers()) {
    try {
      for (auto& name : provider(cfg, ch)) out.insert(std::move(name));
    } catch (const std::exception& e) {
      say(log, ch.name + ": priority list skipped: " + e.what());
    }
  }
  return out;
}

ChannelPlan prepare_channel_plan(const Config& cfg, const ChannelConfig& ch, Journal& j, Installer& inst,
                                 const ChannelRecord& rec, const SignedManifest& sm, std::string& body,
                                 const PlanOptions& opts) {
  const Manifest& m = sm.manifest;
  const Digest& digest = sm.body_digest;
  ChannelPlan out;
  // The highest version verified here, kept apart from the journal and installed.manifest, so
  // that losing both (a damaged journal, a deleted file) does not let an older version in.
  const uint64_t floor = version_floor(cfg, ch.name);
  if (m.version < floor)
    throw Error(Errc::rollback,
                opts.offered_by + " version " + std::to_string(m.version) + " of channel '" + ch.name +
                    "', but this center has already verified version " + std::to_string(floor) + " (" +
                    version_floor_path(cfg, ch.name) + "); refusing to go back",
                opts.rollback_hint);
  if (m.version > floor) {
    make_dirs(dir_name(version_floor_path(cfg, ch.name)), 0750);
    write_file_atomic(version_floor_path(cfg, ch.name), std::to_string(m.version) + "\n");
  }
  auto plan = j.plan(ch.name);
  if (m.version < rec.installed_version || (plan && !plan->done && m.version < plan->target_version))
    throw Error(Errc::rollback,
                opts.offered_by + " version " + std::to_string(m.version) + " of channel '" + ch.name +
                    "', but version " + std::to_string(std::max(rec.installed_version, plan ? plan->target_version : 0)) +
                    " is already " + (m.version < rec.installed_version ? "installed" : "being installed") +
                    "; refusing to go back",
                opts.rollback_hint);
  if (m.version == rec.installed_version && rec.installed_digest && digest != *rec.installed_digest)
    throw Error(Errc::rollback,
                opts.offered_by + " a different manifest with the installed version " + std::to_string(m.version) +
                    " of channel '" + ch.name + "'; refusing it",
                "nothing was changed; HQ must publish a new, higher version");
  if (opts.trust_installed && m.version == rec.installed_version && rec.installed_digest == digest) {
    out.up_to_date = true;
    out.unchanged = m.entries.size();
    std::string().swap(body);
    return out;
  }
  out.target_file = cfg.state_dir + "/manifests/" + ch.name + "/target.manifest";
  make_dirs(dir_name(out.target_file), 0750);
  // On disk now, so that the body's memory is free while the plan is made and carried out.
  out.resumed = plan && plan->manifest_digest == digest && !plan->done;
  if (!out.resumed || !exists_file(out.target_file)) write_file_atomic(out.target_file, body, 0644);
  std::string().swap(body);  // (assigning an empty string would keep the capacity)

  if (out.resumed) {
    out.items = j.items(ch.name);
    say(opts.log, ch.name + ": resuming the plan for version " + std::to_string(m.version));
    return out;
  }
  std::vector<Entry> local = scan_channel_tree(cfg, ch, opts.log);
  PlanInput in;
  in.target = &m;
  in.local = &local;
  in.unchanged_out = &out.unchanged;
  in.modes = inst.modes();
  in.priority = plan_priorities(cfg, ch, opts.priority, opts.log);
  out.items = plan_with_other_channels(cfg, ch, in, opts.log);
  std::vector<Entry>().swap(local);
  bool nothing_to_do = std::all_of(out.items.begin(), out.items.end(),
                                   [](const PlanItem& it) { return it.state == ItemState::installed; });
  if (nothing_to_do && m.version == rec.installed_version) {
    out.up_to_date = true;
    out.unchanged += out.items.size();
    out.items.clear();
    discard_file(out.target_file);  // the installed manifest says the same
    return out;
  }
  // Carry the offsets of partial whole-object downloads of an unfinished older plan.
  // (The offset is of the object, or of its stored zstd form when delta_id says "zst".)
  std::map<Digest, std::pair<uint64_t, std::string>> partial;
  if (plan && !plan->done)
    for (auto& old : j.items(ch.name))
      if (old.action == Action::full && old.offset > 0 && old.state != ItemState::installed)
        partial[old.digest] = {old.offset, old.delta_id};
  std::vector<std::string> keep;
  for (auto& it : out.items) {
    if (it.action != Action::full && it.action != Action::delta) continue;
    auto p = partial.find(it.digest);
    if (p == partial.end()) continue;
    it.action = Action::full;  // finishing a half-fetched object beats a new delta
    it.basis_path.clear();
    it.basis_digest.reset();
    it.offset = p->second.first;
    it.delta_id = p->second.second == "zst" ? "zst" : "";
    keep.push_back(digest_hex(it.digest) + (it.delta_id.empty() ? ".part" : ".zst.part"));
  }
  inst.clean_staging(keep);
  j.start_plan(RunPlan{ch.name, m.version, digest, static_cast<int64_t>(std::time(nullptr)), false}, out.items);
  size_t counts[4] = {static_cast<size_t>(out.unchanged), 0, 0, 0};  // unchanged, copies, deltas, fetches
  uint64_t fetch_bytes = 0;
  for (auto& it : out.items) {
    switch (it.action) {
      case Action::unchanged: counts[0]++; break;
      case Action::copy:
      case Action::copy_other: counts[1]++; break;
      case Action::delta: counts[2]++; break;
      case Action::full: counts[3]++; break;
    }
    if (it.action == Action::full || it.action == Action::delta) fetch_bytes += it.size;
  }
  say(opts.log, ch.name + ": " +
                    (rec.installed_version ? "version " + std::to_string(rec.installed_version)
                                           : std::string("nothing installed")) +
                    " -> version " + std::to_string(m.version) + ": " + std::to_string(counts[0]) + " unchanged, " +
                    std::to_string(counts[1]) + " local copies, " + std::to_string(counts[2]) + " deltas, " +
                    std::to_string(counts[3]) + " to bring in (" + human_bytes(fetch_bytes) + ")");
  fault_point("after_plan");
  return out;
}

void install_verified(Installer& inst, Journal& j, const std::string& channel, const std::vector<PlanItem*>& items,
                      const std::vector<Installer::Staged>& files) {
  if (items.empty()) return;
  place_verified(inst, files);
  record_installed(j, channel, items);
}

void place_verified(const Installer& inst, const std::vector<Installer::Staged>& files) {
  if (files.empty()) return;
  for (size_t k = 0; k < files.size(); ++k) fault_point("after_verify");
  inst.install_many(files);
}

void record_installed(Journal& j, const std::string& channel, const std::vector<PlanItem*>& items) {
  if (items.empty()) return;
  fault_point("before_batch_commit");
  Journal::Batch b(j);
  for (PlanItem* it : items) {
    if (it->state == ItemState::installed) continue;
    j.set_state(channel, *it, ItemState::installed);
  }
  b.commit();
  fault_point("after_batch_commit");
}

uint64_t install_local_copies(Installer& inst, Journal& j, const std::string& channel, std::vector<PlanItem>& items,
                              const LogLineFn& log, std::vector<PlanItem*>* fell_back,
                              const std::map<std::string, std::string>* roots) {
  std::unordered_map<std::string_view, const PlanItem*> fetched;
  for (auto& it : items)
    if (it.action == Action::full || it.action == Action::delta) fetched.emplace(it.path, &it);
  uint64_t installed = 0;
  std::vector<PlanItem*> staged;
  std::vector<PlanItem*> newly_staged;
  for (auto& it : items) {
    const bool other = it.action == Action::copy_other;
    if ((it.action != Action::copy && !other) || it.state == ItemState::installed || copies_fetched_content(it, fetched))
      continue;
    std::string sp = inst.staged(copy_name(it));
    if (it.state == ItemState::verified) {
      if (exists_file(sp)) {
        staged.push_back(&it);
        continue;
      }
      if (inst.final_matches(it.path, it.digest, it.size)) {  // renamed before the journal heard of it
        j.set_state(channel, it, ItemState::installed);
        ++installed;
        continue;
      }
      j.set_offset(channel, it.path, 0);
      j.set_state(channel, it.path, ItemState::planned);
      it.offset = 0;
      it.state = ItemState::planned;
    }
    const bool copied = other ? roots && stage_other_copy(inst, it, *roots, sp, /*sync=*/false)
                              : inst.stage_copy(it.basis_path, sp, it.digest, it.size, /*sync=*/false);
    if (copied) {
      newly_staged.push_back(&it);
      staged.push_back(&it);
    } else {
      say(log, channel + ": '" + it.path + "': local copy source '" + it.basis_path + "'" +
                   (other ? " (another channel)" : "") + " changed; bringing it in instead");
      j.fall_back_to_full(channel, it, "local copy source changed");
      fetched.emplace(it.path, &it);
      if (fell_back) fell_back->push_back(&it);
    }
  }
  if (!newly_staged.empty()) {
    inst.sync_staging();  // the staged copies durable before the journal vouches for them
    Journal::Batch b(j);
    for (PlanItem* it : newly_staged) {
      j.set_state(channel, *it, ItemState::verified);
    }
  }
  std::vector<Installer::Staged> group;
  for (PlanItem* it : staged) {
    std::string sp = inst.staged(copy_name(*it));
    inst.verify(sp, it->digest, it->size, it->path);  // cheap insurance after a restart
    group.push_back({sp, it->path, it->mode});
  }
  install_verified(inst, j, channel, staged, group);
  return installed + staged.size();
}

uint64_t finish_channel_install(const Config& cfg, const ChannelConfig& ch, const PublicKey& hq_key, Journal& j,
                                Installer& inst, uint64_t version, const Digest& digest,
                                const std::string& target_file, const std::function<void(uint64_t)>& recorded,
                                const LogLineFn& log) {
  fault_point("before_deletions");
  uint64_t deleted = 0;
  std::string installed = installed_manifest_path(cfg, ch.name);
  std::string old_bytes;
  try {
    old_bytes = read_file(installed, kMaxManifestBytes, "installed manifest");
  } catch (const Error& e) {
    if (e.code() != Errc::not_found && e.code() != Errc::io) throw;  // first install: nothing is ours yet
  }
  if (!old_bytes.empty()) {
    // Both verified when they arrived, and ours since.
    SignedManifest target = parse_manifest(read_file(target_file, kMaxManifestBytes, "target manifest"), target_file);
    VerifyOptions vo;
    vo.check_expiry = false;
    SignedManifest old = verify_stored_manifest(cfg, old_bytes, hq_key, vo, installed);
    std::string().swap(old_bytes);
    for (const auto& e : old.manifest.entries) {
      if (target.manifest.find(e.path)) continue;
      inst.remove(e.path);
      ++deleted;
    }
  }
  rename_file(target_file, installed, "cannot record", installed);
  fsync_dir(dir_name(installed));
  fault_point("after_record_manifest");
  j.set_installed(ch.name, version, digest);
  j.finish_plan(ch.name);
  j.record_success(ch.name);
  inst.clean_staging({});
  if (recorded) recorded(deleted);
  run_after_install(cfg, ch, [&](const std::string& s) { say(log, ch.name + ": " + s); });
  return deleted;
}

}  // namespace distd
