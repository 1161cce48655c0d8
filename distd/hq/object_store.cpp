#include "distd/hq/object_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "distd/hq/stored_zstd.h"
#include "manifest/error.h"
#include "manifest/fault.h"
#include "manifest/fs.h"
#include "manifest/stat_cache.h"

namespace distd::hq {

std::optional<uint64_t> manifest_file_version(std::string_view name) {
  constexpr std::string_view suffix = ".manifest";
  if (name.size() <= suffix.size() || name.substr(name.size() - suffix.size()) != suffix) return std::nullopt;
  std::string_view num = name.substr(0, name.size() - suffix.size());
  if (num.empty() || num.size() > 19 || num[0] == '0') return std::nullopt;
  uint64_t v = 0;
  for (char c : num) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

bool is_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string store_temp(const std::string& dir, const std::string& name) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return dir + "/." + name + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(rng() % 1000000000);
}

std::string_view form_stem(std::string_view name) {
  return name.size() == 68 && name.substr(64) == ".zst" ? name.substr(0, 64) : name;
}

namespace {

constexpr size_t kChunk = 256 * 1024;


int64_t now_ns() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Hashes what is in fd from offset 0 and checks it against digest and size.
void verify_landed(int fd, const std::string& tmp, const std::string& source, const Digest& digest,
                   uint64_t size) {
  if (::lseek(fd, 0, SEEK_SET) != 0) throw_errno("cannot seek", tmp, errno);
  uint64_t got = 0;
  Digest d = digest_fd(fd, tmp, &got);
  if (got != size || d != digest)
    throw Error(Errc::mismatch,
                "file '" + source + "' changed while it was being published: the scan saw " + std::to_string(size) +
                    " bytes with digest " + digest_hex(digest).substr(0, 16) + "..., the store received " +
                    std::to_string(got) + " bytes with digest " + digest_hex(d).substr(0, 16) + "...",
                "nothing was published; run the publish again once nothing writes to the channel's tree");
}

}  // namespace

namespace {

bool is_temporary(const std::string& name) {
  return !name.empty() && name[0] == '.' && name.find(".tmp.") != std::string::npos;
}

// Temporaries of a crashed process: old enough that no live writer can own them.
bool stale(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return false;
  auto age = std::chrono::system_clock::now().time_since_epoch() - std::chrono::seconds(st.st_mtime);
  return age > std::chrono::hours(1);
}

bool kept(const std::vector<Digest>& keep, std::string_view hex) {
  auto d = parse_digest_hex(hex);
  return d && std::binary_search(keep.begin(), keep.end(), *d);
}

}  // namespace

ObjectStore::ObjectStore(std::string state_dir) : layout_{std::move(state_dir)} {}

bool ObjectStore::contains(const Digest& d, uint64_t size) const {
  struct stat st {};
  return ::stat(path_of(d).c_str(), &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == size;
}

ObjectStore::Added ObjectStore::add(const std::string& source, const Digest& digest, uint64_t size, bool allow_link,
                                    uint64_t* bytes_copied, StatRecord* linked_stat) {
  if (contains(digest, size)) return Added::present;
  const std::string hex = digest_hex(digest);
  const std::string final_path = path_of(digest);
  const std::string dir = dir_name(final_path);
  make_dirs(dir);
  const std::string tmp = store_temp(dir, hex);
  Added how = Added::copied;
  int64_t verified_at = 0;
  UniqueFd out;
  try {
    if (allow_link && ::link(source.c_str(), tmp.c_str()) == 0) {
      // The same inode as the source: hash it as it is now, and make its data durable.
      how = Added::linked;
      out = UniqueFd(::open(tmp.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!out) throw_errno("cannot open", tmp, errno);
      verified_at = now_ns();
      verify_landed(out.get(), tmp, source, digest, size);
      sync_file(out.get(), tmp);
    } else {
      // EXDEV (another file system or mount), EPERM (fs.protected_hardlinks), ... : copy.
      UniqueFd in(::open(source.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!in) throw_errno("cannot open", source, errno);
      out = UniqueFd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
      if (!out) throw_errno("cannot create", tmp, errno);
      std::vector<char> buf(kChunk);
      uint64_t total = 0;
      for (;;) {
        ssize_t n = ::read(in.get(), buf.data(), buf.size());
        if (n < 0) {
          if (errno == EINTR) continue;
          throw_errno("cannot read", source, errno);
        }
        if (n == 0) break;
        write_all(out.get(), std::string_view(buf.data(), static_cast<size_t>(n)), tmp);
        total += static_cast<uint64_t>(n);
        if (total > size) break;  // grew during publish: verify_landed reports it
      }
      if (bytes_copied) *bytes_copied += total;
      sync_file(out.get(), tmp);
      // Hash what the store holds now (read back), not what we meant to write.
      verify_landed(out.get(), tmp, source, digest, size);
    }
    out = UniqueFd();
    fault_point("object_before_rename");
    rename_file(tmp, final_path, "cannot rename into", final_path);
  } catch (...) {
    discard_file(tmp);
    throw;
  }
  dirty_dirs_.insert(dir);
  if (uint64_t z = store_zstd_form(final_path, size, zstd_level_); z > 0) {
    ++zstd_forms_;
    zstd_form_bytes_ += z;
  }
  struct stat st {};
  // After the rename: it changed the inode's ctime as the link did. A write since verified_at
  // gives the file a newer mtime, which the stat cache's racy-clean rule does not trust.
  if (how == Added::linked && linked_stat && ::stat(final_path.c_str(), &st) == 0 &&
      static_cast<uint64_t>(st.st_size) == size) {
    *linked_stat = stat_record_of(st);
    linked_stat->digest = digest;
    linked_stat->hashed_at_ns = verified_at;
  }
  return how;
}

void ObjectStore::flush() {
  for (const auto& d : dirty_dirs_) fsync_dir(d);
  if (!dirty_dirs_.empty()) fsync_dir(layout_.objects_dir());
  dirty_dirs_.clear();
}

GcStats ObjectStore::gc(const std::vector<Digest>& keep) {
  GcStats st;
  auto remove = [&](const std::string& path, uint64_t* count, uint64_t* bytes) {
    struct stat sb {};
    uint64_t sz = ::lstat(path.c_str(), &sb) == 0 ? static_cast<uint64_t>(sb.st_size) : 0;
    if (int e = try_remove_file(path); e != 0) {
      if (e == ENOENT) return;
      throw_errno("cannot remove", path, e);
    }
    ++*count;
    if (bytes) *bytes += sz;
  };

  // Objects.
  const std::string objects = layout_.objects_dir();
  for (const auto& shard : list_dir(objects)) {
    if (shard.size() != 2) continue;
    const std::string dir = objects + "/" + shard;
    bool changed = false;
    for (const auto& name : list_dir(dir)) {
      const std::string p = dir + "/" + name;
      if (is_temporary(name)) {
        // Only a publish writes here, and we hold the publish lock: it is left from a crash.
        remove(p, &st.temporaries_removed, nullptr);
        changed = true;
        continue;
      }
      const std::string_view hex = form_stem(name);  // <hex> and its stored form <hex>.zst go together
      if (!is_hex64(hex) || hex.compare(0, 2, shard) != 0) continue;  // not ours: leave it
      if (kept(keep, hex)) continue;
      uint64_t forms = 0;  // a stored form is counted in the bytes, not as an object of its own
      remove(p, hex.size() == name.size() ? &st.objects_removed : &forms, &st.object_bytes_removed);
      changed = true;
    }
    if (changed) fsync_dir(dir);
  }

  // Deltas: one whose target is gone is useless (and its sidecar says which target it has).
  const std::string deltas = layout_.deltas_dir();
  const std::string targets = layout_.delta_targets_dir();
  bool deltas_changed = false, targets_changed = false;
  for (const auto& name : list_dir(deltas)) {
    const std::string p = deltas + "/" + name;
    if (is_temporary(name)) {
      if (stale(p)) { remove(p, &st.temporaries_removed, nullptr); deltas_changed = true; }
      continue;
    }
    const std::string id(form_stem(name));  // <id>.zst, the stored form of delta <id>, goes with it
    if (!is_hex64(id)) continue;
    bool keep_it = false;
    try {
      std::string side = read_file(layout_.delta_target(id), 4096, "delta target record");
      keep_it = side.size() >= 64 && kept(keep, std::string_view(side).substr(0, 64));
    } catch (const Error&) {
      keep_it = false;  // no record: we cannot tell what it is for
    }
    if (keep_it) continue;
    remove(p, &st.deltas_removed, &st.delta_bytes_removed);
    deltas_changed = true;
  }
  for (const auto& name : list_dir(targets)) {
    const std::string p = targets + "/" + name;
    if (is_temporary(name)) {
      if (stale(p)) { remove(p, &st.temporaries_removed, nullptr); targets_changed = true; }
      continue;
    }
    // A record whose delta is gone: remove it, unless the delta is being written right now.
    struct stat sb {};
    if (is_hex64(name) && ::stat(layout_.delta(name).c_str(), &sb) != 0 && stale(p)) {
      uint64_t ignored = 0;
      remove(p, &ignored, nullptr);
      targets_changed = true;
    }
  }
  if (deltas_changed) fsync_dir(deltas);
  if (targets_changed) fsync_dir(targets);
  return st;
}

}  // namespace distd::hq
