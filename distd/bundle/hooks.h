// What travels on a stick besides channel files: the extension points of the sneakernet round
// trip. The bundle engine names no engine above it; distd/plugins.cpp wires the forum channel in.
//
//   request hooks   center, before `bundle request` collects <state_dir>/outbound/: a hook may
//                   write (or remove) its files there, e.g. the sealed forum posts
//   export hooks    HQ, after a verified request's outbound items were kept under
//                   <state_dir>/inbound/<site>/: returns files to put beside the bundle
//                   (names start with "distd-"), e.g. the sealed answers for that site
//   import hooks    center, before a bundle's channels are imported: reads what an export hook
//                   put beside the bundle; returns lines for the import's report
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "distd/config/config.h"

namespace distd::bundle {

using HookLogFn = std::function<void(const std::string&)>;

struct StickFile {
  std::string name;  // FAT-safe, starts with "distd-"
  std::string data;
};

using RequestHook = std::function<void(const Config& cfg, const HookLogFn& log)>;
// received: the outbound items of this request that verified, now in inbound_dir.
using ExportHook = std::function<std::vector<StickFile>(const Config& hq_cfg, const std::string& site,
                                                        const std::string& inbound_dir,
                                                        const std::vector<std::string>& received, const HookLogFn& log)>;
using ImportHook = std::function<std::vector<std::string>(const Config& cfg, const std::string& dir, const HookLogFn& log)>;

// Filled once by register_plugins(); read afterwards (not thread-safe to change while in use).
std::vector<RequestHook>& request_hooks();
std::vector<ExportHook>& export_hooks();
std::vector<ImportHook>& import_hooks();

}  // namespace distd::bundle
