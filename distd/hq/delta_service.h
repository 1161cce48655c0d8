// The one smart endpoint: librsync deltas from a client's basis signature to an object.
//
// A delta is identified by id = BLAKE2b-256(target digest bytes || signature bytes), where a
// signature without blocks counts as canonical_signature() (its delta is the whole target,
// whatever its block length), computed once, stored atomically at <state_dir>/public/deltas/<id>
// (with a record of its target under <state_dir>/delta-targets/<id> for gc) and then served like
// any static file, Range included. Only a delta that pays (distd/delta delta_pays: delta and
// signature at most 90% of the target, the center's own rule) is kept, within the disk quota of
// DeltaCache; the computation stops as soon as the delta cannot pay.
// Memory: the signature and librsync's hash table of it, plus two 256 KiB buffers; the object
// is streamed.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "distd/hq/delta_cache.h"
#include "distd/hq/layout.h"
#include "manifest/digest.h"

namespace distd::hq {

constexpr uint64_t kMaxSignatureBytes = uint64_t(64) << 20;  // 64 MiB
constexpr uint64_t kDeltaZstdMin = 4096;  // smaller deltas get no stored zstd form

enum class DeltaOutcome {
  ready,        // stored (or already there): GET /deltas/<id>
  not_smaller,  // delta + signature would be over 90% of the target: nothing stored
  no_room,      // larger than the whole delta cache quota: nothing stored
};

struct DeltaInfo {
  DeltaOutcome outcome = DeltaOutcome::ready;
  std::string id;        // 64 hex
  uint64_t size = 0;     // bytes of the delta
  uint64_t zsize = 0;    // bytes of its stored zstd form (GET /deltas/<id>.zst); 0: none
  Digest target{};
  uint64_t target_size = 0;
  bool computed = false;  // false: an existing delta was reused
};

// A delta from the basis described by signature to the bytes of target, computed in memory
// (for manifests: POST /channels/<c>/latest.manifest). Throws Error{corrupt} when librsync
// cannot load the signature.
std::string delta_of_bytes(std::string_view signature, std::string_view target);

// The 12 bytes that stand for any signature without blocks (the librsync header with magic
// RS_RK_BLAKE2_SIG_MAGIC, block length 0, strong sum length 0); other signatures unchanged.
std::string_view canonical_signature(std::string_view signature);

// id = BLAKE2b-256(target || canonical_signature(signature)), as hex.
std::string delta_id(const Digest& target, std::string_view signature);

class DeltaService {
 public:
  // max_parallel: how many deltas may be computed at the same time (each holds a signature's
  // hash table in memory); further requests wait.
  // cache_bytes: the disk quota of kept deltas ([hq] delta_cache_bytes).
  // zstd_level > 0: a delta of at least kDeltaZstdMin bytes that compresses also gets a stored
  // zstd form (<id>.zst, stored_zstd.h), and whether a delta pays is judged by the smaller form
  // against the object's stored form when it has one (what a whole download would cost).
  explicit DeltaService(std::string state_dir, unsigned max_parallel = 1, uint64_t cache_bytes = uint64_t(1) << 30,
                        int zstd_level = 0);

  // Returns the delta for (target, signature), computing it unless it exists, or the outcome
  // not_smaller / no_room (remembered in memory for the last 4096 such requests, so a repeat
  // costs nothing). Concurrent identical requests wait for one computation. Throws Error{not_found} when the target is
  // not in the store, Error{corrupt} when librsync cannot load the signature, Error{usage}
  // when it is larger than kMaxSignatureBytes, Error{io, no_space} on the disk.
  DeltaInfo get_or_compute(const Digest& target, std::string_view signature);

  const Layout& layout() const { return layout_; }
  uint64_t computed() const;  // deltas computed by this process
  uint64_t reused() const;    // requests answered with an existing delta
  uint64_t declined() const;  // requests answered not_smaller or no_room
  DeltaCache& cache() { return cache_; }

 private:
  struct Inflight {
    bool done = false;
    std::exception_ptr error;
    DeltaInfo info;
  };
  DeltaInfo compute(const Digest& target, std::string_view signature, const std::string& id);

  Layout layout_;
  DeltaCache cache_;
  unsigned max_parallel_;
  int zstd_level_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Inflight>> inflight_;
  unsigned running_ = 0;
  uint64_t computed_ = 0, reused_ = 0, declined_ = 0;
  std::map<std::string, DeltaOutcome> declined_ids_;  // id -> why no delta (at most 4096)
  std::deque<std::string> declined_order_;
};

}  // namespace distd::hq
