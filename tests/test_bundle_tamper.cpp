// A bundle from a stick is untrusted input. Tampered, hostile, truncated, incomplete or mixed-up
// bundles are refused or partly installed as docs/sneakernet.md says, with a clear message, and
// never leave a wrong byte at a final path (every file there has a digest signed for it).
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "tests/support/bundle_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

void make_tree(const std::string& root) {
  for (int i = 0; i < 24; ++i)
    write_file(root + "/filedir/" + std::to_string(i % 4) + "/f" + std::to_string(i), random_bytes(500 + i * 4001, i));
  write_file(root + "/big/one.bin", random_bytes(600000, 100));
  write_file(root + "/big/two.bin", random_bytes(300000, 101));
}

std::string copy_stick(BundleSite& s, const std::string& name) {
  std::string d = s.tmp / name;
  fs::remove_all(d);
  fs::copy(s.stick, d);
  return d;
}

void flip(const std::string& path, size_t at) {
  std::string b = read_file(path);
  b[at] = static_cast<char>(b[at] ^ 0x5a);
  write_file(path, b);
}

size_t total_entries(BundleSite& s, uint64_t v) { return s.manifest(v).manifest.entries.size(); }

bool has_problem(const nlohmann::json& j, const std::string& text) {
  for (auto& p : j["problems"])
    if (p["message"].get<std::string>().find(text) != std::string::npos) return true;
  return false;
}

// Nothing named `escape` appeared anywhere in the test's temp dir outside the stick copies.
void check_no_escape(BundleSite& s) {
  for (auto& f : fs::recursive_directory_iterator(s.tmp.path()))
    BOOST_TEST(f.path().filename().string().find("escape") == std::string::npos, f.path());
  BOOST_TEST(!exists("/tmp/distd-bundle-escape"));
}

}  // namespace

BOOST_AUTO_TEST_CASE(flipped_bytes_in_object_manifest_index) {
  BundleSite s;
  make_tree(s.src());
  s.publish();
  s.export_ok({});
  std::string vol = read_file(s.vol(1));
  std::string victim = file_digest_hex(s.src() + "/filedir/1/f5");

  // An object: refused; everything else is installed; a clean bundle finishes the job.
  std::string d = copy_stick(s, "obj");
  flip(s.vol(1, d), find_member(vol, "o/" + victim).data + 100);
  RunResult r = s.import_(d);
  BOOST_TEST(r.status == 10, r.err);
  auto j = BundleSite::js(r);
  BOOST_TEST(has_problem(j, "does not match its signed digest"), r.out);
  BOOST_TEST(!exists(s.dst() + "/filedir/1/f5"));
  BOOST_TEST(exists(s.dst() + "/filedir/1/f1"));
  BOOST_TEST(j["channels"][0]["missing"].size() == 1u);
  BOOST_TEST(j["channels"][0]["missing"][0]["path"].get<std::string>() == "filedir/1/f5");
  s.check_only_signed({1});
  RunResult ok = s.import_();
  BOOST_TEST(ok.status == 0, ok.err);
  s.check_converged(1);

  // A manifest: nothing of the channel can be installed.
  s.reset_center();
  d = copy_stick(s, "man");
  flip(s.vol(1, d), find_member(vol, "m/c/1.manifest").data + 10);
  r = s.import_(d);
  BOOST_TEST(r.status == 10, r.err);
  BOOST_TEST(r.err.find("m/c/1.manifest' does not match its signed digest") != std::string::npos, r.err);
  BOOST_TEST(s.dst_files().empty());

  // The index: its signature fails, nothing is read.
  d = copy_stick(s, "idx");
  flip(s.index(d), 40);
  r = s.import_(d);
  BOOST_TEST(r.status == 6, r.err);
  BOOST_TEST(r.err.find("signature does not verify") != std::string::npos, r.err);
  BOOST_TEST(s.dst_files().empty());
}

BOOST_AUTO_TEST_CASE(flipped_byte_in_delta) {
  BundleSite s;
  make_tree(s.src());
  s.publish();
  s.round();
  BOOST_REQUIRE_EQUAL(s.import_().status, 0);
  std::string old_big = read_file(s.dst() + "/big/one.bin");
  std::string big = read_file(s.src() + "/big/one.bin");
  fs::remove(s.src() + "/big/one.bin");
  write_file(s.src() + "/big/one.bin", mutate(big, 300000, "an edit"));
  write_file(s.src() + "/filedir/new", "new");
  s.publish();
  auto e = s.round();
  BOOST_REQUIRE_EQUAL(e["deltas"].get<uint64_t>(), 1u);
  std::string vol = read_file(s.vol(1));
  TarMember dm = find_member(vol, "d/");
  flip(s.vol(1), dm.data + dm.size / 2);
  RunResult r = s.import_();
  BOOST_TEST(r.status == 10, r.err);
  BOOST_TEST(read_file(s.dst() + "/big/one.bin") == old_big);  // the old file is untouched
  BOOST_TEST(exists(s.dst() + "/filedir/new"));
  s.check_only_signed({1, 2});
  // The network-free fix: a new request and bundle.
  s.round();
  BOOST_TEST(s.import_().status == 0);
  s.check_converged(2);
}

BOOST_AUTO_TEST_CASE(hostile_entries_refused) {
  BundleSite s;
  make_tree(s.src());
  s.publish();
  s.export_ok({});
  const std::string vol = read_file(s.vol(1));
  auto members = tar_members(vol);
  BOOST_REQUIRE(members.size() > 5);
  const TarMember a = members[3], b = members[4];  // two objects

  struct Case {
    std::string name;
    std::function<void(std::string&)> edit;
    int status;
    std::string message;
  };
  std::vector<Case> cases = {
      {"dotdot", [&](std::string& v) { set_name(v, a, "../../../../distd-bundle-escape"); }, 9, "unsafe path"},
      {"absolute", [&](std::string& v) { set_name(v, a, "/tmp/distd-bundle-escape"); }, 9, "absolute"},
      {"symlink", [&](std::string& v) { set_type(v, a, '2', "/etc/passwd"); }, 14, "symbolic link"},
      {"hardlink", [&](std::string& v) { set_type(v, a, '1', b.name); }, 14, "hard link"},
      {"device", [&](std::string& v) { set_type(v, a, '3'); }, 14, "not a regular file"},
      {"duplicate", [&](std::string& v) { set_name(v, b, a.name); }, 5, "appears twice"},
      {"unlisted", [&](std::string& v) { set_name(v, a, "o/escape"); }, 5, "not listed"},
      {"oversize",
       [&](std::string& v) {
         char sz[16];
         std::snprintf(sz, sizeof sz, "%011llo", static_cast<unsigned long long>(a.size + 512));
         patch_header(v, a.header, 124, 12, sz);
       },
       10, "the signed index says"},
  };
  for (auto& c : cases) {
    BOOST_TEST_CONTEXT("case " << c.name) {
      s.reset_center();
      std::string d = copy_stick(s, "case-" + c.name);
      std::string v = vol;
      c.edit(v);
      BOOST_REQUIRE_EQUAL(v.size(), vol.size());
      write_file(s.vol(1, d), v);
      RunResult r = s.import_(d);
      BOOST_TEST(r.status == c.status, r.err);
      BOOST_TEST(r.err.find(c.message) != std::string::npos, r.err);
      s.check_only_signed({1});
      check_no_escape(s);
      // Everything not touched by the edit still arrived. (A link, device or bigger size makes
      // tar read the following data as headers: the rest of that volume is then missing.)
      if (c.status == 9 || c.status == 5) BOOST_TEST(s.dst_files().size() + 2 >= total_entries(s, 1));
    }
  }
}

BOOST_AUTO_TEST_CASE(truncated_volume_at_20_seeded_points) {
  BundleSite s;
  make_tree(s.src());
  s.publish();
  s.export_ok({"--volume-size", "512k"});
  uint32_t nvol = 0;
  while (exists(s.vol(nvol + 1))) ++nvol;
  BOOST_REQUIRE(nvol >= 3);
  std::mt19937_64 rng(20240601);
  const size_t total = total_entries(s, 1);
  for (int i = 0; i < 20; ++i) {
    uint32_t v = 1 + static_cast<uint32_t>(rng() % nvol);
    uint64_t size = fs::file_size(s.vol(v));
    uint64_t cut = rng() % size;
    BOOST_TEST_CONTEXT("volume " << v << " cut at " << cut) {
      s.reset_center();
      std::string d = copy_stick(s, "cut");
      fs::resize_file(s.vol(v, d), cut);
      RunResult r = s.import_(d);
      BOOST_TEST(r.status != 0, r.err);
      BOOST_TEST((r.status == 75 || r.status == 4), r.err);  // 4: the manifest itself was cut
      auto j = BundleSite::js(r);
      s.check_only_signed({1});
      if (r.status == 75) {
        auto c = j["channels"][0];
        BOOST_TEST(c["installed"].get<size_t>() + c["missing"].size() == total);
        BOOST_TEST(j["truncated_volumes"].size() == 1u);
      }
      // The whole bundle finishes the job.
      RunResult ok = s.import_();
      BOOST_TEST(ok.status == 0, ok.err);
      s.check_converged(1);
    }
  }
}

BOOST_AUTO_TEST_CASE(missing_volume_and_volume_from_another_bundle) {
  BundleSite s;
  make_tree(s.src());
  s.publish();
  s.export_ok({"--volume-size", "256k"});
  BOOST_REQUIRE(exists(s.vol(4)));
  std::string other = s.tmp / "other";
  s.export_ok({"--volume-size", "256k"}, other);  // same content, another bundle id

  // Missing volume 3: the rest installs, exactly its files are missing, named with the volume.
  std::string d = copy_stick(s, "missing");
  fs::remove(s.vol(3, d));
  RunResult r = s.import_(d);
  BOOST_TEST(r.status == 75, r.err);
  auto j = BundleSite::js(r);
  BOOST_TEST(j["missing_volumes"].size() == 1u);
  auto c = j["channels"][0];
  BOOST_TEST(c["missing"].size() >= 1u);
  for (auto& m : c["missing"]) BOOST_TEST(m["why"].get<std::string>().find("volume 3") != std::string::npos, m.dump());
  BOOST_TEST(c["installed"].get<size_t>() + c["missing"].size() == total_entries(s, 1));
  s.check_only_signed({1});
  // With the volume back (the same bundle again): done.
  fs::copy_file(s.vol(3), s.vol(3, d));
  r = s.import_(d);
  BOOST_TEST(r.status == 0, r.err);
  s.check_converged(1);

  // Volume 2 from another bundle: refused by name, the rest installs.
  s.reset_center();
  d = copy_stick(s, "mixed");
  fs::copy_file(s.vol(2, other), s.vol(2, d), fs::copy_options::overwrite_existing);
  r = s.import_(d);
  BOOST_TEST(r.status == 10, r.err);
  BOOST_TEST(r.err.find("belongs to another bundle") != std::string::npos, r.err);
  s.check_only_signed({1});
  BOOST_TEST(!s.dst_files().empty());
}

BOOST_AUTO_TEST_CASE(stick_pulled_during_export) {
  BundleSite s;
  make_tree(s.src());
  s.publish();
  // Pulled after three volumes were complete, and pulled in the middle of a volume.
  for (std::string fault : {"kill:bundle_after_volume:3", "kill:bundle_after_piece:20"}) {
    BOOST_TEST_CONTEXT(fault) {
      s.reset_center();
      RunResult x = s.export_({"--volume-size", "256k"}, {}, {"DISTD_FAULT=" + fault});
      BOOST_TEST(x.status == 137, x.err);
      BOOST_REQUIRE(exists(s.index()));
      RunResult r = s.import_();
      BOOST_TEST(r.status == 75, r.err);
      auto c = BundleSite::js(r)["channels"][0];
      BOOST_TEST(c["installed"].get<size_t>() >= 5u);
      BOOST_TEST(c["missing"].size() >= 1u);
      BOOST_TEST(c["installed"].get<size_t>() + c["missing"].size() == total_entries(s, 1));
      s.check_only_signed({1});
    }
  }
  s.export_ok({"--volume-size", "256k"});
  RunResult r = s.import_();
  BOOST_TEST(r.status == 0, r.err);
  s.check_converged(1);
}

// Files are installed in groups; a symbolic link planted in the center's tree (where the new
// version has a directory) refuses the files below it, once each, and every other file of the
// group still installs. Nothing is written through the link.
BOOST_AUTO_TEST_CASE(symlink_planted_in_the_tree_refuses_only_the_files_below_it) {
  BundleSite s;
  make_tree(s.src());
  s.publish();
  s.export_ok({});
  fs::create_directories(s.dst() + "/filedir");
  fs::create_directories(s.tmp / "elsewhere");
  fs::create_directory_symlink(s.tmp / "elsewhere", s.dst() + "/filedir/2");
  RunResult r = s.import_();
  BOOST_TEST(r.status != 0);
  auto j = BundleSite::js(r);
  BOOST_TEST(has_problem(j, "symbolic link"), r.err);
  auto c = j["channels"][0];
  BOOST_TEST(!c["converged"].get<bool>());
  BOOST_TEST(c["missing"].size() == 6u);  // filedir/2/f2, f6, ..., f22
  BOOST_TEST(c["installed"].get<uint64_t>() == total_entries(s, 1) - 6);
  BOOST_TEST(fs::is_empty(s.tmp / "elsewhere"));
  size_t refusals = 0;
  for (size_t at = 0; (at = r.err.find("refused: ", at)) != std::string::npos; ++at) ++refusals;
  BOOST_TEST(refusals == 6u, r.err);
  // Once the link is gone, the same stick finishes the job.
  fs::remove(s.dst() + "/filedir/2");
  RunResult again = s.import_();
  BOOST_TEST(again.status == 0, again.err);
  s.check_converged(1);
}
