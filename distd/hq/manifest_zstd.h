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
    uint64_t ino = 0, size = 0;
    int64_t mtime_ns = 0;
    std::shared_ptr<const std::string> z;
  };
  int level_;
  std::mutex mu_;
  std::map<std::string, Entry> cache_;
};

}  // namespace distd::hq
