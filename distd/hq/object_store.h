// HQ's content-addressed object store: <state_dir>/public/objects/<hex[0:2]>/<hex>, where hex is
// the BLAKE2b-256 of the content. An object, once in place, is exactly the bytes its name says:
// it only ever appears there by an atomic rename after its digest and size were checked.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "distd/hq/layout.h"
#include "manifest/digest.h"
#include "manifest/stat_cache.h"

namespace distd::hq {

struct GcStats {
  uint64_t objects_removed = 0, object_bytes_removed = 0;
  uint64_t deltas_removed = 0, delta_bytes_removed = 0;
  uint64_t temporaries_removed = 0;
};

class ObjectStore {
 public:
  explicit ObjectStore(std::string state_dir);

  const Layout& layout() const { return layout_; }
  std::string path_of(const Digest& d) const { return layout_.object(d); }

  // True when the object is in the store with this size (content is trusted: only verified
  // bytes are ever renamed into place).
  bool contains(const Digest& d, uint64_t size) const;

  enum class Added { present, linked, copied };

  // Puts the content of source_path into the store under `digest`.
  //  - already present with the right size: nothing to do (Added::present);
  //  - allow_link and the same file system: a hard link to the source (Added::linked);
  //  - otherwise a streamed copy (Added::copied), fsync'ed.
  // In every case the bytes that landed are hashed and must match digest and size, else
  // nothing is added and Error{mismatch} names the source file (it changed during publish).
  // The new name is not durable until flush(): call it before anything refers to the object.
  // When linked and linked_stat is given, *linked_stat receives the source's stat after the link
  // with the digest just verified (link(2) changed the source's ctime: the stat cache needs it).
  // Throws Error{io, no_space, not_found, mismatch}.
  Added add(const std::string& source_path, const Digest& digest, uint64_t size, bool allow_link,
            uint64_t* bytes_copied = nullptr, StatRecord* linked_stat = nullptr);

  // From now on, add() also stores the compressed form (<object>.zst, stored_zstd.h) of each
  // object it adds, at this zstd level (0: none). Objects already present are left as they are.
  void set_zstd_level(int level) { zstd_level_ = level; }
  uint64_t zstd_forms() const { return zstd_forms_; }            // made by add() so far
  uint64_t zstd_form_bytes() const { return zstd_form_bytes_; }  // their sizes

  // fsyncs every shard directory that add() created names in since the last flush.
  void flush();

  // Deletes every object whose digest is not in keep (sorted), every delta whose target is
  // not kept, and stale temporaries. REQUIRES: keep is sorted (std::sort of the digests).
  // Callers hold the publish lock (no add() runs at the same time).
  GcStats gc(const std::vector<Digest>& keep);

 private:
  Layout layout_;
  std::set<std::string> dirty_dirs_;
  int zstd_level_ = 0;
  uint64_t zstd_forms_ = 0, zstd_form_bytes_ = 0;
};

}  // namespace distd::hq
