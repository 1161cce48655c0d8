// The planner: how each entry of a new manifest gets onto this center's disk.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "distd/regional/journal.h"
#include "distd/regional/installer.h"
#include "manifest/manifest.h"

namespace distd {

// Below this a whole object is as cheap as a delta. (HQ declines a delta that would not be
// clearly smaller than the object's stored zstd form, so a small changed XML file goes as a
// delta only when that pays: docs/formats/compression.md.)
constexpr uint64_t kDeltaMinSize = 16 * 1024;

// Verified content another channel of this center holds: its installed manifest's entries
// (only those worth looking at), to copy from its tree instead of fetching.
struct OtherChannel {
  std::string channel;
  std::vector<Entry> entries;
};

struct PlanInput {
  const Manifest* target = nullptr;           // the verified new manifest
  const std::vector<Entry>* local = nullptr;  // what is on disk now (scan of the destination)
  // Fetched first: entries whose path or base name is in the set. The replica monitor passes
  // the SHA-1 content hashes of moodledata files the database references but the disk lacks
  // (a filedir entry's base name is its SHA-1).
  std::set<std::string> priority;
  uint64_t delta_min_size = kDeltaMinSize;
  // When set, unchanged entries are only counted here, not planned (a sync of a big, mostly
  // unchanged tree then holds and journals only the work).
  uint64_t* unchanged_out = nullptr;
  // The installer's policy: a local file is unchanged when its mode is what installing the
  // entry would give it (installed_mode), not necessarily HQ's signed mode.
  FileModes modes = FileModes::safe;
  // Other channels' content: an entry that is neither here nor at another path here is copied
  // from the first of these that lists its digest (Action::copy_other) instead of fetched.
  const std::vector<OtherChannel>* others = nullptr;
};

// One PlanItem per target entry (unchanged ones only counted when in.unchanged_out is set), in
// execution order (PlanItem::ord):
//   1. unchanged: the file at that path already has the signed digest and mode (state installed);
//   2. copy from a file that is here now under another path (rename, a file in two courses), or
//      from another channel's tree (in.others: the same bytes in two channels);
//   3. downloads: delta against the old version at the same path when both are over
//      delta_min_size, full otherwise; priority entries first, then smaller files first;
//   4. copy from a path fetched in step 3 (the same new content at several paths is fetched once).
// Deletions are not planned here: they follow the install of the whole version.
std::vector<PlanItem> make_plan(const PlanInput& in);

// True when path or its base name is in the set.
bool is_priority(const std::string& path, const std::set<std::string>& priority);

}  // namespace distd
