// GET /channels/<ch>/latest.manifest with "Accept-Encoding: zstd": the manifest as one zstd
// frame, made once per version (when the file changes) and kept in memory for every center
// that asks (docs/formats/compression.md). A first sync of a 100,000-file channel then moves
// about a fifth of the list.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace distd::hq {

// What tells one version of a manifest file from the next (publish renames a new file in).
struct FileStamp {
  uint64_t ino = 0, size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

class CompressedManifests {
 public:
  // level: the zstd level (HQ uses [hq] compression_level, at most 9: manifests are mostly hex
  // digests, which higher levels do not shrink further). 0: never compress.
  explicit CompressedManifests(int level) : level_(level) {}

  // The zstd frame of the file at path as it is now, or null when it cannot be read (the caller
  // serves the file as usual) or compression is off. Safe for concurrent use.
  std::shared_ptr<const std::string> get(const std::string& path);

 private:
  struct Entry {
    FileStamp stamp;
    std::shared_ptr<const std::string> z;
  };
  int level_;
  std::mutex mu_;
  std::map<std::string, Entry> cache_;
};

// POST /channels/<ch>/latest.manifest with the body "distd-basis <version> <digest>\n": the
// latest manifest as a zstd frame made with the center's copy of that version as its prefix
// (zstd_patch, docs/formats/http.md), when HQ still has that version and its file has that
// digest. Made once per (latest file, basis) and kept for every center at the same version.
class ManifestPatches {
 public:
  // level: the zstd level ([hq] compression_level); 0: never.
  explicit ManifestPatches(int level) : level_(level) {}

  // The patch from the manifest file basis_path, when its bytes have basis_digest, to the file at
  // latest_path as it is now; null when either cannot be read, the digest differs, they are the
  // same file, the patch would not be smaller than 90% of the latest, or patching is off. Safe
  // for concurrent use.
  std::shared_ptr<const std::string> get(const std::string& latest_path, const std::string& basis_path,
                                         const std::string& basis_digest_hex);

 private:
  struct Entry {
    FileStamp stamp;                       // of the latest file it was made from
    std::shared_ptr<const std::string> z;  // null: no patch pays
  };
  static constexpr size_t kMaxEntries = 64;  // one per channel and basis version still asked for
  int level_;
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, Entry> cache_;  // (latest, basis digest)
};

}  // namespace distd::hq
