// Staging and the tree on two bind mounts of one file system (what systemd's ReadWritePaths= and
// StateDirectory= make under ProtectSystem=strict): same st_dev, but rename() fails with EXDEV.
// The sync refuses at once with what to change, before anything is downloaded; with staging on
// the tree's mount it converges. Needs root (mount); skipped otherwise.
#include <sys/mount.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>

#include "tests/support/mounts.h"
#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;


BOOST_AUTO_TEST_CASE(staging_on_another_bind_mount_is_refused_before_any_download) {
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("skipped: needs root to bind-mount");
    return;
  }
  SyncSite s;
  const std::string disk = s.tmp / "disk";
  fs::create_directories(disk + "/moodle");
  fs::create_directories(disk + "/staging");
  BindMount tree_mount(disk, s.tmp / "mnt-tree"), state_mount(disk, s.tmp / "mnt-state");
  if (!tree_mount.mounted || !state_mount.mounted) {
    BOOST_TEST_MESSAGE("skipped: cannot bind-mount here");
    return;
  }
  write_file(s.src() + "/a.txt", random_bytes(50'000, 1));
  s.publish();
  s.start_hq();
  // The tree through one mount, staging through the other: one file system, two mounts.
  std::string cfg = read_file(s.reg_cfg);
  cfg.replace(cfg.find("path = \"" + s.dst() + "\""), 8 + s.dst().size() + 1,
              "path = \"" + tree_mount.at + "/moodle\"");
  cfg.replace(cfg.find("[regional]\n"), 11, "[regional]\nstaging_dir = \"" + state_mount.at + "/staging\"\n");
  write_file(s.reg_cfg, cfg);
  RunResult r = s.sync();
  BOOST_TEST(r.status == 2, r.err);
  BOOST_TEST(r.err.find("cannot be renamed from the staging directory") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("EXDEV") != std::string::npos, r.err);
  BOOST_TEST(!exists(tree_mount.at + "/moodle/a.txt"));
  for (const auto& e : fs::directory_iterator(disk + "/moodle")) BOOST_FAIL("left in the tree: " << e.path());

  // Staging on the tree's mount: it converges.
  cfg.replace(cfg.find(state_mount.at + "/staging"), state_mount.at.size() + 8, tree_mount.at + "/staging");
  write_file(s.reg_cfg, cfg);
  nlohmann::json j = s.sync_ok();
  BOOST_TEST(j["to_version"] == 1);
  BOOST_TEST(exists(tree_mount.at + "/moodle/a.txt"));
}

// With staging_dir unset, downloads stage in <path>/.distd-staging: on the tree's own mount
// whatever mount the state directory is, so the shipped units need no drop-in.
BOOST_AUTO_TEST_CASE(the_default_staging_is_on_the_trees_own_mount) {
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("skipped: needs root to bind-mount");
    return;
  }
  SyncSite s;
  const std::string disk = s.tmp / "disk";
  fs::create_directories(disk + "/moodle");
  BindMount tree_mount(disk, s.tmp / "mnt-tree");
  if (!tree_mount.mounted) {
    BOOST_TEST_MESSAGE("skipped: cannot bind-mount here");
    return;
  }
  write_file(s.src() + "/a.txt", random_bytes(50'000, 1));
  write_file(s.src() + "/big.bin", random_bytes(300'000, 2));
  s.publish();
  s.start_hq();
  std::string cfg = read_file(s.reg_cfg);
  BOOST_REQUIRE(cfg.find("staging_dir") == std::string::npos);
  cfg.replace(cfg.find("path = \"" + s.dst() + "\""), 8 + s.dst().size() + 1,
              "path = \"" + tree_mount.at + "/moodle\"");
  write_file(s.reg_cfg, cfg);
  nlohmann::json j = s.sync_ok();
  BOOST_TEST(j["to_version"] == 1);
  BOOST_TEST(read_file(tree_mount.at + "/moodle/big.bin") == read_file(s.src() + "/big.bin"));
  BOOST_TEST(fs::is_directory(disk + "/moodle/.distd-staging"));
  for (const auto& e : fs::recursive_directory_iterator(disk + "/moodle/.distd-staging"))
    BOOST_TEST(!e.is_regular_file(), e.path());
}
