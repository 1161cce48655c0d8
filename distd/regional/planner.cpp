#include "distd/regional/planner.h"

#include <algorithm>

namespace distd {

bool is_priority(const std::string& path, const std::set<std::string>& priority) {
  if (priority.empty()) return false;
  if (priority.count(path)) return true;
  auto slash = path.rfind('/');
  return slash != std::string::npos && priority.count(path.substr(slash + 1));
}

std::vector<PlanItem> make_plan(const PlanInput& in) {
  const Manifest& m = *in.target;
  // The local files by path and by digest: sorted vectors of pointers (8 bytes a file; hash maps
  // cost 40 and more) searched by bisection.
  std::vector<const Entry*> local_by_path, local_by_digest;
  local_by_path.reserve(in.local->size());
  for (const auto& e : *in.local) local_by_path.push_back(&e);
  local_by_digest = local_by_path;
  auto path_less = [](const Entry* a, const Entry* b) { return a->path < b->path; };
  auto digest_less = [](const Entry* a, const Entry* b) { return a->digest < b->digest; };
  if (!std::is_sorted(local_by_path.begin(), local_by_path.end(), path_less))
    std::sort(local_by_path.begin(), local_by_path.end(), path_less);
  // Ties by path: a digest found here twice uses the first path, whatever the sort does.
  std::sort(local_by_digest.begin(), local_by_digest.end(), [](const Entry* a, const Entry* b) {
    return a->digest != b->digest ? a->digest < b->digest : a->path < b->path;
  });
  auto find_path = [&](const Entry& e) -> const Entry* {
    auto it = std::lower_bound(local_by_path.begin(), local_by_path.end(), &e, path_less);
    return it != local_by_path.end() && (*it)->path == e.path ? *it : nullptr;
  };
  auto find_digest = [&](const Entry& e) -> const Entry* {
    auto it = std::lower_bound(local_by_digest.begin(), local_by_digest.end(), &e, digest_less);
    return it != local_by_digest.end() && (*it)->digest == e.digest ? *it : nullptr;
  };

  // Pass 1: what each entry needs. The same new content at several paths is fetched once, by
  // its first path in manifest order (found by sorting the candidates by digest: 4 bytes a
  // candidate instead of a hash map of digests).
  enum Group : uint8_t { kUnchanged, kLocalCopy, kFetch, kPlanCopy };
  struct Key {
    uint8_t group;
    uint32_t idx;     // manifest index
    uint32_t leader;  // plan copies: the manifest index of the entry that fetches the content
  };
  std::vector<Key> keys;  // one per planned entry
  keys.reserve(m.entries.size());
  std::vector<uint32_t> candidates;  // manifest indices of entries that need their content from HQ
  uint64_t unchanged = 0;
  for (size_t idx = 0; idx < m.entries.size(); ++idx) {
    const Entry& e = m.entries[idx];
    const Entry* here = find_path(e);
    if (here && here->digest == e.digest && here->size == e.size) {
      if (here->mode != e.mode) {
        keys.push_back({kLocalCopy, static_cast<uint32_t>(idx), 0});
      } else if (in.unchanged_out) {
        ++unchanged;
      } else {
        keys.push_back({kUnchanged, static_cast<uint32_t>(idx), 0});
      }
    } else if (find_digest(e)) {
      keys.push_back({kLocalCopy, static_cast<uint32_t>(idx), 0});
    } else {
      candidates.push_back(static_cast<uint32_t>(idx));
    }
  }
  if (in.unchanged_out) *in.unchanged_out = unchanged;
  std::sort(candidates.begin(), candidates.end(), [&](uint32_t a, uint32_t b) {
    const Digest& x = m.entries[a].digest;
    const Digest& y = m.entries[b].digest;
    return x != y ? x < y : a < b;
  });
  uint32_t leader = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    bool first = i == 0 || m.entries[candidates[i - 1]].digest != m.entries[candidates[i]].digest;
    if (first) leader = candidates[i];
    keys.push_back({first ? kFetch : kPlanCopy, candidates[i], leader});
  }
  std::vector<uint32_t>().swap(candidates);

  // Pass 2: the items, in manifest order within each group for now.
  std::sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) { return a.idx < b.idx; });
  std::vector<PlanItem> out;
  out.reserve(keys.size());
  for (const Key& k : keys) {
    const Entry& e = m.entries[k.idx];
    PlanItem it;
    it.path = e.path;
    it.digest = digest_hex(e.digest);
    it.size = e.size;
    it.mode = e.mode;
    it.priority = is_priority(e.path, in.priority);
    const Entry* here = find_path(e);
    switch (k.group) {
      case kUnchanged:
        it.action = Action::unchanged;
        it.state = ItemState::installed;
        break;
      case kLocalCopy:  // the same bytes under another path, or at this path with another mode
        it.action = Action::copy;
        it.basis_path = here && here->digest == e.digest && here->size == e.size ? e.path : find_digest(e)->path;
        it.basis_digest = it.digest;
        break;
      case kPlanCopy:
        it.action = Action::copy;
        it.basis_path = m.entries[k.leader].path;
        it.basis_digest = it.digest;
        break;
      default:
        if (here && e.size >= in.delta_min_size && here->size >= in.delta_min_size) {
          it.action = Action::delta;
          it.basis_path = e.path;
          it.basis_digest = digest_hex(here->digest);
        } else {
          it.action = Action::full;
        }
        break;
    }
    out.push_back(std::move(it));
  }
  // Sort an index, then permute: copies and fetches by priority, then size, then path; the
  // other groups keep manifest order.
  std::vector<uint32_t> order(out.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    if (keys[a].group != keys[b].group) return keys[a].group < keys[b].group;
    if (keys[a].group == kLocalCopy || keys[a].group == kFetch) {
      const PlanItem& x = out[a];
      const PlanItem& y = out[b];
      if (x.priority != y.priority) return x.priority;
      if (x.size != y.size) return x.size < y.size;
      if (x.path != y.path) return x.path < y.path;
    }
    return keys[a].idx < keys[b].idx;
  });
  std::vector<Key>().swap(keys);
  // Apply the permutation in place by cycles (out[i] receives the item at order[i]).
  for (uint32_t i = 0; i < order.size(); ++i) {
    if (order[i] == i) continue;
    PlanItem tmp = std::move(out[i]);
    uint32_t cur = i;
    for (;;) {
      uint32_t from = order[cur];
      order[cur] = cur;
      if (from == i) {
        out[cur] = std::move(tmp);
        break;
      }
      out[cur] = std::move(out[from]);
      cur = from;
    }
  }
  for (size_t i = 0; i < out.size(); ++i) out[i].ord = static_cast<int64_t>(i);
  return out;
}

}  // namespace distd
