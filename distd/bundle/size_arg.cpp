// parse_size (exporter.h): --max-size and --volume-size of distctl bundle export.
#include <cctype>
#include <cstdlib>

#include "distd/bundle/exporter.h"
#include "manifest/error.h"

namespace distd::bundle {

// By hand, not CLI::AsSizeValue: that takes whole numbers only, and "3.9G" (the default volume
// size) and "7.5G" are the documented forms.
uint64_t parse_size(const std::string& text, const std::string& what) {
  std::string t = text;
  uint64_t mult = 1;
  if (!t.empty()) {
    char c = static_cast<char>(std::toupper(static_cast<unsigned char>(t.back())));
    if (c == 'B') {
      t.pop_back();
      c = t.empty() ? 0 : static_cast<char>(std::toupper(static_cast<unsigned char>(t.back())));
      if (!t.empty() && (t.back() == 'i' || t.back() == 'I')) t.pop_back(), c = static_cast<char>(std::toupper(t.back()));
    }
    int shift = c == 'K' ? 10 : c == 'M' ? 20 : c == 'G' ? 30 : c == 'T' ? 40 : 0;
    if (shift) {
      t.pop_back();
      mult = uint64_t(1) << shift;
    }
  }
  char* end = nullptr;
  double v = t.empty() ? -1 : std::strtod(t.c_str(), &end);
  if (t.empty() || !end || *end != '\0' || v < 0 || v * double(mult) > 1e18)
    throw Error(Errc::usage, what + ": '" + text + "' is not a size", "write e.g. 3.9G, 700M, 64k or a byte count");
  return static_cast<uint64_t>(v * double(mult));
}

}  // namespace distd::bundle
