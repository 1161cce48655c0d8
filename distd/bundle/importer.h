// Regional side of sneakernet: verify a bundle from a stick and install what it brings through
// the same journal, planner and installer as network sync.
//
// Nothing on the stick is trusted: the key records it carries (distd-keys/) must verify as over
// the link (distd/regional/trust.h) and are followed first; the index must carry the signature
// of the key HQ signs with now (the pinned key, followed through those records), every
// member must be a regular file listed in the index with exactly its signed size and digest, and
// manifests must verify like a sync's (signature, expiry slack, no rollback). Member bytes are
// streamed into <staging_dir>/.bundle and only verified content is renamed into a channel's tree.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "distd/config/config.h"
#include "manifest/error.h"

namespace distd::bundle {

struct ImportProgress {
  uint64_t bytes_done = 0, bytes_total = 0;  // of the volumes on the stick
  uint32_t volume = 0, volumes = 0;
};

struct ImportOptions {
  int64_t now = 0;  // 0: the clock (expiry checks)
  std::function<void(const ImportProgress&)> progress;
  std::function<void(const std::string&)> log;
};

struct MissingFile {
  std::string path;
  uint64_t size = 0;
  std::string why;  // "not in this bundle", "volume 3 missing", "did not fit", ...
};

struct ChannelImport {
  std::string channel;
  uint64_t from_version = 0, to_version = 0;
  bool converged = false;   // the channel now holds to_version, completely
  bool up_to_date = false;  // it already did before this import
  uint64_t installed = 0;   // files installed from the bundle (whole objects and deltas)
  uint64_t delta = 0;       // ... of which by librsync delta
  uint64_t copied = 0;      // files installed by a local copy (renames, duplicates)
  uint64_t skipped = 0;     // files already present
  uint64_t deleted = 0;
  uint64_t installed_bytes = 0;
  std::vector<MissingFile> missing;
  bool ok = true;
  Errc code = Errc::internal;
  std::string error, hint;
  std::vector<std::string> warnings;  // the bundle's manifest expires soon or lives on the slack (freshness.h)
};

struct Problem {
  Errc code;
  std::string message;
};

struct ImportResult {
  std::string dir, bundle_id, site;
  uint32_t volumes = 0;
  std::vector<uint32_t> missing_volumes, truncated_volumes, refused_volumes;
  std::vector<ChannelImport> channels;
  std::vector<Problem> problems;  // refused entries and volumes, each with a clear message
  uint64_t bytes_read = 0;
  uint64_t unneeded_items = 0;    // bundle items this center already had
  std::vector<std::string> notes; // what plug-ins found beside the bundle (the forum's answers)

  bool complete() const;  // every channel converged and nothing was refused
  // 0 complete; the first problem's or channel error's status; 75 when only files are missing.
  int exit_status() const;
};

constexpr int kExitIncomplete = 75;

// Throws Error only when nothing can be done at all (no index, a key record on the stick that
// does not verify, bad index signature, bad config, the state lock is held); everything else
// lands in the result.
ImportResult import_bundle(const Config& cfg, const std::string& dir, const ImportOptions& opts = {});

// The short human-readable report left on the stick (distd-import-result.txt).
std::string render_result_text(const ImportResult& r, const std::string& site);
// The same for an import that was refused as a whole (import_bundle threw e).
std::string render_refusal_text(const Error& e, const std::string& site);

}  // namespace distd::bundle
