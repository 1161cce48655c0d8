// The stat cache: remembers, per path, the stat fields and digest from the last scan, so a
// rescan of an unchanged tree hashes nothing (SQLite via SQLiteCpp, one database per tree).
//
// Racy-clean rule (as git's index): a cached digest is trusted only when the stat fields match
// AND the file's mtime was older than kRacyWindowNs when the digest was computed. A file
// modified in the same tick as its hashing (2 s covers FAT's timestamp granularity) is hashed
// again on the next scan, so an edit that keeps size and mtime is still seen.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "manifest/digest.h"

namespace SQLite { class Database; }
struct stat;

namespace distd {

constexpr int64_t kRacyWindowNs = 2'000'000'000;

struct StatRecord {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t ino = 0;
  Digest digest{};
  int64_t hashed_at_ns = 0;  // wall clock when hashing started

  bool same_stat(const StatRecord& o) const {
    return size == o.size && mtime_ns == o.mtime_ns && ctime_ns == o.ctime_ns && ino == o.ino;
  }
  bool trustworthy() const { return mtime_ns + kRacyWindowNs <= hashed_at_ns; }
};

// The stat fields of a file exactly as scan_tree() records them (size, mtime, ctime, inode);
// digest and hashed_at_ns are left zero for the caller. For code that already knows a file's
// digest (it wrote the bytes) and seeds the cache with StatCache::update() so the next scan
// does not hash the file again.
StatRecord stat_record_of(const struct stat& st);

class StatCache {
 public:
  // Opens (creating) the cache for the tree at root. A cache made for another root, or a
  // damaged database, is discarded and rebuilt (it is only a cache).
  StatCache(const std::string& db_path, const std::string& root);
  ~StatCache();

  // Calls fn for every cached row in path order (memcmp order, the same as std::string's
  // operator<), streaming from SQLite: memory does not grow with the tree. A damaged table
  // simply ends the walk early (those files are hashed again).
  void for_each_sorted(const std::function<void(std::string_view path, const StatRecord&)>& fn);

  // In one transaction: writes these rows (insert or replace) and deletes these paths.
  void update(const std::vector<std::pair<const std::string*, const StatRecord*>>& upserts,
              const std::vector<std::string>& deletes);

 private:
  void open(const std::string& root);
  std::string db_path_;
  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace distd
