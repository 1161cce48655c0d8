// Publishing a channel at HQ: scan the source tree, store its objects, write manifest N+1.
//
// Order of durable steps (a crash at any point leaves a consistent state):
//   1. every object the new version references is in the store (fsync'ed, directories too);
//   2. public/channels/<ch>/manifests/<N+1>.manifest (signed, previous = body digest of N);
//   3. public/channels/<ch>/latest.manifest is replaced atomically;
//   4. manifests beyond [hq] keep_versions are deleted, then unreferenced objects and deltas.
// A crash before 3 leaves latest at N (left-over objects or an orphan manifest are cleaned up
// by the next publish); after 3 the new version is complete.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "distd/config/config.h"
#include "distd/hq/object_store.h"
#include "distd/hq/settings.h"
#include "manifest/fs.h"
#include "manifest/keys.h"
#include "manifest/manifest.h"

namespace distd::hq {

// Whether objects of this channel may be hard links into its source tree: preset
// "moodledata" (write-once files) or `link = true` in its [[channel]] table (ChannelConfig::link).
bool channel_allows_links(const ChannelConfig& ch);

// Exclusive lock on <state_dir>/publish.lock for the lifetime of the object; a second holder
// fails at once with Error{io} ("another publish is running"). Held by every publish and by a key
// rotation (distd/hq/key_rotation.h).
class PublishLock {
 public:
  explicit PublishLock(const Layout& layout);

 private:
  UniqueFd fd_;
};

// HQ's signing key from [hq] secret_key. Throws when it is unset, or when [hq] public_key names the
// public half of another key pair.
SecretKey load_signing_key(const Config& cfg, const HqSettings& hs);

struct PublishProgress {
  enum class Phase { scanning, storing } phase = Phase::scanning;
  uint64_t files_done = 0, files_total = 0;
  uint64_t bytes_done = 0, bytes_total = 0;
};
using PublishProgressFn = std::function<void(const PublishProgress&)>;

struct PublishOptions {
  bool force = false;  // write a new version even when nothing changed (e.g. to renew expiry)
};

struct PublishResult {
  std::string channel;
  bool changed = false;            // a new version was written
  std::string reason;  // "changed", "unchanged", "first version", "forced", "renewed", "re-signed" (new key)
  uint64_t version = 0;            // the latest version after this run
  uint64_t previous_version = 0;   // the version it follows (0: none)
  uint64_t files = 0, bytes = 0;   // of the latest version
  size_t added = 0, modified = 0, removed = 0, moved = 0;  // vs the previous version
  uint64_t objects_linked = 0, objects_copied = 0, objects_present = 0, bytes_copied = 0;
  uint64_t zstd_forms = 0, zstd_form_bytes = 0;  // compressed forms stored for new objects
  uint64_t hashed_files = 0, hashed_bytes = 0;  // what the stat cache could not vouch for
  uint64_t manifests_pruned = 0;
  GcStats gc;
  int64_t expires = 0;
  std::string manifest_path;       // public/channels/<ch>/manifests/<version>.manifest
  std::vector<std::string> warnings;
};

// Publishes one channel. Holds <state_dir>/publish.lock for the whole run; a second publish of
// the same state dir fails at once with Error{io} ("another publish is running").
// Throws Error (mismatch when a source file changed while it was published; nothing is
// published then).
PublishResult publish_channel(const Config& cfg, const std::string& channel, const PublishProgressFn& progress = {},
                              const PublishOptions& opts = {});

// The latest published manifest of a channel (parsed, signature not checked), if any.
std::optional<SignedManifest> read_latest_manifest(const Layout& layout, const std::string& channel);

}  // namespace distd::hq
