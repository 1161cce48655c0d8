#include "distd/hq/delta_cache.h"
#include "distd/hq/stored_zstd.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <vector>

#include "manifest/fs.h"

namespace distd::hq {

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void DeltaCache::scan() {
  entries_.clear();
  total_ = 0;
  for (const auto& name : list_dir(layout_.deltas_dir())) {
    if (!is_hex64(name)) continue;  // temporaries being written, and <id>.zst (counted with <id>)
    struct stat st {}, zs {};
    if (::stat(layout_.delta(name).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    Entry e;
    e.size = static_cast<uint64_t>(st.st_size);
    if (::stat(zstd_form(layout_.delta(name)).c_str(), &zs) == 0) e.size += static_cast<uint64_t>(zs.st_size);
    e.used_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    entries_[name] = e;
    total_ += e.size;
  }
  scanned_ = true;
}

bool DeltaCache::admit(const std::string& id, uint64_t size) {
  if (size > quota_) return false;
  std::lock_guard<std::mutex> g(mu_);
  if (!scanned_) scan();
  if (total_ + size > quota_) scan();  // a publish may have removed some
  bool removed = false;
  while (total_ + size > quota_ && !entries_.empty()) {
    auto lru = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->second.used_ns < lru->second.used_ns) lru = it;
    const std::string victim = lru->first;
    (void)try_remove_file(zstd_form(layout_.delta(victim)));  // its stored form first: never one without the delta
    (void)try_remove_file(layout_.delta(victim));  // gone already (a publish): as good
    (void)try_remove_file(layout_.delta_target(victim));
    total_ -= lru->second.size;
    entries_.erase(lru);
    ++evicted_;
    removed = true;
  }
  if (removed) fsync_dir(layout_.deltas_dir());
  if (total_ + size > quota_) return false;
  auto& e = entries_[id];
  total_ = total_ - e.size + size;
  e.size = size;
  e.used_ns = now_ns();
  return true;
}

void DeltaCache::forget(const std::string& id) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  total_ -= it->second.size;
  entries_.erase(it);
}

void DeltaCache::touch(const std::string& id) {
  (void)::utimensat(AT_FDCWD, layout_.delta(id).c_str(), nullptr, 0);
  std::lock_guard<std::mutex> g(mu_);
  auto it = entries_.find(id);
  if (it != entries_.end()) it->second.used_ns = now_ns();
}

uint64_t DeltaCache::bytes() {
  std::lock_guard<std::mutex> g(mu_);
  if (!scanned_) scan();
  return total_;
}

uint64_t DeltaCache::evicted() {
  std::lock_guard<std::mutex> g(mu_);
  return evicted_;
}

}  // namespace distd::hq
