// The disk quota of HQ's kept deltas (<state_dir>/public/deltas/, [hq] delta_cache_bytes): a
// delta is admitted only after the least recently used ones made room for it. "Used" is the
// file's mtime, set when a delta is stored and again whenever a request is answered with it, so
// the order survives a restart. Publishes remove deltas too (their target gone) without telling
// this index, so it rescans the directory whenever it has to evict. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "distd/hq/layout.h"

namespace distd::hq {

class DeltaCache {
 public:
  DeltaCache(Layout layout, uint64_t quota) : layout_(std::move(layout)), quota_(quota) {}

  // Makes room for a delta of size bytes about to be stored as id (removing the least recently
  // used deltas and their target records) and counts it. Returns false, changing nothing, when
  // size alone is over the quota. Call forget(id) if the delta is then not stored after all.
  [[nodiscard]] bool admit(const std::string& id, uint64_t size);
  void forget(const std::string& id);
  // A request is answered with delta id: it becomes the most recently used.
  void touch(const std::string& id);

  uint64_t quota() const { return quota_; }
  uint64_t bytes();    // bytes of the deltas counted (after a scan on first use)
  uint64_t evicted();  // deltas removed to make room, by this process

 private:
  struct Entry {
    uint64_t size = 0;
    int64_t used_ns = 0;
  };
  void scan();  // REQUIRES: mu_ held

  Layout layout_;
  const uint64_t quota_;
  std::mutex mu_;
  bool scanned_ = false;
  std::map<std::string, Entry> entries_;
  uint64_t total_ = 0, evicted_ = 0;
};

}  // namespace distd::hq
