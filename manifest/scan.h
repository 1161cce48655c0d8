// Scanning a tree into manifest entries, hashing only what the stat cache cannot vouch for.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "manifest/manifest.h"

namespace distd {

enum class SpecialFiles {
  skip,    // symlinks, devices, sockets, FIFOs are skipped with a warning (never followed)
  refuse,  // the scan fails on the first one, naming it
};

// Exclude patterns (gitignore-like, matched against the path relative to the root):
//   "temp/"         a directory named temp at any depth (and all below it)
//   "*.tmp"         any file or directory whose name matches the glob
//   "filedir/x/"    a pattern containing an inner '/' is anchored at the root
// The "moodledata" preset adds Moodle's local-only directories (see moodledata_excludes()).
const std::vector<std::string>& moodledata_excludes();

struct ScanProgress {
  uint64_t files_seen = 0;
  uint64_t files_to_hash = 0, files_hashed = 0;
  uint64_t bytes_to_hash = 0, bytes_hashed = 0;
};

struct ScanOptions {
  std::vector<std::string> excludes;
  SpecialFiles special = SpecialFiles::skip;
  unsigned threads = 0;          // hashing threads; 0 = number of cores
  std::string stat_cache_path;   // SQLite stat cache; empty = hash everything
  std::function<void(const ScanProgress&)> progress;   // called from the scanning thread
  std::function<void(const std::string&)> warn;        // skipped special files etc.
};

struct ScanStats {
  uint64_t files = 0, bytes = 0;
  uint64_t hashed_files = 0, hashed_bytes = 0;  // what the stat cache could not vouch for
  uint64_t skipped = 0, excluded = 0;
};

// Walks root (never following links; openat/O_NOFOLLOW all the way down) and returns the
// entries sorted by path. A file that changes while it is hashed is hashed again (3 tries),
// then Error{io}. Throws Error{not_found} when root is missing, Error{unsupported} on a special
// file with SpecialFiles::refuse, Error{unsafe_path} on a name that cannot go in a manifest.
std::vector<Entry> scan_tree(const std::string& root, const ScanOptions& opts, ScanStats* stats = nullptr);

// True when rel_path (or one of its parent directories) matches an exclude pattern.
bool is_excluded(std::string_view rel_path, bool is_dir, const std::vector<std::string>& patterns);

}  // namespace distd
