// kill -9 of `distctl sync` at 20+ seeded fault points (DISTD_FAULT, manifest/fault.h): after
// every killed run each file at a final path has a digest signed for that path (old or new
// version, never a half-written or unverified file), and the next runs converge.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> src_files(const std::string& root) {
  std::vector<std::string> out;
  for (auto& f : fs::recursive_directory_iterator(root))
    if (f.is_regular_file()) out.push_back(fs::relative(f.path(), root).string());
  std::sort(out.begin(), out.end());
  return out;
}

// One version's worth of changes: new files, an edit in a big file, a rename, deletions, a duplicate.
void change(const std::string& root, int k, std::mt19937_64& rng) {
  for (int i = 0; i < 4; ++i)
    write_file(root + "/v" + std::to_string(k) + "/new" + std::to_string(i),
               random_bytes(150'000 + rng() % 200'000, rng()));
  for (int i = 0; i < 6; ++i)
    write_file(root + "/v" + std::to_string(k) + "/s" + std::to_string(i), random_bytes(100 + rng() % 5000, rng()));
  std::string dup = random_bytes(120'000, rng());
  write_file(root + "/dup/a" + std::to_string(k), dup);
  write_file(root + "/dup/b" + std::to_string(k), dup);
  std::string big = read_file(root + "/big.bin");
  fs::remove(root + "/big.bin");
  write_file(root + "/big.bin", mutate(big, rng() % (big.size() - 100), "edit " + std::to_string(k)));
  auto files = src_files(root);
  std::vector<std::string> small;
  for (auto& f : files)
    if (f.rfind("base/", 0) == 0) small.push_back(f);
  if (small.size() > 4) {
    fs::rename(root + "/" + small[rng() % small.size()], root + "/base/renamed" + std::to_string(k));
    small = {};
    for (auto& f : src_files(root))
      if (f.rfind("base/", 0) == 0) small.push_back(f);
    fs::remove(root + "/" + small[rng() % small.size()]);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(kill_at_seeded_points_never_exposes_unverified_files) {
  SyncSite s;
  std::mt19937_64 rng(20240607);
  for (int i = 0; i < 20; ++i) write_file(s.src() + "/base/f" + std::to_string(i), random_bytes(500 + i * 300, i));
  write_file(s.src() + "/big.bin", random_bytes(1'500'000, 77));
  uint64_t v = s.publish();
  s.start_hq();
  s.sync_ok();
  s.check_converged(v);

  // Named points first (each at least once), then seeded "any point" kills.
  std::vector<std::string> specs = {"kill:after_plan:1",         "kill:chunk_written:2",
                                    "kill:after_verify:1",       "kill:before_install_rename:2",
                                    "kill:after_install_rename:3", "kill:after_delta_request:1",
                                    "kill:after_patch:1",        "kill:before_deletions:1",
                                    "kill:after_record_manifest:1", "kill:write:5"};
  size_t next_spec = 0;
  int kills = 0, runs = 0;
  for (int k = 2; kills < 24 && k < 12; ++k) {
    change(s.src(), k, rng);
    uint64_t nv = s.publish();
    for (int attempt = 0; attempt < 40; ++attempt) {
      std::string spec = next_spec < specs.size() ? specs[next_spec++]
                                                  : "kill:*:" + std::to_string(1 + rng() % 60);
      RunResult r = s.sync({}, {"DISTD_FAULT=" + spec}, 120);
      ++runs;
      BOOST_TEST_INFO("run " << runs << " with " << spec << ": " << r.err);
      BOOST_TEST((r.status == 0 || r.status == 137));
      s.check_only_signed({v, nv});
      BOOST_TEST_MESSAGE("version " << nv << " " << spec << " -> " << (r.status == 137 ? "killed" : "completed"));
      if (r.status == 137) ++kills;
      if (r.status == 0) break;
    }
    // Converges without faults, exactly to the new version.
    s.sync_ok();
    s.check_converged(nv);
    v = nv;
  }
  BOOST_TEST_MESSAGE(kills << " kills over " << runs << " runs");
  BOOST_TEST(kills >= 20);
  // Staging holds nothing once converged.
  BOOST_REQUIRE(fs::is_directory(s.dst() + "/.distd-staging"));  // the default: in the tree's own mount
  for (auto& f : fs::recursive_directory_iterator(s.dst() + "/.distd-staging"))
    BOOST_TEST(!f.is_regular_file(), f.path());
}
