// A manifest on a stick as a delta (docs/formats/bundle.md): an mpatch item is a zstd frame made
// with an older version of the same channel's manifest file as its prefix (zstd --patch-from);
// an mdelta item, what HQs before it wrote, is zstd(librsync delta) from that file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace distd::bundle {

// HQ: the mpatch bytes that turn manifest file basis into target, or nullopt when they would
// not be clearly smaller (at most 90%) than target itself.
std::optional<std::string> manifest_delta_bytes(std::string_view basis, std::string_view target);

// The center: the manifest file rebuilt from basis and the item's bytes (patch: mpatch, else
// mdelta), at most target_size bytes. Throws Error{mismatch} naming what when they do not decode
// or apply. (The caller checks the result's digest, then verifies it as any manifest.)
std::string apply_manifest_delta(std::string_view basis, std::string_view bytes, bool patch, uint64_t target_size,
                                 const std::string& what);

}  // namespace distd::bundle
