// Request headers as HQ's HTTP server reads them, and the Range header in particular: httplib's
// header reader and Range parser (what distd/hq/http_server.cpp's serve_file gets in req.ranges),
// then resolve_range (distd/net/byte_range.h) against files of several sizes. The input is the
// header block of a request (what follows the request line). Nothing may crash or throw, and a
// resolved range lies inside the file and is not empty.
#include <httplib.h>

#include "distd/net/byte_range.h"
#include "tests/fuzz/fuzz_common.h"

// Defined in libcpp-httplib (what the server calls for every request), not declared in its header.
namespace httplib::detail {
bool read_headers(Stream& strm, Headers& headers);
}

namespace {

void check_range(int64_t first, int64_t last) {
  for (uint64_t size : {uint64_t(0), uint64_t(1), uint64_t(1000), uint64_t(1) << 40, ~uint64_t(0) >> 1}) {
    auto r = distd::resolve_range(first, last, size);
    if (!r) continue;
    FUZZ_CHECK(r->length > 0);
    FUZZ_CHECK(r->begin < size);
    FUZZ_CHECK(r->length <= size - r->begin);
    if (first >= 0) FUZZ_CHECK(r->begin == static_cast<uint64_t>(first));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(distd::fuzz::as_text(data, size));
  // The Range value alone, as if it were the whole header line.
  httplib::Ranges ranges;
  if (httplib::detail::parse_range_header(in, ranges))
    for (auto [first, last] : ranges) check_range(first, last);
  // The header block through httplib's reader, as the server reads a request.
  httplib::detail::BufferStream bs;
  bs.write(in.data(), in.size());
  httplib::Headers headers;
  if (!httplib::detail::read_headers(bs, headers)) return 0;
  auto it = headers.find("Range");
  if (it == headers.end()) return 0;
  ranges.clear();
  if (httplib::detail::parse_range_header(it->second, ranges))
    for (auto [first, last] : ranges) check_range(first, last);
  return 0;
}
