#include "manifest/path.h"

#include "manifest/error.h"

namespace distd {

std::string unsafe_path_reason(std::string_view p) {
  if (p.empty()) return "is empty";
  if (p.size() > kMaxPathBytes) return "is longer than 4096 bytes";
  if (p.front() == '/') return "is absolute (starts with '/')";
  if (p.back() == '/') return "ends with '/'";
  if (p.find('\0') != std::string_view::npos) return "contains a NUL byte";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    std::string_view comp = p.substr(start, end - start);
    if (comp.empty()) return "has an empty component ('//')";
    if (comp == ".") return "has a '.' component";
    if (comp == "..") return "contains '..'";
    if (comp.size() > kMaxComponentBytes) return "has a component longer than 255 bytes";
    if (start == 0 && comp == kStagingDirName) return "is in '.distd-staging/', the center's staging directory";
    start = end + 1;
  }
  return {};
}

void check_safe_path(std::string_view path, std::string_view context) {
  std::string why = unsafe_path_reason(path);
  if (!why.empty())
    throw Error(Errc::unsafe_path, std::string(context) + ": path " + quote_path(path) + " " + why,
                "refused for safety: nothing outside the tree may be named; the source must be fixed or the "
                "file is not genuine");
}

static bool must_escape(unsigned char c) { return c <= 0x20 || c == 0x7F || c == '%'; }

std::string encode_path(std::string_view raw) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size());
  for (unsigned char c : raw) {
    if (must_escape(c)) {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::optional<std::string> decode_path(std::string_view enc) {
  std::string out;
  out.reserve(enc.size());
  for (size_t i = 0; i < enc.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(enc[i]);
    if (c == '%') {
      if (i + 2 >= enc.size()) return std::nullopt;
      auto val = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      int hi = val(enc[i + 1]), lo = val(enc[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      unsigned char b = static_cast<unsigned char>(hi << 4 | lo);
      if (!must_escape(b)) return std::nullopt;  // non-canonical spelling
      out += static_cast<char>(b);
      i += 2;
    } else {
      if (must_escape(c)) return std::nullopt;  // a raw byte that must have been escaped
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string quote_path(std::string_view raw) { return "'" + encode_path(raw) + "'"; }

}  // namespace distd
