// kill -9 of `distctl bundle import` at named and seeded fault points (DISTD_FAULT): the import
// installs in batches (staged files made durable, renamed together, one journal commit), so
// after every killed run each file at a final path has a digest signed for that path (old or new
// version), every item the journal calls installed is at its final path with its signed digest,
// and importing the same stick again converges.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <random>

#include "distd/regional/journal.h"
#include "manifest/digest.h"
#include "tests/support/bundle_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

// One version's worth of changes: new files, an edit in the big file (a delta), a rename (a local
// copy), a duplicate (a copy of fetched content), a deletion.
void change(const std::string& root, int k, std::mt19937_64& rng) {
  for (int i = 0; i < 12; ++i)
    write_file(root + "/v" + std::to_string(k) + "/s" + std::to_string(i), random_bytes(100 + rng() % 40000, rng()));
  std::string dup = random_bytes(90'000, rng());
  write_file(root + "/dup/a" + std::to_string(k), dup);
  write_file(root + "/dup/b" + std::to_string(k), dup);
  std::string big = read_file(root + "/big.bin");
  fs::remove(root + "/big.bin");
  write_file(root + "/big.bin", mutate(big, rng() % (big.size() - 100), "edit " + std::to_string(k)));
  fs::rename(root + "/base/f" + std::to_string(k), root + "/base/renamed" + std::to_string(k));
  fs::remove(root + "/base/f" + std::to_string(k + 10));
}

// What the journal calls installed is at its final path with its signed digest.
void check_journal_not_ahead(const BundleSite& s) {
  Journal j(s.reg_state + "/journal.sqlite");
  for (const auto& it : j.items(s.channel)) {
    if (it.state != ItemState::installed) continue;
    BOOST_TEST_INFO("journal says installed: " << it.path);
    BOOST_REQUIRE(exists(s.dst() + "/" + it.path));
    BOOST_TEST(file_digest_hex(s.dst() + "/" + it.path) == digest_hex(it.digest));
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(kill_during_import_never_exposes_unverified_files) {
  BundleSite s;
  std::mt19937_64 rng(20240611);
  for (int i = 0; i < 30; ++i) write_file(s.src() + "/base/f" + std::to_string(i), random_bytes(300 + i * 250, i));
  write_file(s.src() + "/big.bin", random_bytes(1'200'000, 77));
  uint64_t v = s.publish();
  s.export_ok({});
  RunResult first = s.import_();
  BOOST_REQUIRE_MESSAGE(first.status == 0, first.err);
  s.check_converged(v);

  std::vector<std::string> specs = {"kill:after_plan:1",          "kill:after_verify:3",
                                    "kill:before_install_rename:4", "kill:after_install_rename:6",
                                    "kill:before_batch_commit:1",   "kill:after_batch_commit:1",
                                    "kill:before_batch_commit:2",   "kill:before_deletions:1",
                                    "kill:after_record_manifest:1", "kill:write:3"};
  size_t next_spec = 0;
  int kills = 0, runs = 0;
  for (int k = 2; k < 8 && (kills < 16 || next_spec < specs.size()); ++k) {
    change(s.src(), k, rng);
    uint64_t nv = s.publish();
    fs::remove_all(s.stick);
    s.export_ok({"--since", std::to_string(v)});
    for (int attempt = 0; attempt < 20; ++attempt) {
      std::string spec = next_spec < specs.size() ? specs[next_spec++] : "kill:*:" + std::to_string(1 + rng() % 40);
      RunResult r = run({"distctl", "bundle", "import", "--config", s.reg_cfg, "--from", s.stick, "--json"}, {},
                        {"DISTD_FAULT=" + spec}, 120);
      ++runs;
      BOOST_TEST_INFO("run " << runs << " with " << spec << ": " << r.err);
      BOOST_TEST((r.status == 0 || r.status == 137));
      s.check_only_signed({v, nv});
      check_journal_not_ahead(s);
      BOOST_TEST_MESSAGE("version " << nv << " " << spec << " -> " << (r.status == 137 ? "killed" : "completed"));
      if (r.status == 137) ++kills;
      if (r.status == 0) break;
    }
    // The same stick again, without faults: exactly the new version.
    RunResult again = s.import_();
    BOOST_TEST(again.status == 0, again.err);
    s.check_converged(nv);
    v = nv;
  }
  BOOST_TEST_MESSAGE(kills << " kills over " << runs << " runs");
  BOOST_TEST(kills >= 12);
  for (auto& f : fs::recursive_directory_iterator(s.reg_state + "/staging"))
    BOOST_TEST(!f.is_regular_file(), f.path());
}
