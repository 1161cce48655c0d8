#include "distd/net/byte_range.h"

#include <algorithm>

namespace distd {

std::optional<ByteRange> resolve_range(int64_t first, int64_t last, uint64_t size) {
  if (first < 0) {  // the last N bytes
    uint64_t n = last < 0 ? 0 : static_cast<uint64_t>(last);
    if (n == 0 || size == 0) return std::nullopt;
    uint64_t begin = size > n ? size - n : 0;
    return ByteRange{begin, size - begin};
  }
  uint64_t begin = static_cast<uint64_t>(first);
  if (begin >= size || (last >= 0 && static_cast<uint64_t>(last) < begin)) return std::nullopt;
  uint64_t end = last < 0 ? size - 1 : std::min<uint64_t>(static_cast<uint64_t>(last), size - 1);
  return ByteRange{begin, end - begin + 1};
}

}  // namespace distd
