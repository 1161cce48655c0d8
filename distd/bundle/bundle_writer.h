// Writing an exported bundle into its directory (the stick): the signed index first (a stick
// pulled later still says what is missing) with the plug-ins' extra files, then the volumes in
// order, each member checked against its digest as it is copied. Used by export_bundle()
// (exporter.cpp), which decides what goes in; the format is format.h (docs/formats/bundle.md).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "distd/bundle/format.h"
#include "distd/bundle/hooks.h"
#include "distd/bundle/tar_volume.h"
#include "distd/io/member_pipe.h"

namespace distd::bundle {

// Empties dir of an older bundle (and its distd-keys/), then writes HQ's key records
// (key_records[k] is record k + 2) as distd-keys/<N>.keys, then ix signed with sk as the index,
// and the extras that have a FAT-safe "distd-" name (each appended to *written). Every file is
// written atomically and durably. Returns the index's size.
uint64_t write_index(const std::string& dir, const Index& ix, const SecretKey& sk,
                     const std::vector<std::string>& key_records, const std::vector<StickFile>& extras,
                     std::vector<std::string>* written);

// Writes a bundle's volumes in order, each piece read from its item's source. The main thread
// reads each chunk and writes it to the volume; a second thread hashes the same chunk
// (MemberPipe, hash only). A few pieces may be in flight; all are checked before a volume is
// closed, so a complete volume only ever holds verified members. REQUIRES: the items are written
// in the index's order, and they, their sources and ix outlive the object. Not safe for
// concurrent use.
class BundleVolumeWriter {
 public:
  using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;
  // done: the bytes already written (the index); total: the bundle's size, for progress.
  BundleVolumeWriter(const std::string& dir, const Index& ix, const ProgressFn& progress, uint64_t done,
                     uint64_t total)
      : dir_(dir), ix_(ix), progress_(progress), done_(done), total_(total) {}

  // Writes every piece of it from source, opening volumes as its pieces ask. Throws
  // Error{mismatch} when source is shorter than it, or when a piece in flight (this item's or an
  // earlier one's) does not match its digest.
  void write_item(const Item& it, const std::string& source);
  // Checks the pieces still in flight, then closes the last volume (after opening any the index
  // lists that no piece opened).
  void finish();

 private:
  struct Pending {
    size_t id;
    const Digest* digest;
    const std::string* source;
  };
  static constexpr size_t kMaxPending = 4;

  void check_oldest();
  void check_all();
  // Closes the current volume (all its pieces checked) and opens the next, until volume v is open.
  void open_volume(uint32_t v);

  const std::string& dir_;
  const Index& ix_;
  const ProgressFn& progress_;
  uint64_t done_;
  const uint64_t total_;
  // Destroyed in this order, last first: the volume, then the pieces in flight, then the pipe.
  MemberPipe pipe_;
  std::deque<Pending> pending_;
  size_t next_id_ = 0;
  std::unique_ptr<TarVolumeWriter> vol_;
  uint32_t cur_ = 0;
};

}  // namespace distd::bundle
