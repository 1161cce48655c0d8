#include "manifest/diff.h"

#include <map>

namespace distd {

ManifestDiff diff_manifests(const Manifest& a, const Manifest& b) {
  ManifestDiff d;
  std::vector<Entry> gone, fresh;
  size_t i = 0, j = 0;
  while (i < a.entries.size() || j < b.entries.size()) {
    if (j == b.entries.size() || (i < a.entries.size() && a.entries[i].path < b.entries[j].path)) {
      gone.push_back(a.entries[i++]);
    } else if (i == a.entries.size() || b.entries[j].path < a.entries[i].path) {
      fresh.push_back(b.entries[j++]);
    } else {
      const Entry &x = a.entries[i++], &y = b.entries[j++];
      if (x.digest != y.digest || x.size != y.size || x.mode != y.mode) d.changed.emplace_back(x, y);
    }
  }
  // A removed path whose content reappears at an added path is a move (each pairs once).
  std::multimap<Digest, size_t> gone_by_digest;
  for (size_t k = 0; k < gone.size(); ++k) gone_by_digest.emplace(gone[k].digest, k);
  std::vector<bool> used(gone.size(), false);
  for (auto& e : fresh) {
    auto it = gone_by_digest.find(e.digest);
    if (it != gone_by_digest.end()) {
      used[it->second] = true;
      d.moved.emplace_back(gone[it->second], e);
      gone_by_digest.erase(it);
    } else {
      d.added.push_back(e);
    }
  }
  for (size_t k = 0; k < gone.size(); ++k)
    if (!used[k]) d.removed.push_back(gone[k]);
  return d;
}

}  // namespace distd
