#include "distd/hq/key_rotation.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <ctime>
#include <optional>

#include "distd/hq/layout.h"
#include "distd/hq/settings.h"
#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/fault.h"
#include "manifest/fs.h"
#include "manifest/key_record.h"

namespace distd::hq {
namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// The highest N of public/keys/<N>.keys; 1 (the first key) when there is none.
uint64_t newest_record(const Layout& layout) {
  uint64_t top = 1;
  for (const std::string& n : list_dir(layout.keys_dir())) {
    if (n.size() <= 5 || n.compare(n.size() - 5, 5, ".keys") != 0) continue;
    std::string digits = n.substr(0, n.size() - 5);
    if (digits.empty() || digits[0] == '0') continue;
    if (auto v = parse_u64(digits); v && *v > top) top = *v;
  }
  return top;
}

// True when record `bytes` names key k as the key it brings (its "key" line; HQ's own file).
bool record_brings(const std::string& bytes, const PublicKey& k) {
  return bytes.find("\nkey " + to_hex(k.bytes.data(), k.bytes.size()) + "\n") != std::string::npos;
}

std::string retired_path(const std::string& secret, const Digest& key_id) {
  return secret + ".retired-" + digest_hex(key_id).substr(0, 16);
}

// The key id record `bytes` revokes first: the key it replaces (HQ's own, verified file).
Digest replaced_key(const std::string& bytes, const std::string& name) {
  const size_t at = bytes.find("\nrevokes ");
  std::optional<Digest> d;
  if (at != std::string::npos) d = parse_digest_hex(std::string_view(bytes).substr(at + 9, 64));
  if (!d) throw Error(Errc::corrupt, name + " names no key it replaces", "restore HQ's copy of the record");
  return *d;
}

// Steps 3 and 4: keep the old secret, install the new pair. <secret_key>.next stays until the
// channels are re-signed: while it exists the rotation is unfinished.
void install_new_pair(const HqSettings& hs, const SecretKey& old_sk, const SecretKey& new_sk, RotationResult& res) {
  write_file_atomic(res.retired_secret, format_secret_key(old_sk), 0600);
  fault_point("rotate_after_retire");
  if (!hs.public_key.empty()) write_file_atomic(hs.public_key, format_public_key(new_sk.public_key()), 0644);
  fault_point("rotate_after_public");
  write_file_atomic(hs.secret_key, format_secret_key(new_sk), 0600);
  fault_point("rotate_after_install");
}

// A rotation a crash stopped after its record (top brings `pending`): finish steps 3 and 4.
void resume(const Layout& layout, const HqSettings& hs, const SecretKey& installed, const SecretKey& pending,
            uint64_t top, const std::string& top_bytes, RotationResult& res) {
  res.resumed = true;
  res.record_version = top;
  res.record_path = layout.key_record(top);
  res.new_key = pending.public_key();
  if (installed.public_key().bytes == pending.public_key().bytes) {  // stopped after step 4
    res.old_key_id = replaced_key(top_bytes, res.record_path);
    res.retired_secret = retired_path(hs.secret_key, res.old_key_id);
    return;
  }
  (void)verify_key_record(top_bytes, installed.public_key(), top, res.record_path);
  res.old_key_id = installed.public_key().key_id();
  res.retired_secret = retired_path(hs.secret_key, res.old_key_id);
  install_new_pair(hs, installed, pending, res);
}

// Steps 1 to 4 of a new rotation to record top + 1.
void rotate(const Layout& layout, const HqSettings& hs, const SecretKey& old_sk, uint64_t top,
            const std::string& top_bytes, RotationResult& res) {
  const PublicKey old_key = old_sk.public_key();
  if (top >= 2 && !record_brings(top_bytes, old_key))
    throw Error(Errc::corrupt,
                "the newest key record " + layout.key_record(top) + " does not name [hq] secret_key's key " +
                    old_key.short_id() + "; a rotation would start a chain no center can follow",
                "install the secret key that record " + std::to_string(top) + " brings (kept as " + hs.secret_key +
                    ".retired-* or .next?), or remove the record if it was never served");
  KeyPair kp = generate_keypair();
  write_file_atomic(hs.secret_key + ".next", format_secret_key(kp.sec), 0600);
  fault_point("rotate_after_next_key");
  KeyRecord rec;
  rec.version = top + 1;
  rec.key = kp.pub;
  rec.revokes = {old_key.key_id()};
  rec.created = static_cast<int64_t>(::time(nullptr));
  res.record_version = rec.version;
  res.record_path = layout.key_record(rec.version);
  res.new_key = kp.pub;
  res.old_key_id = old_key.key_id();
  res.retired_secret = retired_path(hs.secret_key, res.old_key_id);
  write_file_atomic(res.record_path, sign_key_record(rec, old_sk, kp.sec), 0644);
  fault_point("rotate_after_record");
  install_new_pair(hs, old_sk, kp.sec, res);
}

// Run as root (sudo distctl key rotate), the secret key files go to the owner of HQ's state
// directory: the user distd runs as (the package's `distd`), which must read the key. Done on
// every run, so a rerun after a crash between a write and its chown fixes it.
void give_to_daemon_user(const std::string& state_dir, const std::vector<std::string>& paths) {
  struct stat owner {};
  if (::geteuid() != 0 || ::stat(state_dir.c_str(), &owner) != 0 || owner.st_uid == 0) return;
  for (const std::string& p : paths)
    if (::chown(p.c_str(), owner.st_uid, owner.st_gid) != 0)
      throw_errno("cannot give the key file to the owner of " + state_dir, p, errno);
}

}  // namespace

RotationResult rotate_signing_key(const Config& cfg, const std::function<void(const std::string&)>& log) {
  cfg.require_role("hq", "only HQ has a signing key to rotate", "run it at HQ with HQ's config (role = \"hq\")");
  const HqSettings hs = hq_settings(cfg);
  const Layout layout{cfg.state_dir};
  const std::string next_path = hs.secret_key + ".next";
  RotationResult res;
  {
    make_dirs(cfg.state_dir, 0755);
    PublishLock lock(layout);
    make_dirs(layout.keys_dir(), 0755);
    // A rotation stopped in step 4 leaves secret_key and public_key of different pairs: the
    // pair is checked unless one is pending (resume() verifies the record against the key then).
    HqSettings pair_check = hs;
    if (exists(next_path)) pair_check.public_key.clear();
    const SecretKey installed = load_signing_key(cfg, pair_check);
    const uint64_t top = newest_record(layout);
    std::string top_bytes;
    if (top >= 2) top_bytes = read_file(layout.key_record(top), kMaxKeyRecordBytes, "key record");
    if (exists(next_path)) {
      SecretKey pending = load_secret_key(next_path);
      if (top >= 2 && record_brings(top_bytes, pending.public_key())) {
        resume(layout, hs, installed, pending, top, top_bytes, res);
        if (log) log("finishing the rotation to key " + res.new_key.short_id() + " (key record " +
                     std::to_string(top) + ") that was interrupted");
      } else {
        if (log) log("discarding " + next_path + " (a rotation stopped before its key record; the key stays)");
        discard_file(next_path);
        (void)load_signing_key(cfg, hs);
      }
    }
    if (!res.resumed) rotate(layout, hs, installed, top, top_bytes, res);
    give_to_daemon_user(cfg.state_dir, {hs.secret_key, res.retired_secret});
  }
  // 5. Re-sign (each publish takes the lock again and reads the new key under it), then 6.
  for (const ChannelConfig& ch : cfg.channels) {
    if (!exists(layout.latest_manifest(ch.name))) continue;
    res.channels.push_back(publish_channel(cfg, ch.name));
    if (log) log("re-signed " + ch.name + " as version " + std::to_string(res.channels.back().version));
  }
  discard_file(next_path);
  fsync_dir(dir_name(hs.secret_key));
  return res;
}

}  // namespace distd::hq
