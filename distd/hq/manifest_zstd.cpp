#include "distd/hq/manifest_zstd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "distd/io/zstd_stream.h"
#include "manifest/digest.h"
#include "manifest/error.h"
#include "manifest/fs.h"
#include "manifest/manifest.h"

namespace distd::hq {

namespace {

// The stamp of the regular file at path; nullopt when there is none.
std::optional<FileStamp> stamp_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return FileStamp{static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size),
                   static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

}  // namespace

std::shared_ptr<const std::string> CompressedManifests::get(const std::string& path) {
  if (level_ <= 0) return nullptr;
  try {
    const std::optional<FileStamp> stamp = stamp_of(path);
    if (!stamp) return nullptr;
    std::lock_guard<std::mutex> g(mu_);  // one compression per version, whoever asks first
    Entry& e = cache_[path];
    if (e.z && e.stamp == *stamp) return e.z;
    // (Publish replaces the file by a rename: bytes of a newer version under this stat are
    // harmless, the next request sees the new stat and compresses again.)
    std::string bytes = read_file(path, kMaxManifestBytes, "manifest");
    if (bytes.size() != stamp->size) return nullptr;
    e.z = std::make_shared<const std::string>(zstd_compress(bytes, std::min(level_, 9)));
    e.stamp = *stamp;
    return e.z;
  } catch (const Error&) {
    return nullptr;
  }
}

std::shared_ptr<const std::string> ManifestPatches::get(const std::string& latest_path, const std::string& basis_path,
                                                        const std::string& basis_digest_hex) {
  if (level_ <= 0 || latest_path == basis_path) return nullptr;
  try {
    const std::optional<FileStamp> stamp = stamp_of(latest_path);
    if (!stamp) return nullptr;
    std::lock_guard<std::mutex> g(mu_);  // one patch per pair, whoever asks first
    const auto key = std::make_pair(latest_path, basis_digest_hex);
    if (auto f = cache_.find(key); f != cache_.end() && f->second.stamp == *stamp) return f->second.z;
    std::string basis = read_file(basis_path, kMaxManifestBytes, "manifest");
    if (digest_hex(digest_bytes(basis)) != basis_digest_hex) return nullptr;  // not the center's copy
    std::string latest = read_file(latest_path, kMaxManifestBytes, "manifest");
    if (latest.size() != stamp->size) return nullptr;  // replaced meanwhile
    if (cache_.size() >= kMaxEntries) cache_.clear();
    Entry& e = cache_[key];
    std::string z = zstd_patch(basis, latest, level_);
    e.z = z.size() * 10 <= latest.size() * 9 ? std::make_shared<const std::string>(std::move(z)) : nullptr;
    e.stamp = *stamp;
    return e.z;
  } catch (const Error&) {
    return nullptr;
  }
}

}  // namespace distd::hq
