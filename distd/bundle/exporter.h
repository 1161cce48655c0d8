// HQ side of sneakernet: write a bundle (signed index + tar volumes) for a regional center.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "distd/bundle/format.h"
#include "distd/config/config.h"

namespace distd::bundle {

struct ExportOptions {
  std::string request_path;          // a center's request: bring exactly what it lacks
  std::string channel;               // only this channel (default: all, or the request's)
  std::optional<uint64_t> since;     // without a request: the center has this version
  uint64_t max_size = 0;             // bytes on the stick (index + volumes); 0 = no limit
  uint64_t volume_size = kDefaultVolumeSize;
  std::function<void(uint64_t done, uint64_t total)> progress;
  std::function<void(const std::string&)> log;
};

struct ExportResult {
  std::string dir, bundle_id, site = "-";
  std::string request_report;  // the request's status report (Request::report) as it came; empty: none
  std::vector<ChannelSpan> channels;
  uint32_t volumes = 0;
  uint64_t bytes = 0;                     // written to the stick (index + volumes)
  uint64_t manifests = 0, objects = 0, deltas = 0;
  uint64_t manifest_deltas = 0;  // of the manifests: carried as deltas from the version before (mdelta)
  uint64_t object_bytes = 0, delta_bytes = 0;  // as on the stick (an object's stored form when it goes compressed)
  uint64_t zstd_objects = 0, zstd_object_content_bytes = 0;  // of those objects: carried compressed, and their size decoded
  // Of those objects: carried packed, in zpack items of one zstd stream each, and their size decoded.
  uint64_t packs = 0, packed_objects = 0, packed_content_bytes = 0;
  uint64_t delta_target_bytes = 0;        // what the deltas stand for
  uint64_t held_entries = 0;              // entries the center already has (not exported)
  uint64_t held_elsewhere_entries = 0;    // of those, held only in another of its channels (the import copies them)
  uint64_t shared_entries = 0;            // entries whose content another entry already brings
  std::vector<Omitted> omitted;           // did not fit --max-size
  uint64_t omitted_bytes = 0;
  uint64_t outbound_received = 0;         // items from the request's distd-outbound/
  std::vector<std::string> warnings;
  std::vector<std::string> extra_files;  // written beside the bundle by plug-ins (the forum's answers)
  std::vector<std::string> notes;        // what plug-ins did with the request (forum posts applied)
};

// Throws Error: usage (bad options, --max-size too small for the manifests), not_found (no such
// channel or version), bad_signature/corrupt (request), io/no_space (the stick).
ExportResult export_bundle(const Config& hq_cfg, const std::string& dir, const ExportOptions& opts);

// "3.9G", "700M", "64k", "123" (bytes; binary multiples). Throws Error{usage}.
uint64_t parse_size(const std::string& text, const std::string& what);

}  // namespace distd::bundle
