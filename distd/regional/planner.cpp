#include "distd/regional/planner.h"

#include <algorithm>
#include <unordered_map>

namespace distd {

bool is_priority(const std::string& path, const std::set<std::string>& priority) {
  if (priority.empty()) return false;
  if (priority.count(path)) return true;
  auto slash = path.rfind('/');
  return slash != std::string::npos && priority.count(path.substr(slash + 1));
}

std::vector<PlanItem> make_plan(const PlanInput& in) {
  const Manifest& m = *in.target;
  std::unordered_map<std::string, const Entry*> local_by_path;
  std::unordered_map<std::string, const Entry*> local_by_digest;  // hex -> one local file
  for (const auto& e : *in.local) {
    local_by_path.emplace(e.path, &e);
    local_by_digest.emplace(digest_hex(e.digest), &e);
  }

  std::vector<PlanItem> unchanged, local_copies, fetches, plan_copies;
  std::unordered_map<std::string, std::string> fetched_digest_to_path;
  for (const auto& e : m.entries) {
    PlanItem it;
    it.path = e.path;
    it.digest = digest_hex(e.digest);
    it.size = e.size;
    it.mode = e.mode;
    it.priority = is_priority(e.path, in.priority);
    auto here = local_by_path.find(e.path);
    if (here != local_by_path.end() && here->second->digest == e.digest && here->second->size == e.size) {
      if (here->second->mode == e.mode) {
        it.action = Action::unchanged;
        it.state = ItemState::installed;
        unchanged.push_back(std::move(it));
      } else {  // same bytes, other mode: a local copy onto itself fixes the mode atomically
        it.action = Action::copy;
        it.basis_path = e.path;
        it.basis_digest = it.digest;
        local_copies.push_back(std::move(it));
      }
      continue;
    }
    if (auto src = local_by_digest.find(it.digest); src != local_by_digest.end()) {
      it.action = Action::copy;
      it.basis_path = src->second->path;
      it.basis_digest = it.digest;
      local_copies.push_back(std::move(it));
      continue;
    }
    if (auto leader = fetched_digest_to_path.find(it.digest); leader != fetched_digest_to_path.end()) {
      it.action = Action::copy;
      it.basis_path = leader->second;
      it.basis_digest = it.digest;
      plan_copies.push_back(std::move(it));
      continue;
    }
    fetched_digest_to_path.emplace(it.digest, e.path);
    if (here != local_by_path.end() && e.size >= in.delta_min_size && here->second->size >= in.delta_min_size) {
      it.action = Action::delta;
      it.basis_path = e.path;
      it.basis_digest = digest_hex(here->second->digest);
    } else {
      it.action = Action::full;
    }
    fetches.push_back(std::move(it));
  }
  auto by_priority_then_size = [](const PlanItem& a, const PlanItem& b) {
    if (a.priority != b.priority) return a.priority;
    if (a.size != b.size) return a.size < b.size;
    return a.path < b.path;
  };
  std::stable_sort(fetches.begin(), fetches.end(), by_priority_then_size);
  std::stable_sort(local_copies.begin(), local_copies.end(), by_priority_then_size);

  std::vector<PlanItem> out;
  out.reserve(m.entries.size());
  for (auto* group : {&unchanged, &local_copies, &fetches, &plan_copies})
    for (auto& it : *group) {
      it.ord = static_cast<int64_t>(out.size());
      out.push_back(std::move(it));
    }
  return out;
}

}  // namespace distd
