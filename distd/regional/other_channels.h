// Dedupe across channels at a center: verified content one channel already holds is a local
// copy source for every other channel (a course's files/<sha1> member and moodledata's filedir
// blob are the same bytes). The planner (planner.h) plans such an entry as Action::copy_other;
// the installer copies it from the other tree and checks the new entry's signed digest, so a
// source that changed, vanished or is reached through a link only means a fetch instead.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "distd/config/config.h"
#include "distd/regional/installer.h"
#include "distd/regional/journal.h"
#include "distd/regional/planner.h"
#include "distd/regional/sync.h"
#include "manifest/manifest.h"

namespace distd {

// The entries of every other channel's installed manifest whose digest the target lists, in
// config order (read one manifest at a time, so only the matches stay in memory). A manifest
// that cannot be read is skipped with one log line: the content is then fetched.
std::vector<OtherChannel> other_channels_content(const Config& cfg, const ChannelConfig& ch, const Manifest& target,
                                                 const LogLineFn& log);

// make_plan(in), and when that plan fetches anything, the plan again with the other channels'
// content (in.others): the other manifests are read only when there is something to fetch, not
// on every check of an up-to-date tree.
std::vector<PlanItem> plan_with_other_channels(const Config& cfg, const ChannelConfig& ch, PlanInput& in,
                                               const LogLineFn& log);

// Channel name -> its tree (the config's path), for copy_other items.
using ChannelRoots = std::map<std::string, std::string>;
ChannelRoots channel_roots(const Config& cfg);

// Stages a copy_other item (basis_path "<channel>/<path>") into staged: true when the bytes
// have the item's size and digest. False when the channel is not configured any more, the file
// is gone, changed, or not a regular file reached without links.
bool stage_other_copy(const Installer& inst, const PlanItem& it, const ChannelRoots& roots, const std::string& staged,
                      bool sync);

}  // namespace distd
