// HQ publishing through the real `distctl publish`: versions, chaining, the object store,
// retention, hard links vs copies, refusal of files that change during publish, crash points.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "distd/hq/object_store.h"
#include "manifest/digest.h"
#include "manifest/error.h"
#include "manifest/fs.h"
#include "manifest/keys.h"
#include "manifest/manifest.h"
#include "tests/support/test_support.h"

namespace fs = std::filesystem;
using namespace distd;
using distd::test::RunResult;
using distd::test::TempDir;

namespace {

std::string slurp(const std::string& p) { return distd::test::read_file(p); }
void put(const std::string& p, const std::string& data) { distd::test::write_file(p, data); }

// An HQ with one key pair, a state dir and source trees under one temp dir.
struct Hq {
  TempDir tmp{"hqpub"};
  std::string state = tmp / "state";
  std::string cfg = tmp / "distd.toml";
  std::string pub = tmp / "hq.pub";

  explicit Hq(const std::string& channels, const std::string& hq_extra = "") {
    write_keypair(generate_keypair(), tmp / "hq.key", pub);
    put(cfg, "role = \"hq\"\nsite = \"hq\"\nstate_dir = \"" + state + "\"\n[hq]\nsecret_key = \"" + (tmp / "hq.key") +
                 "\"\npublic_key = \"hq.pub\"\n" + hq_extra + "\n" + channels);
  }
  std::string src(const std::string& ch) const { return tmp / ("src-" + ch); }

  RunResult publish(const std::string& ch, const std::vector<std::string>& env = {}, bool json = true) const {
    std::vector<std::string> argv = {"distctl", "publish", "--channel", ch, "--config", cfg};
    if (json) argv.push_back("--json");
    return distd::test::run(argv, {}, env, 120);
  }
  nlohmann::json publish_ok(const std::string& ch) const {
    RunResult r = publish(ch);
    BOOST_TEST_INFO("stderr: " << r.err << " stdout: " << r.out);
    BOOST_REQUIRE_EQUAL(r.status, 0);
    return nlohmann::json::parse(r.out);
  }
  std::string latest(const std::string& ch) const { return state + "/public/channels/" + ch + "/latest.manifest"; }
  std::string version_file(const std::string& ch, uint64_t v) const {
    return state + "/public/channels/" + ch + "/manifests/" + std::to_string(v) + ".manifest";
  }
  std::string object(const std::string& hex) const { return state + "/public/objects/" + hex.substr(0, 2) + "/" + hex; }
  SignedManifest verified(const std::string& path) const {
    return verify_manifest(slurp(path), load_public_key(pub), VerifyOptions{}, path);
  }
  // Every entry of the latest manifest has its object, with exactly its bytes.
  void check_consistent(const std::string& ch) const {
    SignedManifest sm = verified(latest(ch));
    BOOST_TEST(distd::test::exists(version_file(ch, sm.manifest.version)));
    BOOST_TEST(slurp(version_file(ch, sm.manifest.version)) == slurp(latest(ch)));
    for (const auto& e : sm.manifest.entries) {
      std::string hex = digest_hex(e.digest);
      BOOST_TEST_INFO("entry " << e.path);
      BOOST_REQUIRE(distd::test::exists(object(hex)));
      BOOST_TEST(distd::test::file_digest_hex(object(hex)) == hex);
    }
  }
  // Every object in the store is exactly the bytes its name says.
  void check_store_clean(bool allow_temporaries = false) const {
    if (!fs::exists(state + "/public/objects")) return;
    for (auto& f : fs::recursive_directory_iterator(state + "/public/objects")) {
      if (!f.is_regular_file()) continue;
      std::string name = f.path().filename();
      BOOST_TEST_INFO("object " << f.path());
      if (!allow_temporaries) BOOST_TEST(name[0] != '.');  // no temporaries left behind
      if (name[0] != '.') BOOST_TEST(distd::test::file_digest_hex(f.path()) == name);
    }
  }
};

std::string channel(const std::string& name, const std::string& path, const std::string& extra = "") {
  return "[[channel]]\nname = \"" + name + "\"\npath = \"" + path + "\"\n" + extra + "\n";
}

void make_tree(const std::string& root) {
  put(root + "/a.txt", "alpha\n");
  put(root + "/sub/b.bin", distd::test::random_bytes(200 * 1024, 1));
  put(root + "/sub/deeper/c.dat", distd::test::random_bytes(3000, 2));
  put(root + "/empty", "");
  put(root + "/dup1", "same content");
  put(root + "/other/dup2", "same content");
  // Older than the stat cache's racy window, as files on a real server mostly are.
  for (auto& f : fs::recursive_directory_iterator(root))
    fs::last_write_time(f.path(), fs::file_time_type::clock::now() - std::chrono::hours(1));
}

uint64_t inode(const std::string& p) {
  struct stat st {};
  BOOST_REQUIRE_EQUAL(::stat(p.c_str(), &st), 0);
  return st.st_ino;
}

}  // namespace

BOOST_AUTO_TEST_CASE(first_version_then_unchanged) {
  Hq hq(channel("c", "src-c"));
  make_tree(hq.src("c"));
  auto j = hq.publish_ok("c");
  BOOST_TEST(j["changed"].get<bool>());
  BOOST_TEST(j["version"].get<uint64_t>() == 1u);
  BOOST_TEST(j["files"].get<uint64_t>() == 6u);
  BOOST_TEST(j["added"].get<uint64_t>() == 6u);
  SignedManifest v1 = hq.verified(hq.latest("c"));
  BOOST_TEST(v1.manifest.version == 1u);
  BOOST_TEST(!v1.manifest.previous.has_value());
  BOOST_TEST(v1.manifest.expires - v1.manifest.created == 90 * 86400);
  hq.check_consistent("c");
  hq.check_store_clean();

  // Again, nothing changed: no version 2, exit 0, and it says so.
  RunResult r = hq.publish("c", {}, false);
  BOOST_TEST_INFO(r.err);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.out.find("unchanged, still version 1") != std::string::npos);
  BOOST_TEST(!distd::test::exists(hq.version_file("c", 2)));
  auto j2 = hq.publish_ok("c");
  BOOST_TEST(!j2["changed"].get<bool>());
  BOOST_TEST(j2["version"].get<uint64_t>() == 1u);
  BOOST_TEST(j2["hashed_files"].get<uint64_t>() == 0u);  // the stat cache vouched for everything
  BOOST_TEST(slurp(hq.latest("c")) == slurp(hq.version_file("c", 1)));

  // --force writes a new version of the same content (e.g. to renew its expiry).
  RunResult forced = distd::test::run({"distctl", "publish", "--channel", "c", "--config", hq.cfg, "--force", "--json"});
  BOOST_REQUIRE_EQUAL(forced.status, 0);
  auto jf = nlohmann::json::parse(forced.out);
  BOOST_TEST(jf["version"].get<uint64_t>() == 2u);
  BOOST_TEST(jf["reason"] == "forced");
  BOOST_TEST(hq.verified(hq.latest("c")).manifest.entries.size() == v1.manifest.entries.size());

  // A missing object is restored by the next publish even when nothing changed.
  std::string hex = digest_hex(v1.manifest.entries[0].digest);
  fs::remove(hq.object(hex));
  hq.publish_ok("c");
  hq.check_consistent("c");
}

BOOST_AUTO_TEST_CASE(changes_make_version_two_chained_to_one) {
  Hq hq(channel("c", "src-c"));
  make_tree(hq.src("c"));
  hq.publish_ok("c");
  SignedManifest v1 = hq.verified(hq.latest("c"));
  std::string removed_hex = digest_hex(v1.manifest.find("sub/deeper/c.dat")->digest);

  put(hq.src("c") + "/a.txt", "alpha, edited\n");                     // changed
  put(hq.src("c") + "/new/file.txt", "brand new");                    // added
  fs::remove(hq.src("c") + "/sub/deeper/c.dat");                      // removed
  fs::rename(hq.src("c") + "/sub/b.bin", hq.src("c") + "/moved.bin");  // moved
  auto j = hq.publish_ok("c");
  BOOST_TEST(j["changed"].get<bool>());
  BOOST_TEST(j["version"].get<uint64_t>() == 2u);
  BOOST_TEST(j["previous_version"].get<uint64_t>() == 1u);
  BOOST_TEST(j["added"].get<uint64_t>() == 1u);
  BOOST_TEST(j["changed_files"].get<uint64_t>() == 1u);
  BOOST_TEST(j["removed"].get<uint64_t>() == 1u);
  BOOST_TEST(j["moved"].get<uint64_t>() == 1u);

  SignedManifest v2 = hq.verified(hq.latest("c"));
  BOOST_TEST(v2.manifest.version == 2u);
  BOOST_REQUIRE(v2.manifest.previous.has_value());
  BOOST_TEST(digest_hex(*v2.manifest.previous) == digest_hex(hq.verified(hq.version_file("c", 1)).body_digest));
  BOOST_TEST(v2.manifest.find("moved.bin") != nullptr);
  BOOST_TEST(v2.manifest.find("sub/deeper/c.dat") == nullptr);
  hq.check_consistent("c");
  // Version 1 is retained, and so is the object only it references.
  BOOST_TEST(distd::test::exists(hq.version_file("c", 1)));
  BOOST_TEST(distd::test::exists(hq.object(removed_hex)));

  // The human summary names the counts.
  put(hq.src("c") + "/another", "x");
  RunResult r = hq.publish("c", {}, false);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.out.find("published c version 3") != std::string::npos);
  BOOST_TEST(r.out.find("1 added, 0 changed, 0 removed, 0 moved") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(retention_keeps_k_versions_then_collects) {
  Hq hq(channel("c", "src-c"), "keep_versions = 2");
  make_tree(hq.src("c"));
  hq.publish_ok("c");
  SignedManifest v1 = hq.verified(hq.latest("c"));
  std::string only_v1 = digest_hex(v1.manifest.find("sub/b.bin")->digest);
  // A delta computed against that object, with its target record (as the delta service leaves them).
  std::string delta_id(64, 'd');
  put(hq.state + "/public/deltas/" + delta_id, "delta bytes");
  put(hq.state + "/delta-targets/" + delta_id, only_v1 + " 204800\n");

  fs::remove(hq.src("c") + "/sub/b.bin");
  auto j2 = hq.publish_ok("c");  // v2: b.bin gone, still referenced by v1 (kept: K = 2)
  BOOST_TEST(j2["version"].get<uint64_t>() == 2u);
  BOOST_TEST(distd::test::exists(hq.object(only_v1)));
  BOOST_TEST(distd::test::exists(hq.state + "/public/deltas/" + delta_id));

  put(hq.src("c") + "/a.txt", "v3");
  auto j3 = hq.publish_ok("c");  // v3: v1 falls out of the window
  BOOST_TEST(j3["version"].get<uint64_t>() == 3u);
  BOOST_TEST(j3["gc"]["manifests_pruned"].get<uint64_t>() == 1u);
  BOOST_TEST(j3["gc"]["objects_removed"].get<uint64_t>() == 1u);  // b.bin (v1's a.txt is v2's too)
  BOOST_TEST(j3["gc"]["deltas_removed"].get<uint64_t>() == 1u);
  BOOST_TEST(!distd::test::exists(hq.version_file("c", 1)));
  BOOST_TEST(distd::test::exists(hq.version_file("c", 2)));
  BOOST_TEST(!distd::test::exists(hq.object(only_v1)));
  BOOST_TEST(!distd::test::exists(hq.state + "/public/deltas/" + delta_id));
  hq.check_consistent("c");
  // v2's objects are all still there.
  for (const auto& e : hq.verified(hq.version_file("c", 2)).manifest.entries)
    BOOST_TEST(distd::test::exists(hq.object(digest_hex(e.digest))));
  hq.check_store_clean();
}

BOOST_AUTO_TEST_CASE(hard_links_only_for_immutable_trees) {
  Hq hq(channel("plain", "src-plain") + channel("frozen", "src-frozen", "link = true") +
        channel("moodle", "src-moodle", "preset = \"moodledata\""));
  put(hq.src("plain") + "/f", "plain file");
  put(hq.src("frozen") + "/f", "frozen file");
  put(hq.src("moodle") + "/filedir/ab/cd/abcd1234", "moodle content");
  put(hq.src("moodle") + "/temp/scratch", "never published");
  put(hq.src("moodle") + "/sessions/sess_1", "never published");

  auto jp = hq.publish_ok("plain");
  BOOST_TEST(jp["objects"]["copied"].get<uint64_t>() == 1u);
  BOOST_TEST(jp["objects"]["linked"].get<uint64_t>() == 0u);
  std::string hp = distd::test::file_digest_hex(hq.src("plain") + "/f");
  BOOST_TEST(inode(hq.object(hp)) != inode(hq.src("plain") + "/f"));
  // An in-place edit of the source must not touch the store.
  put(hq.src("plain") + "/f", "edited in place");
  BOOST_TEST(distd::test::file_digest_hex(hq.object(hp)) == hp);

  auto jf = hq.publish_ok("frozen");
  BOOST_TEST(jf["objects"]["linked"].get<uint64_t>() == 1u);
  std::string hf = distd::test::file_digest_hex(hq.src("frozen") + "/f");
  BOOST_TEST(inode(hq.object(hf)) == inode(hq.src("frozen") + "/f"));

  auto jm = hq.publish_ok("moodle");
  BOOST_TEST(jm["files"].get<uint64_t>() == 1u);  // temp/ and sessions/ are excluded by the preset
  BOOST_TEST(jm["objects"]["linked"].get<uint64_t>() == 1u);
  std::string hm = distd::test::file_digest_hex(hq.src("moodle") + "/filedir/ab/cd/abcd1234");
  BOOST_TEST(inode(hq.object(hm)) == inode(hq.src("moodle") + "/filedir/ab/cd/abcd1234"));
  // Moodle deletes the file: the object survives (a resume or a delta still finds it).
  fs::remove(hq.src("moodle") + "/filedir/ab/cd/abcd1234");
  BOOST_TEST(distd::test::file_digest_hex(hq.object(hm)) == hm);
}

BOOST_AUTO_TEST_CASE(store_refuses_content_that_does_not_match) {
  TempDir tmp("hqstore");
  put(tmp / "src/f", "actual content");
  hq::ObjectStore store(tmp / "state");
  Digest claimed = digest_bytes("what the scan saw");
  for (bool link : {false, true}) {
    try {
      store.add(tmp / "src/f", claimed, 17, link);
      BOOST_FAIL("a mismatching file was stored");
    } catch (const Error& e) {
      BOOST_TEST(std::string(errc_name(e.code())) == "mismatch");
      BOOST_TEST(std::string(e.what()).find("src/f") != std::string::npos);
      BOOST_TEST(std::string(e.what()).find("changed while it was being published") != std::string::npos);
    }
    BOOST_TEST(!distd::test::exists(store.path_of(claimed)));
  }
  // Nothing left behind, not even a temporary.
  for (auto& f : fs::recursive_directory_iterator(tmp / "state")) BOOST_TEST(!f.is_regular_file());
}

BOOST_AUTO_TEST_CASE(file_changing_during_publish_is_refused) {
  Hq hq(channel("c", "src-c"));
  make_tree(hq.src("c"));
  const std::string busy = hq.src("c") + "/busy.bin";
  put(busy, distd::test::random_bytes(8 << 20, 7));
  hq.publish_ok("c");
  const std::string v1 = slurp(hq.latest("c"));

  // Something keeps rewriting the file in place while the publish runs.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    int fd = ::open(busy.c_str(), O_WRONLY);
    std::string a = distd::test::random_bytes(1 << 20, 8), b = distd::test::random_bytes(1 << 20, 9);
    for (uint64_t i = 0; !stop; ++i) {
      const std::string& chunk = (i / 8) % 2 ? a : b;
      (void)::pwrite(fd, chunk.data(), chunk.size(), static_cast<off_t>((i % 8) << 20));
    }
    ::close(fd);
  });
  RunResult r = hq.publish("c", {}, false);
  stop = true;
  writer.join();
  BOOST_TEST_MESSAGE("publish while a file changes: " << r.err);
  BOOST_TEST(r.status != 0);
  BOOST_TEST(r.err.find("busy.bin") != std::string::npos);
  BOOST_TEST(r.err.find("chang") != std::string::npos);
  BOOST_TEST(r.err.find("what to do") != std::string::npos);
  // Nothing was published, and nothing wrong entered the store.
  BOOST_TEST(slurp(hq.latest("c")) == v1);
  BOOST_TEST(!distd::test::exists(hq.version_file("c", 2)));
  hq.check_consistent("c");
  hq.check_store_clean();

  // Once the file rests, publishing works.
  auto j = hq.publish_ok("c");
  BOOST_TEST(j["version"].get<uint64_t>() == 2u);
  hq.check_consistent("c");
}

BOOST_AUTO_TEST_CASE(crash_at_any_point_leaves_a_consistent_state) {
  const std::vector<std::string> points = {"publish_after_scan",      "object_before_rename",  "publish_object",
                                           "publish_after_objects",   "publish_before_manifest", "before_rename",
                                           "publish_before_latest",   "publish_after_latest",  "publish_before_gc"};
  for (const auto& point : points) {
    BOOST_TEST_CONTEXT("crash at " << point) {
      Hq hq(channel("c", "src-c"), "keep_versions = 1");
      make_tree(hq.src("c"));
      hq.publish_ok("c");
      put(hq.src("c") + "/a.txt", "changed before the crash");
      put(hq.src("c") + "/added", distd::test::random_bytes(5000, 3));
      fs::remove(hq.src("c") + "/sub/b.bin");

      RunResult r = hq.publish("c", {"DISTD_FAULT=kill:" + point + ":1"});
      BOOST_TEST(r.status == 137);  // SIGKILL at that point
      hq.check_consistent("c");      // latest (old or new) verifies and has all its objects
      hq.check_store_clean(true);    // a temporary may be left; every real object is intact

      auto j = hq.publish_ok("c");   // the next run completes the job
      hq.check_consistent("c");
      SignedManifest now = hq.verified(hq.latest("c"));
      BOOST_TEST(now.manifest.find("added") != nullptr);
      BOOST_TEST(now.manifest.find("sub/b.bin") == nullptr);
      BOOST_TEST(now.manifest.previous.has_value());
      // Only the latest version is retained (K = 1); a version was never reused.
      size_t manifests = 0;
      for (auto& f : fs::directory_iterator(hq.state + "/public/channels/c/manifests")) {
        (void)f;
        ++manifests;
      }
      BOOST_TEST(manifests == 1u);
      BOOST_TEST(j["version"].get<uint64_t>() >= 2u);
      hq.check_store_clean();
    }
  }
}

BOOST_AUTO_TEST_CASE(second_publish_of_the_same_state_dir_is_refused) {
  Hq hq(channel("c", "src-c"));
  make_tree(hq.src("c"));
  hq.publish_ok("c");
  int fd = ::open((hq.state + "/publish.lock").c_str(), O_RDWR);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE_EQUAL(::flock(fd, LOCK_EX), 0);
  RunResult r = hq.publish("c", {}, false);
  ::close(fd);
  BOOST_TEST(r.status == 16);  // busy
  BOOST_TEST(r.err.find("another publish is running") != std::string::npos);
  BOOST_TEST(hq.publish("c").status == 0);
}

BOOST_AUTO_TEST_CASE(clear_errors_for_operator_mistakes) {
  Hq hq(channel("c", "src-c"));
  RunResult r = hq.publish("nope", {}, false);
  BOOST_TEST(r.status == 4);
  BOOST_TEST(r.err.find("configured channels: c") != std::string::npos);
  r = hq.publish("c", {}, false);  // the source tree does not exist
  BOOST_TEST(r.status == 4);
  BOOST_TEST(r.err.find("src-c") != std::string::npos);
  BOOST_TEST(r.err.find("what to do") != std::string::npos);

  Hq nokey(channel("c", "src-c"));
  put(nokey.cfg, "role = \"hq\"\nstate_dir = \"state\"\n" + channel("c", "src-c"));
  make_tree(nokey.src("c"));
  r = nokey.publish("c", {}, false);
  BOOST_TEST(r.status == 2);
  BOOST_TEST(r.err.find("secret_key") != std::string::npos);
}

// [hq] renew_after_days (1): a publish re-signs an unchanged channel whose newest manifest is a
// day old, so that a center can tell "nothing new" from a frozen HQ ([regional]
// stale_after_days); 0 turns it off. The clock is moved with faketime.
BOOST_AUTO_TEST_CASE(an_unchanged_channel_is_renewed_after_renew_after_days) {
  if (!distd::test::exists("/usr/bin/faketime")) {
    BOOST_TEST_MESSAGE("skipped: faketime is not installed");
    return;
  }
  auto publish_at = [](const Hq& hq, const std::string& offset) {
    RunResult r = distd::test::run({"faketime", "-f", offset, distd::test::bin("distctl"), "publish", "--channel", "c",
                                    "--config", hq.cfg, "--json"});
    BOOST_TEST_INFO(r.err);
    BOOST_REQUIRE_EQUAL(r.status, 0);
    return nlohmann::json::parse(r.out);
  };
  Hq hq(channel("c", "src-c"));
  make_tree(hq.src("c"));
  hq.publish_ok("c");
  BOOST_TEST(publish_at(hq, "+20h")["version"].get<uint64_t>() == 1u);  // not a day old yet
  auto renewed = publish_at(hq, "+25h");
  BOOST_TEST(renewed["version"].get<uint64_t>() == 2u);
  BOOST_TEST(renewed["reason"] == "renewed");

  Hq off(channel("c", "src-c"), "renew_after_days = 0");
  make_tree(off.src("c"));
  off.publish_ok("c");
  BOOST_TEST(publish_at(off, "+10d")["version"].get<uint64_t>() == 1u);  // 90-day manifest: 80 days left
}
