#include "cli/json_out.h"

#include <cstdio>

#include "manifest/path.h"

namespace distd::cli {

nlohmann::json entry_json(const Entry& e) {
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", e.mode);
  return {{"path", encode_path(e.path)}, {"size", e.size}, {"mode", mode}, {"digest", digest_hex(e.digest)}};
}

void print_json(const nlohmann::json& j) {
  std::string s = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
}

}  // namespace distd::cli
