// The one smart endpoint: librsync deltas from a client's basis signature to an object.
//
// A delta is identified by id = BLAKE2b-256(target digest bytes || signature bytes), computed
// once, stored atomically at <state_dir>/public/deltas/<id> (with a record of its target under
// <state_dir>/delta-targets/<id> for gc) and then served like any static file, Range included.
// Memory: the signature and librsync's hash table of it, plus two 256 KiB buffers; the object
// is streamed.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "distd/hq/layout.h"
#include "manifest/digest.h"

namespace distd::hq {

constexpr uint64_t kMaxSignatureBytes = uint64_t(64) << 20;  // 64 MiB

struct DeltaInfo {
  std::string id;        // 64 hex
  uint64_t size = 0;     // bytes of the delta
  Digest target{};
  uint64_t target_size = 0;
  bool computed = false;  // false: an existing delta was reused
};

// A delta from the basis described by signature to the bytes of target, computed in memory
// (for manifests: POST /channels/<c>/latest.manifest). Throws Error{corrupt} when librsync
// cannot load the signature.
std::string delta_of_bytes(std::string_view signature, std::string_view target);

// id = BLAKE2b-256(target || signature), as hex.
std::string delta_id(const Digest& target, std::string_view signature);

class DeltaService {
 public:
  // max_parallel: how many deltas may be computed at the same time (each holds a signature's
  // hash table in memory); further requests wait.
  explicit DeltaService(std::string state_dir, unsigned max_parallel = 1);

  // Returns the delta for (target, signature), computing it unless it exists. Concurrent
  // identical requests wait for one computation. Throws Error{not_found} when the target is
  // not in the store, Error{corrupt} when librsync cannot load the signature, Error{usage}
  // when it is larger than kMaxSignatureBytes, Error{io, no_space} on the disk.
  DeltaInfo get_or_compute(const Digest& target, std::string_view signature);

  const Layout& layout() const { return layout_; }
  uint64_t computed() const;  // deltas computed by this process
  uint64_t reused() const;    // requests answered with an existing delta

 private:
  struct Inflight {
    bool done = false;
    std::exception_ptr error;
    DeltaInfo info;
  };
  DeltaInfo compute(const Digest& target, std::string_view signature, const std::string& id);

  Layout layout_;
  unsigned max_parallel_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Inflight>> inflight_;
  unsigned running_ = 0;
  uint64_t computed_ = 0, reused_ = 0;
};

}  // namespace distd::hq
