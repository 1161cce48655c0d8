// One HTTP byte range (RFC 9110 section 14) against a file of known size. Pure.
#pragma once

#include <cstdint>
#include <optional>

namespace distd {

struct ByteRange {
  uint64_t begin = 0;
  uint64_t length = 0;
};

// first/last as a Range header's one range gives them (httplib's convention): "bytes=F-L" is
// (F, L), "bytes=F-" is (F, -1), "bytes=-N" (the last N bytes) is (-1, N). Returns the bytes to
// send, clipped to the file, or nullopt when the range cannot be satisfied (answer 416): it
// starts at or past the end, ends before it starts, or asks for the last 0 bytes / any bytes of
// an empty file.
std::optional<ByteRange> resolve_range(int64_t first, int64_t last, uint64_t size);

}  // namespace distd
