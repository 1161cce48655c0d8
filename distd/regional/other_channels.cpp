#include "distd/regional/other_channels.h"

#include <algorithm>

#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd {

std::vector<OtherChannel> other_channels_content(const Config& cfg, const ChannelConfig& ch, const Manifest& target,
                                                 const LogLineFn& log) {
  std::vector<OtherChannel> out;
  if (cfg.channels.size() < 2) return out;
  std::vector<Digest> wanted;
  wanted.reserve(target.entries.size());
  for (const auto& e : target.entries) wanted.push_back(e.digest);
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  for (const auto& other : cfg.channels) {
    if (other.name == ch.name) continue;
    const std::string path = installed_manifest_path(cfg, other.name);
    try {
      // Not verified again: only a hint. Every copy is checked against the target's signed digest.
      SignedManifest sm = parse_manifest(read_file(path, kMaxManifestBytes, "manifest"), path);
      OtherChannel oc;
      oc.channel = other.name;
      for (auto& e : sm.manifest.entries)
        if (std::binary_search(wanted.begin(), wanted.end(), e.digest)) oc.entries.push_back(std::move(e));
      if (!oc.entries.empty()) out.push_back(std::move(oc));
    } catch (const Error& e) {
      if (e.code() == Errc::not_found) continue;  // nothing installed there yet
      if (log) log(ch.name + ": not looking for copies in channel '" + other.name + "': " + e.what());
    }
  }
  return out;
}

std::vector<PlanItem> plan_with_other_channels(const Config& cfg, const ChannelConfig& ch, PlanInput& in,
                                               const LogLineFn& log) {
  std::vector<PlanItem> items = make_plan(in);
  const bool fetches = std::any_of(items.begin(), items.end(), [](const PlanItem& it) {
    return it.action == Action::full || it.action == Action::delta;
  });
  if (!fetches) return items;
  const std::vector<OtherChannel> others = other_channels_content(cfg, ch, *in.target, log);
  if (others.empty()) return items;
  std::vector<PlanItem>().swap(items);  // free before planning again
  in.others = &others;
  items = make_plan(in);
  in.others = nullptr;
  return items;
}

ChannelRoots channel_roots(const Config& cfg) {
  ChannelRoots r;
  for (const auto& c : cfg.channels) r[c.name] = c.path;
  return r;
}

bool stage_other_copy(const Installer& inst, const PlanItem& it, const ChannelRoots& roots, const std::string& staged,
                      bool sync) {
  const size_t slash = it.basis_path.find('/');
  if (slash == std::string::npos) return false;
  auto root = roots.find(it.basis_path.substr(0, slash));
  if (root == roots.end()) return false;
  return inst.stage_copy_from(root->second, it.basis_path.substr(slash + 1), staged, it.digest, it.size, sync);
}

}  // namespace distd
