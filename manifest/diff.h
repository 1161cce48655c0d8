// What changed between two manifests.
#pragma once

#include <vector>

#include "manifest/manifest.h"

namespace distd {

struct ManifestDiff {
  std::vector<Entry> added;                     // new path, content not in the old version
  std::vector<Entry> removed;                   // path gone, content not moved elsewhere
  std::vector<std::pair<Entry, Entry>> changed;  // same path, other digest/size/mode (old, new)
  std::vector<std::pair<Entry, Entry>> moved;    // same digest, new path (old, new)
  bool empty() const { return added.empty() && removed.empty() && changed.empty() && moved.empty(); }
};

// Each removed entry pairs with at most one added entry of the same digest to form a move.
ManifestDiff diff_manifests(const Manifest& old_m, const Manifest& new_m);

}  // namespace distd
