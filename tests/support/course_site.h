// An HQ with a `courses` channel and a regional center receiving it, for the course tests:
// fixtures from tests/support/make_mbz.py, real `distctl publish-course`, real `distd` (role hq),
// real `distctl sync`, and an independent libarchive listing to compare archives.
// Header-only (used by tests/test_course_*.cpp).
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "manifest/digest.h"
#include "manifest/keys.h"
#include "tests/support/test_support.h"

namespace distd::test {

// Runs tests/support/make_mbz.py OUT ARGS...; REQUIREs success.
inline std::string make_mbz(const std::string& out, const std::vector<std::string>& args = {}) {
  std::vector<std::string> argv = {"python3", source_path("tests/support/make_mbz.py"), out};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = run(argv);
  BOOST_REQUIRE_MESSAGE(r.status == 0, "make_mbz.py failed: " + r.err);
  return out;
}

// One archive member as libarchive lists it: name, type ('d'/'f'/other), size, BLAKE2b hex.
using Listed = std::tuple<std::string, char, uint64_t, std::string>;

inline std::vector<Listed> list_archive(const std::string& path) {
  std::vector<Listed> out;
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  BOOST_REQUIRE_MESSAGE(archive_read_open_filename(a, path.c_str(), 65536) == ARCHIVE_OK, "cannot open " + path);
  struct archive_entry* e;
  int r;
  std::vector<char> buf(65536);
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    char type = archive_entry_filetype(e) == AE_IFDIR ? 'd' : archive_entry_filetype(e) == AE_IFREG ? 'f' : '?';
    Hasher h;
    uint64_t n = 0;
    la_ssize_t got;
    while ((got = archive_read_data(a, buf.data(), buf.size())) > 0) {
      h.update(buf.data(), static_cast<size_t>(got));
      n += static_cast<uint64_t>(got);
    }
    BOOST_REQUIRE_MESSAGE(got == 0, "damaged member in " + path);
    out.emplace_back(archive_entry_pathname(e), type, n, digest_hex(h.finish()));
  }
  BOOST_REQUIRE_MESSAGE(r == ARCHIVE_EOF, "damaged archive " + path);
  archive_read_free(a);
  return out;
}

inline std::string archive_format_of(const std::string& path) {
  std::string head = read_file(path).substr(0, 2);
  return head == "PK" ? "zip" : head == "\x1f\x8b" ? "tar.gz" : "other";
}

class CourseSite {
 public:
  TempDir tmp{"course"};
  std::string hq_cfg = tmp / "hq.toml";
  std::string reg_cfg = tmp / "center.toml";
  std::string hq_state = tmp / "hq-state";
  std::string reg_state = tmp / "center-state";
  int hq_port = 0;
  std::unique_ptr<Process> hqd;

  // hq_extra / reg_extra: more lines for the [hq] / [regional] sections.
  explicit CourseSite(const std::string& hq_extra = "", const std::string& reg_extra = "") {
    write_keypair(generate_keypair(), tmp / "hq.key", tmp / "hq.pub");
    hq_port = free_port();
    write_file(hq_cfg, "role = \"hq\"\nsite = \"hq\"\nstate_dir = \"" + hq_state + "\"\n[hq]\nsecret_key = \"" +
                           (tmp / "hq.key") + "\"\nlisten = \"127.0.0.1:" + std::to_string(hq_port) + "\"\n" +
                           hq_extra + "\n[[channel]]\nname = \"courses\"\npath = \"" + (tmp / "hq-courses") +
                           "\"\nlink = true\n");
    // The center's site key, enrolled at HQ (deltas and batches are for enrolled sites only).
    std::filesystem::create_directories(hq_state + "/sites");
    write_keypair(generate_keypair(), tmp / "center-site.key", hq_state + "/sites/center-01.pub");
    write_file(reg_cfg, "role = \"regional\"\nsite = \"center-01\"\nstate_dir = \"" + reg_state +
                            "\"\n[regional]\nhq_url = \"http://127.0.0.1:" + std::to_string(hq_port) +
                            "\"\nhq_public_key = \"" + (tmp / "hq.pub") + "\"\nsite_secret_key = \"" +
                            (tmp / "center-site.key") + "\"\nprobe_min_seconds = 1\n" + reg_extra +
                            "\n[[channel]]\nname = \"courses\"\npath = \"" + (tmp / "center-courses") + "\"\n");
  }
  ~CourseSite() {
    if (hqd) hqd->stop();
  }

  std::string hq_tree() const { return tmp / "hq-courses"; }
  std::string center_tree() const { return tmp / "center-courses"; }
  std::string rebuilt(const std::string& key) const { return reg_state + "/courses/" + key + ".mbz"; }
  std::string latest_manifest() const { return hq_state + "/public/channels/courses/latest.manifest"; }

  RunResult publish_raw(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {bin("distctl"), "publish-course", "--config", hq_cfg};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }
  nlohmann::json publish(const std::string& mbz) {
    RunResult r = publish_raw({mbz, "--json"});
    BOOST_REQUIRE_MESSAGE(r.status == 0, "publish-course " + mbz + " failed: " + r.err);
    return nlohmann::json::parse(r.out);
  }
  void start_hq() {
    hqd = std::make_unique<Process>(std::vector<std::string>{bin("distd"), "--config", hq_cfg}, tmp / "distd-hq.log");
    BOOST_REQUIRE_MESSAGE(wait_for_port(hq_port, 20), "distd (hq) did not start: " + hqd->log());
  }
  RunResult sync_raw() { return run({bin("distctl"), "sync", "--config", reg_cfg, "--json"}); }
  nlohmann::json sync() {
    RunResult r = sync_raw();
    BOOST_REQUIRE_MESSAGE(r.status == 0, "sync failed (" + std::to_string(r.status) + "): " + r.err + r.out);
    auto j = nlohmann::json::parse(r.out);
    return j["channels"][0];
  }
  nlohmann::json courses() {
    RunResult r = run({bin("distctl"), "courses", "--config", reg_cfg, "--json"});
    BOOST_REQUIRE_MESSAGE(r.status == 0, "distctl courses failed: " + r.err);
    return nlohmann::json::parse(r.out)["courses"];
  }
};

}  // namespace distd::test
