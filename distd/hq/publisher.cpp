#include "distd/hq/publisher.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "manifest/diff.h"
#include "manifest/error.h"
#include "manifest/fault.h"
#include "manifest/fs.h"
#include "manifest/keys.h"
#include "manifest/scan.h"
#include "manifest/stat_cache.h"

namespace distd::hq {

bool channel_allows_links(const ChannelConfig& ch) {
  return ch.preset == "moodledata" || ch.link;
}

std::optional<SignedManifest> read_latest_manifest(const Layout& layout, const std::string& channel) {
  const std::string path = layout.latest_manifest(channel);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("cannot stat", path, errno);
  }
  return parse_manifest(read_file(path, kMaxManifestBytes, "manifest"), path);
}

PublishLock::PublishLock(const Layout& layout) {
  const std::string path = layout.publish_lock();
  fd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd_) throw_errno("cannot open lock file", path, errno);
  if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      std::string holder;
      try {
        holder = read_file(path, 64, "lock file");
        while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      } catch (const Error&) {
      }
      throw Error(Errc::busy,
                  "another publish is running on state dir '" + layout.state_dir + "'" +
                      (holder.empty() ? "" : " (pid " + holder + ")"),
                  "wait for it to finish (distd's periodic publish, another distctl publish or a key rotation), "
                  "then run again");
    }
    throw_errno("cannot lock", path, errno);
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_.get(), 0) == 0) (void)::pwrite(fd_.get(), pid.data(), pid.size(), 0);
}

SecretKey load_signing_key(const Config& cfg, const HqSettings& hs) {
  if (hs.secret_key.empty())
    throw Error(Errc::usage, "config " + cfg.file + " has no [hq] secret_key", "create a key pair with "
                "'distctl keygen --secret FILE --public FILE' and set [hq] secret_key = \"FILE\"");
  SecretKey sk = load_secret_key(hs.secret_key);
  const PublicKey pk = sk.public_key();
  if (!hs.public_key.empty()) {
    PublicKey configured = load_public_key(hs.public_key);
    if (configured.bytes != pk.bytes)
      throw Error(Errc::bad_signature,
                  "[hq] secret_key '" + hs.secret_key + "' (key id " + pk.short_id() + ") does not belong to [hq] public_key '" +
                      hs.public_key + "' (key id " + configured.short_id() + ")",
                  ::access((hs.secret_key + ".next").c_str(), F_OK) == 0
                      ? "a key rotation was interrupted: run 'distctl key rotate' to finish it"
                      : "point both settings at the two files of one key pair; regional centers pin the public key");
  }
  return sk;
}

namespace {

std::vector<uint64_t> manifest_versions(const Layout& layout, const std::string& channel) {
  std::vector<uint64_t> v;
  for (const auto& n : list_dir(layout.manifests_dir(channel)))
    if (auto ver = manifest_file_version(n)) v.push_back(*ver);
  std::sort(v.begin(), v.end());
  return v;
}

bool same_entries(const std::vector<Entry>& a, const std::vector<Entry>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].path != b[i].path || a[i].size != b[i].size || a[i].mode != b[i].mode || a[i].digest != b[i].digest)
      return false;
  return true;
}

// The digests referenced by every manifest retained on disk, of every channel (sorted, unique).
std::vector<Digest> referenced_digests(const Layout& layout) {
  std::vector<Digest> keep;
  for (const auto& ch : list_dir(layout.channels_dir())) {
    std::vector<std::string> files;
    for (const auto& n : list_dir(layout.manifests_dir(ch)))
      if (manifest_file_version(n)) files.push_back(layout.manifests_dir(ch) + "/" + n);
    struct stat st {};
    if (::stat(layout.latest_manifest(ch).c_str(), &st) == 0) files.push_back(layout.latest_manifest(ch));
    for (const auto& f : files) {
      SignedManifest sm = parse_manifest(read_file(f, kMaxManifestBytes, "manifest"), f);
      for (const auto& e : sm.manifest.entries) keep.push_back(e.digest);
    }
  }
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  return keep;
}

// Retention: the newest keep versions of the chain stay; orphans of interrupted publishes
// (above the old latest, below the new one) go; then unreferenced objects and deltas.
// A failure here is a warning: the new version is already published.
void apply_retention(const Layout& layout, const std::string& ch, uint64_t keep, uint64_t old_latest,
                     uint64_t new_latest, const std::vector<uint64_t>& on_disk, ObjectStore& store, PublishResult& res) {
  try {
    std::vector<uint64_t> chain;
    for (uint64_t v : on_disk)
      if (v <= old_latest && v != new_latest) chain.push_back(v);
    chain.push_back(new_latest);
    std::sort(chain.rbegin(), chain.rend());
    std::vector<uint64_t> doomed;
    for (size_t i = keep; i < chain.size(); ++i) doomed.push_back(chain[i]);
    for (uint64_t v : on_disk)
      if (v > old_latest && v != new_latest) doomed.push_back(v);
    for (uint64_t v : doomed) {
      const std::string p = layout.manifest(ch, v);
      if (int e = try_remove_file(p); e != 0 && e != ENOENT) throw_errno("cannot remove", p, e);
      ++res.manifests_pruned;
    }
    if (!doomed.empty()) fsync_dir(layout.manifests_dir(ch));
    fault_point("publish_before_gc");
    res.gc = store.gc(referenced_digests(layout));
  } catch (const Error& e) {
    res.warnings.push_back("version " + std::to_string(new_latest) +
                           " is published, but removing old versions failed: " + e.what() +
                           (e.hint().empty() ? "" : " (" + e.hint() + ")"));
  }
}

std::string channel_source_hint(const ChannelConfig& ch) {
  return "check [[channel]] name = \"" + ch.name + "\" path = \"" + ch.path + "\" in the config";
}

// Returns the channel's latest manifest, or nullopt before its first publish. Throws Error{corrupt}
// when latest.manifest names another channel (a damaged state dir).
std::optional<SignedManifest> read_own_latest(const Layout& layout, const std::string& channel) {
  std::optional<SignedManifest> latest = read_latest_manifest(layout, channel);
  if (latest && latest->manifest.channel != channel)
    throw Error(Errc::corrupt,
                "'" + layout.latest_manifest(channel) + "' is for channel '" + latest->manifest.channel + "', not '" +
                    channel + "'",
                "the state dir is damaged; restore " + layout.channel_dir(channel) + " from a backup");
  return latest;
}

// Removes the temporaries of an interrupted manifest write (write_file_atomic's
// "<name>.tmp.<pid>.<n>") from the channel's directories, syncing each directory it changed.
void remove_manifest_temporaries(const Layout& layout, const std::string& channel) {
  for (const std::string& dir : {layout.channel_dir(channel), layout.manifests_dir(channel)}) {
    bool removed = false;
    for (const auto& n : list_dir(dir))
      if (n.find(".manifest.tmp.") != std::string::npos && try_remove_file(dir + "/" + n) == 0) removed = true;
    if (removed) fsync_dir(dir);
  }
}

// Scans the channel's source tree through its stat cache, skipping special files (each a warning in
// res) and reporting hashing through progress. Returns the entries; counts the hashing into res.
std::vector<Entry> scan_channel(const Layout& layout, const ChannelConfig& ch, const PublishProgressFn& progress,
                                PublishResult& res) {
  struct stat src_st {};
  if (::stat(ch.path.c_str(), &src_st) != 0 || !S_ISDIR(src_st.st_mode))
    throw Error(Errc::not_found, "channel '" + ch.name + "': source tree '" + ch.path + "' is not a directory",
                channel_source_hint(ch));
  ScanOptions so;
  so.excludes = ch.excludes;
  if (ch.preset == "moodledata")
    for (const auto& e : moodledata_excludes()) so.excludes.push_back(e);
  so.special = SpecialFiles::skip;
  so.stat_cache_path = layout.stat_cache(ch.name);
  so.warn = [&](const std::string& w) { res.warnings.push_back(w); };
  if (progress)
    so.progress = [&](const ScanProgress& sp) {
      PublishProgress p;
      p.phase = PublishProgress::Phase::scanning;
      p.files_done = sp.files_hashed;
      p.files_total = sp.files_to_hash;
      p.bytes_done = sp.bytes_hashed;
      p.bytes_total = sp.bytes_to_hash;
      progress(p);
    };
  ScanStats stats;
  std::vector<Entry> entries = scan_tree(ch.path, so, &stats);
  res.hashed_files = stats.hashed_files;
  res.hashed_bytes = stats.hashed_bytes;
  return entries;
}

// Refreshes the stat cache rows of source files just hard-linked into the store (a link changes
// their ctime), so the next scan does not hash them again. A failure is a warning in res.
void refresh_relinked_rows(const Layout& layout, const ChannelConfig& ch,
                           const std::vector<std::pair<const std::string*, StatRecord>>& relinked, PublishResult& res) {
  std::string root = ch.path;
  while (root.size() > 1 && root.back() == '/') root.pop_back();  // as scan_tree() names it
  std::vector<std::pair<const std::string*, const StatRecord*>> rows;
  for (const auto& [path, rec] : relinked) rows.emplace_back(path, &rec);
  try {
    StatCache(layout.stat_cache(ch.name), root).update(rows, {});
  } catch (const Error& e) {
    res.warnings.push_back(std::string("the next scan will hash the newly linked files again: ") + e.what());
  }
}

// Adds the object of every entry of list to the store (a hard link into the source tree when
// allow_link), counting into res and reporting each object through progress. Durable on return.
void store_objects(ObjectStore& store, const Layout& layout, const ChannelConfig& ch, bool allow_link,
                   const std::vector<Entry>& list, const PublishProgressFn& progress, PublishResult& res) {
  PublishProgress p;
  p.phase = PublishProgress::Phase::storing;
  p.files_total = list.size();
  for (const auto& e : list) p.bytes_total += e.size;
  // Linking a source file changes its ctime; its stat cache row is refreshed from the stat
  // after the link, so the next scan does not hash the file again.
  std::vector<std::pair<const std::string*, StatRecord>> relinked;
  for (const auto& e : list) {
    StatRecord linked;
    switch (store.add(ch.path + "/" + e.path, e.digest, e.size, allow_link, &res.bytes_copied, &linked)) {
      case ObjectStore::Added::present: ++res.objects_present; break;
      case ObjectStore::Added::linked:
        ++res.objects_linked;
        if (linked.hashed_at_ns != 0) relinked.emplace_back(&e.path, linked);
        break;
      case ObjectStore::Added::copied: ++res.objects_copied; break;
    }
    fault_point("publish_object");
    ++p.files_done;
    p.bytes_done += e.size;
    if (progress) progress(p);
  }
  store.flush();
  res.zstd_forms = store.zstd_forms();
  res.zstd_form_bytes = store.zstd_form_bytes();
  if (!relinked.empty()) refresh_relinked_rows(layout, ch, relinked, res);
}

// Fills res for a run that wrote no new version: latest stays the channel's version.
void describe_unchanged(const Layout& layout, const std::string& channel, const SignedManifest& latest,
                        PublishResult& res) {
  res.changed = false;
  res.reason = "unchanged";
  res.version = latest.manifest.version;
  res.files = latest.manifest.entries.size();
  res.bytes = latest.manifest.total_bytes();
  res.expires = latest.manifest.expires;
  res.manifest_path = layout.manifest(channel, latest.manifest.version);
}

// Returns the version that follows latest (none: the first), holding entries. Its number is above
// every version on disk, so an orphan of an interrupted publish (never made latest) is never
// reused with other content.
Manifest next_manifest(const std::string& channel, const std::optional<SignedManifest>& latest,
                       const std::vector<uint64_t>& on_disk, int64_t now, int64_t expires_days,
                       std::vector<Entry> entries) {
  const uint64_t latest_version = latest ? latest->manifest.version : 0;
  Manifest m;
  m.channel = channel;
  uint64_t top = std::max<uint64_t>(latest_version, on_disk.empty() ? 0 : on_disk.back());
  m.version = top + 1;
  m.created = now;
  m.expires = now + expires_days * 86400;
  if (latest) m.previous = latest->body_digest;
  m.entries = std::move(entries);
  m.normalize();
  return m;
}

// Signs m and writes it as its version's file, then as latest (the switch). Throws, writing
// nothing, when a regional center would refuse it. Returns m as a center reads it back.
SignedManifest write_new_version(const Layout& layout, const Manifest& m, const SecretKey& sk, const PublicKey& pk,
                                 int64_t now) {
  std::string bytes = sign_manifest(m, sk);
  // Never publish what a regional center would refuse.
  VerifyOptions vo;
  vo.now = now;
  SignedManifest check = verify_manifest(bytes, pk, vo, "new manifest of channel " + m.channel);
  const std::string vpath = layout.manifest(m.channel, m.version);
  fault_point("publish_before_manifest");
  write_file_atomic(vpath, bytes, 0644);
  fault_point("publish_before_latest");
  // 3. The switch.
  write_file_atomic(layout.latest_manifest(m.channel), bytes, 0644);
  fault_point("publish_after_latest");
  return check;
}

// Fills res (but for its reason) for the new version m, written to path: its size and how it
// differs from latest, as check (m read back) shows.
void describe_new_version(const Manifest& m, const std::optional<SignedManifest>& latest, const SignedManifest& check,
                          const std::string& path, PublishResult& res) {
  res.changed = true;
  res.version = m.version;
  res.previous_version = latest ? latest->manifest.version : 0;
  res.files = m.entries.size();
  res.bytes = m.total_bytes();
  res.expires = m.expires;
  res.manifest_path = path;
  if (latest) {
    ManifestDiff d = diff_manifests(latest->manifest, check.manifest);
    res.added = d.added.size();
    res.modified = d.changed.size();
    res.removed = d.removed.size();
    res.moved = d.moved.size();
  } else {
    res.added = m.entries.size();
  }
}

}  // namespace

PublishResult publish_channel(const Config& cfg, const std::string& channel, const PublishProgressFn& progress,
                              const PublishOptions& opts) {
  cfg.require_role("hq", "only HQ publishes", "run distctl publish at HQ with HQ's config (role = \"hq\")");
  const ChannelConfig& ch = cfg.channel(channel);
  if (!ch.preset.empty() && ch.preset != "moodledata")
    throw Error(Errc::usage, "config " + cfg.file + ": channel '" + ch.name + "' has unknown preset \"" + ch.preset + "\"",
                "the only preset is \"moodledata\"; leave preset out for a plain tree");
  const HqSettings hs = hq_settings(cfg);

  Layout layout{cfg.state_dir};
  make_dirs(cfg.state_dir, 0755);
  PublishLock lock(layout);
  // The key is read under the lock: a rotation (distctl key rotate) holds it while it swaps keys.
  const SecretKey sk = load_signing_key(cfg, hs);
  const PublicKey pk = sk.public_key();
  make_dirs(layout.manifests_dir(ch.name));
  make_dirs(layout.objects_dir());
  make_dirs(dir_name(layout.stat_cache(ch.name)));

  PublishResult res;
  res.channel = ch.name;

  // The current state: latest (the chain we extend) and whatever versions are on disk.
  std::optional<SignedManifest> latest = read_own_latest(layout, ch.name);
  remove_manifest_temporaries(layout, ch.name);
  const std::vector<uint64_t> on_disk = manifest_versions(layout, ch.name);
  const uint64_t latest_version = latest ? latest->manifest.version : 0;

  std::vector<Entry> entries = scan_channel(layout, ch, progress, res);
  fault_point("publish_after_scan");

  const int64_t now = static_cast<int64_t>(::time(nullptr));
  const bool unchanged = latest && same_entries(latest->manifest.entries, entries);
  // Renew a manifest that has used up two thirds of its validity even when nothing changed,
  // so that a periodic publish keeps the channel from expiring at the regional centers.
  // And re-sign one that is renew_after_days old, so that a center can tell a working HQ with
  // nothing new from a frozen one ([regional] stale_after_days, distd/regional/freshness.h).
  // And re-sign one signed by another key: after a key rotation, centers refuse the old key.
  const bool resign = unchanged && latest->key_id != pk.key_id();
  const bool renew = unchanged && (resign || latest->manifest.expires - now < hs.expires_days * 86400 / 3 ||
                                   (hs.renew_after_days > 0 && now - latest->manifest.created >= hs.renew_after_days * 86400));
  const bool allow_link = channel_allows_links(ch);
  ObjectStore store(cfg.state_dir);
  store.set_zstd_level(hs.compression_level);

  if (unchanged && !opts.force && !renew) {
    // Nothing to publish. Repair the store should an object have gone missing, and finish the
    // clean-up of an interrupted publish (more versions on disk than kept, or orphans).
    store_objects(store, layout, ch, allow_link, latest->manifest.entries, progress, res);
    size_t retained = 0;
    bool orphans = false;
    for (uint64_t v : on_disk) {
      if (v <= latest_version) ++retained;
      else orphans = true;
    }
    if (orphans || retained > hs.keep_versions)
      apply_retention(layout, ch.name, hs.keep_versions, latest_version, latest_version, on_disk, store, res);
    describe_unchanged(layout, ch.name, *latest, res);
    return res;
  }

  // 1. Objects, durable.
  store_objects(store, layout, ch, allow_link, entries, progress, res);
  fault_point("publish_after_objects");

  // 2. The new manifest, chained to latest, and 3. the switch to it.
  const Manifest m = next_manifest(ch.name, latest, on_disk, now, hs.expires_days, std::move(entries));
  const SignedManifest check = write_new_version(layout, m, sk, pk, now);
  res.reason = !latest                   ? "first version"
               : opts.force && unchanged ? "forced"
               : resign                  ? "re-signed"
               : renew                   ? "renewed"
                                         : "changed";
  describe_new_version(m, latest, check, layout.manifest(ch.name, m.version), res);

  // 4. Retention.
  apply_retention(layout, ch.name, hs.keep_versions, latest_version, m.version, on_disk, store, res);
  return res;
}

}  // namespace distd::hq
