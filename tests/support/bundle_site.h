// An HQ and a regional center that talk by USB stick (a directory): real `distctl publish`,
// `distctl bundle request|export|import`. Plus raw tar surgery for tampering tests.
// Header-only (used by tests/test_bundle_*.cpp).
#pragma once

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/sync_site.h"

namespace distd::test {

class BundleSite : public SyncSite {
 public:
  std::string stick = tmp / "stick";

  explicit BundleSite(const std::string& extra_regional = "") : SyncSite(extra_regional) {
    std::filesystem::create_directories(stick);
    auto_enroll = false;
  }

  std::string vol(uint32_t v, const std::string& dir = {}) const {
    char b[64];
    std::snprintf(b, sizeof b, "/distd-bundle-%04u.tar", v);
    return (dir.empty() ? stick : dir) + b;
  }
  std::string index(const std::string& dir = {}) const { return (dir.empty() ? stick : dir) + "/distd-bundle.idx"; }

  RunResult request(const std::string& dir = {}) {
    return run({"distctl", "bundle", "request", "--config", reg_cfg, "--to", dir.empty() ? stick : dir, "--json"});
  }
  // Copies the center's site key to HQ's enrolled keys.
  void enroll() {
    std::filesystem::create_directories(hq_state + "/sites");
    std::filesystem::copy_file(reg_state + "/site.pub", hq_state + "/sites/center-1.pub",
                               std::filesystem::copy_options::overwrite_existing);
  }
  RunResult export_(const std::vector<std::string>& extra, const std::string& dir = {},
                    const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv = {"distctl", "bundle", "export", "--config", hq_cfg, "--to",
                                     dir.empty() ? stick : dir, "--json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv, {}, env, 300);
  }
  nlohmann::json export_ok(const std::vector<std::string>& extra, const std::string& dir = {}) {
    RunResult r = export_(extra, dir);
    BOOST_TEST_INFO("export stderr: " << r.err);
    BOOST_REQUIRE_EQUAL(r.status, 0);
    return nlohmann::json::parse(r.out);
  }
  // request -> enroll -> export with the request, into dir.
  nlohmann::json round(const std::vector<std::string>& extra = {}, const std::string& dir = {}) {
    RunResult q = request(dir);
    BOOST_TEST_INFO("request stderr: " << q.err);
    BOOST_REQUIRE_EQUAL(q.status, 0);
    enroll();
    std::vector<std::string> args = {"--request", (dir.empty() ? stick : dir) + "/distd-request.txt"};
    args.insert(args.end(), extra.begin(), extra.end());
    return export_ok(args, dir);
  }
  RunResult import_(const std::string& dir = {}) {
    return run({"distctl", "bundle", "import", "--config", reg_cfg, "--from", dir.empty() ? stick : dir, "--json"}, {},
               {}, 300);
  }
  // The import's JSON (also for failed imports, when it printed any).
  static nlohmann::json js(const RunResult& r) {
    try {
      return nlohmann::json::parse(r.out);
    } catch (...) {
      return nlohmann::json::object();
    }
  }
  // Forgets everything the center installed (tree, journal, staging) but keeps its site key.
  void reset_center() {
    std::filesystem::remove_all(dst());
    if (!std::filesystem::exists(reg_state)) return;
    for (auto& e : std::filesystem::directory_iterator(reg_state))
      if (e.path().filename() != "site.key" && e.path().filename() != "site.pub") std::filesystem::remove_all(e.path());
  }
};

// One ustar member of a volume: header offset, name, data offset and size.
struct TarMember {
  size_t header = 0, data = 0;
  uint64_t size = 0;
  std::string name;
};

inline std::vector<TarMember> tar_members(const std::string& bytes) {
  std::vector<TarMember> out;
  size_t pos = 0;
  while (pos + 512 <= bytes.size()) {
    const char* h = bytes.data() + pos;
    if (h[0] == '\0') break;
    TarMember m;
    m.header = pos;
    m.name = std::string(h, strnlen(h, 100));
    std::string prefix(h + 345, strnlen(h + 345, 155));
    if (!prefix.empty()) m.name = prefix + "/" + m.name;
    m.size = std::stoull(std::string(h + 124, 12), nullptr, 8);
    m.data = pos + 512;
    out.push_back(m);
    pos = m.data + (m.size + 511) / 512 * 512;
  }
  return out;
}

inline TarMember find_member(const std::string& bytes, const std::string& prefix) {
  for (auto& m : tar_members(bytes))
    if (m.name.rfind(prefix, 0) == 0) return m;
  BOOST_FAIL("no member starting with " + prefix);
  return {};
}

// Rewrites a header field and fixes the checksum.
inline void patch_header(std::string& bytes, size_t header, size_t field, size_t len, const std::string& value) {
  std::string v = value;
  v.resize(len, '\0');
  bytes.replace(header + field, len, v);
  bytes.replace(header + 148, 8, "        ");
  unsigned sum = 0;
  for (size_t i = 0; i < 512; ++i) sum += static_cast<unsigned char>(bytes[header + i]);
  char b[8];
  std::snprintf(b, sizeof b, "%06o", sum);
  bytes.replace(header + 148, 6, b);
  bytes[header + 154] = '\0';
  bytes[header + 155] = ' ';
}
inline void set_name(std::string& bytes, const TarMember& m, const std::string& name) {
  patch_header(bytes, m.header, 345, 155, "");  // no prefix
  patch_header(bytes, m.header, 0, 100, name);
}
inline void set_type(std::string& bytes, const TarMember& m, char type, const std::string& link = {}) {
  patch_header(bytes, m.header, 156, 1, std::string(1, type));
  patch_header(bytes, m.header, 157, 100, link);
}

}  // namespace distd::test
