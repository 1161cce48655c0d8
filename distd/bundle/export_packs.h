// Bundle export's candidates, and the packing of small objects into zpack items (one zstd stream
// for many small files, as the link's batch answers are). Private to distd/bundle/ (exporter.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "distd/bundle/exporter.h"
#include "distd/bundle/format.h"
#include "distd/hq/object_store.h"

namespace distd::bundle::export_detail {

// Something a bundle could bring.
struct Cand {
  Item item;
  std::string source;  // the file at HQ holding the item's bytes
  bool mandatory = false;
  bool priority = false;
  uint64_t sort_size = 0;
  std::string sort_path;
  std::vector<Omitted> serves;  // the entries that need it (reported when it does not fit)
};

// Objects of at most this many bytes are packed; a pack holds at most kPackContentMax bytes of
// them (and a quarter of a volume, and kMaxPackObjects).
inline constexpr uint64_t kPackObjectMax = 512 * 1024;
inline constexpr uint64_t kPackContentMax = 1024 * 1024;

struct PackSettings {
  int level = 19;             // [hq] batch_compression_level; 0: no packs
  bool forms_stored = true;   // [hq] compression_level > 0 (see hq::BatchStream)
  std::string scratch;        // where the packs are written (removed after the export)
  uint64_t volume_size = 0;   // --volume-size
};

// Packs the small objects that compress (object or zobject items of at most kPackObjectMax), in
// order, priority ones and the others apart, into zpack candidates of at most kPackContentMax
// (and a quarter of a volume) each; a pack takes the place of its first object and stands only
// when it takes less room on the stick than its objects would. New candidates are kept in owned.
// Counts the packs into res.
void pack_small_objects(std::vector<Cand*>& order, std::vector<std::unique_ptr<Cand>>& owned,
                        const hq::ObjectStore& store, const PackSettings& ps, ExportResult& res);

}  // namespace distd::bundle::export_detail
