#include "distd/regional/planner.h"

#include <algorithm>

namespace distd {

bool is_priority(const std::string& path, const std::set<std::string>& priority) {
  if (priority.empty()) return false;
  if (priority.count(path)) return true;
  auto slash = path.rfind('/');
  return slash != std::string::npos && priority.count(path.substr(slash + 1));
}

namespace {

// The local files by path and by digest: sorted vectors of pointers (8 bytes a file; hash maps
// cost 40 and more) searched by bisection. REQUIRES: the entries outlive it.
class LocalIndex {
 public:
  explicit LocalIndex(const std::vector<Entry>& local) {
    by_path_.reserve(local.size());
    for (const auto& e : local) by_path_.push_back(&e);
    by_digest_ = by_path_;
    if (!std::is_sorted(by_path_.begin(), by_path_.end(), PathLess()))
      std::sort(by_path_.begin(), by_path_.end(), PathLess());
    // Ties by path: a digest found here twice uses the first path, whatever the sort does.
    std::sort(by_digest_.begin(), by_digest_.end(), [](const Entry* a, const Entry* b) {
      return a->digest != b->digest ? a->digest < b->digest : a->path < b->path;
    });
  }

  // The local file at e's path, or nullptr.
  const Entry* find_path(const Entry& e) const {
    auto it = std::lower_bound(by_path_.begin(), by_path_.end(), &e, PathLess());
    return it != by_path_.end() && (*it)->path == e.path ? *it : nullptr;
  }
  // The local file (first by path) with e's digest, or nullptr.
  const Entry* find_digest(const Entry& e) const {
    auto it = std::lower_bound(by_digest_.begin(), by_digest_.end(), &e, DigestLess());
    return it != by_digest_.end() && (*it)->digest == e.digest ? *it : nullptr;
  }

 private:
  struct PathLess {
    bool operator()(const Entry* a, const Entry* b) const { return a->path < b->path; }
  };
  struct DigestLess {
    bool operator()(const Entry* a, const Entry* b) const { return a->digest < b->digest; }
  };
  std::vector<const Entry*> by_path_, by_digest_;
};

enum Group : uint8_t { kUnchanged, kLocalCopy, kOtherCopy, kFetch, kPlanCopy };

// Other channels' entries by digest (the first channel, then the first path, that has it).
class OtherIndex {
 public:
  explicit OtherIndex(const std::vector<OtherChannel>* others) {
    if (!others) return;
    for (uint32_t c = 0; c < others->size(); ++c)
      for (const auto& e : (*others)[c].entries) by_digest_.push_back({&e, c});
    std::stable_sort(by_digest_.begin(), by_digest_.end(), [](const Hit& a, const Hit& b) {
      return a.e->digest != b.e->digest ? a.e->digest < b.e->digest : a.c < b.c;
    });
  }
  struct Hit {
    const Entry* e;
    uint32_t c;  // index in others
  };
  const Hit* find(const Entry& e) const {
    auto it = std::lower_bound(by_digest_.begin(), by_digest_.end(), e.digest,
                               [](const Hit& h, const Digest& d) { return h.e->digest < d; });
    for (; it != by_digest_.end() && it->e->digest == e.digest; ++it)
      if (it->e->size == e.size) return &*it;
    return nullptr;
  }

 private:
  std::vector<Hit> by_digest_;
};

// What one target entry needs.
struct Key {
  uint8_t group;
  uint32_t idx;     // manifest index
  uint32_t leader;  // plan copies: the manifest index of the entry that fetches the content
};

// True when here (the local file at e's path) holds e's bytes.
bool same_content(const Entry* here, const Entry& e) { return here && here->digest == e.digest && here->size == e.size; }

// Pass 1: one Key per entry to plan, in no particular order (unchanged entries only counted in
// *in.unchanged_out when it is set). The same new content at several paths is fetched once, by
// its first path in manifest order (found by sorting the candidates by digest: 4 bytes a
// candidate instead of a hash map of digests).
std::vector<Key> classify(const PlanInput& in, const LocalIndex& local, const OtherIndex& others) {
  const Manifest& m = *in.target;
  std::vector<Key> keys;  // one per planned entry
  keys.reserve(m.entries.size());
  std::vector<uint32_t> candidates;  // manifest indices of entries that need their content from HQ
  uint64_t unchanged = 0;
  for (size_t idx = 0; idx < m.entries.size(); ++idx) {
    const Entry& e = m.entries[idx];
    const Entry* here = local.find_path(e);
    if (same_content(here, e)) {
      if (here->mode != installed_mode(e.mode, in.modes)) {
        keys.push_back({kLocalCopy, static_cast<uint32_t>(idx), 0});
      } else if (in.unchanged_out) {
        ++unchanged;
      } else {
        keys.push_back({kUnchanged, static_cast<uint32_t>(idx), 0});
      }
    } else if (local.find_digest(e)) {
      keys.push_back({kLocalCopy, static_cast<uint32_t>(idx), 0});
    } else if (others.find(e)) {
      keys.push_back({kOtherCopy, static_cast<uint32_t>(idx), 0});
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
  return keys;
}

// Pass 2: the item of one key: its action, basis and state (ord is set later).
PlanItem make_item(const PlanInput& in, const LocalIndex& local, const OtherIndex& others, const Key& k) {
  const Manifest& m = *in.target;
  const Entry& e = m.entries[k.idx];
  PlanItem it;
  it.path = e.path;
  it.digest = e.digest;
  it.size = e.size;
  it.mode = e.mode;
  it.priority = is_priority(e.path, in.priority);
  const Entry* here = local.find_path(e);
  switch (k.group) {
    case kUnchanged:
      it.action = Action::unchanged;
      it.state = ItemState::installed;
      break;
    case kLocalCopy:  // the same bytes under another path, or at this path with another mode
      it.action = Action::copy;
      it.basis_path = same_content(here, e) ? e.path : local.find_digest(e)->path;
      it.basis_digest = it.digest;
      break;
    case kOtherCopy: {
      const OtherIndex::Hit* h = others.find(e);
      it.action = Action::copy_other;
      it.basis_path = (*in.others)[h->c].channel + "/" + h->e->path;
      it.basis_digest = it.digest;
      break;
    }
    case kPlanCopy:
      it.action = Action::copy;
      it.basis_path = m.entries[k.leader].path;
      it.basis_digest = it.digest;
      break;
    default:
      if (here && e.size >= in.delta_min_size && here->size >= in.delta_min_size) {
        it.action = Action::delta;
        it.basis_path = e.path;
        it.basis_digest = here->digest;
      } else {
        it.action = Action::full;
      }
      break;
  }
  return it;
}

// Puts out (out[i] made from keys[i]) in execution order and numbers it: the groups in turn;
// copies and fetches by priority, then size, then path; the other groups in manifest order.
// keys is freed before the items move.
void order_items(std::vector<PlanItem>& out, std::vector<Key>&& keys) {
  // Sort an index, then permute.
  std::vector<uint32_t> order(out.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    if (keys[a].group != keys[b].group) return keys[a].group < keys[b].group;
    if (keys[a].group == kLocalCopy || keys[a].group == kOtherCopy || keys[a].group == kFetch) {
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
}

}  // namespace

std::vector<PlanItem> make_plan(const PlanInput& in) {
  LocalIndex local(*in.local);
  OtherIndex others(in.others);
  std::vector<Key> keys = classify(in, local, others);
  // The items, in manifest order within each group for now.
  std::sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) { return a.idx < b.idx; });
  std::vector<PlanItem> out;
  out.reserve(keys.size());
  for (const Key& k : keys) out.push_back(make_item(in, local, others, k));
  order_items(out, std::move(keys));
  return out;
}

}  // namespace distd
