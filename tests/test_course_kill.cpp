// kill -9 of the course code at its fault points (DISTD_FAULT=kill:NAME:1, manifest/fault.h):
// `distctl publish-course` at HQ and the center's rebuild of the .mbz during `distctl sync`.
// After each kill nothing half-written is visible (the signed channel is the previous version,
// verifies, has all its objects and is course-consistent; no partial .mbz at its final path),
// and the next run completes the job.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <map>
#include <sstream>

#include "tests/support/course_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

struct Listed {
  std::string digest;
  uint64_t size = 0;
};

// The signed channel at HQ: `distctl manifest verify` accepts latest.manifest, every entry's
// object is in the store with that digest, and every course.json in it matches the members the
// same version lists (a center could rebuild each course from this version alone).
std::map<std::string, Listed> check_channel(CourseSite& s) {
  RunResult v = run({bin("distctl"), "manifest", "verify", s.latest_manifest(), "--pubkey", s.tmp / "hq.pub"});
  BOOST_REQUIRE_MESSAGE(v.status == 0, "latest.manifest does not verify: " + v.err);
  std::map<std::string, Listed> entries;
  std::istringstream in(read_file(s.latest_manifest()));
  std::string line;
  bool body = false;
  while (std::getline(in, line)) {
    if (line.rfind("entries ", 0) == 0) {
      body = true;
      continue;
    }
    if (!body || line.size() < 66 || line[64] != ' ') continue;
    std::istringstream f(line);
    std::string digest, mode, path;
    uint64_t size = 0;
    f >> digest >> size >> mode >> path;
    entries[path] = {digest, size};
    const std::string obj = s.hq_state + "/public/objects/" + digest.substr(0, 2) + "/" + digest;
    BOOST_TEST(file_digest_hex(obj) == digest, path);
  }
  for (const auto& [path, e] : entries) {
    if (path.size() < 12 || path.substr(path.size() - 12) != "/course.json") continue;
    const std::string key = path.substr(0, path.size() - 12);
    auto rec = nlohmann::json::parse(read_file(s.hq_state + "/public/objects/" + e.digest.substr(0, 2) + "/" + e.digest));
    for (const auto& m : rec["members"]) {
      if (m["type"] != "file") continue;
      auto it = entries.find(key + "/members/" + m["path"].get<std::string>());
      BOOST_TEST((it != entries.end() && it->second.digest == m["digest"].get<std::string>()),
                 "version lists course.json of " << key << " but not its member " << m["path"]);
    }
  }
  return entries;
}

uint64_t latest_version(CourseSite& s) {
  std::istringstream in(read_file(s.latest_manifest()));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("version ", 0) == 0) return std::stoull(line.substr(8));
  return 0;
}

// The HQ tree holds exactly this backup's file members, byte for byte.
void check_tree_is(CourseSite& s, const std::string& mbz) {
  for (auto& [name, type, size, digest] : list_archive(mbz))
    if (type == 'f') BOOST_TEST(file_digest_hex(s.hq_tree() + "/BIO101/members/" + name) == digest, name);
}

void check_same_members(const std::string& original, const std::string& rebuilt) {
  BOOST_REQUIRE(exists(rebuilt));
  auto a = list_archive(original), b = list_archive(rebuilt);
  BOOST_REQUIRE_EQUAL(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) BOOST_TEST((a[i] == b[i]), "member " << i << ": " << std::get<0>(a[i]));
}

size_t count_lines(const std::string& path) {
  if (!exists(path)) return 0;
  std::string t = read_file(path);
  return static_cast<size_t>(std::count(t.begin(), t.end(), '\n'));
}

}  // namespace

BOOST_AUTO_TEST_CASE(publish_course_killed_at_each_point_then_completes) {
  const std::vector<std::string> points = {"course_after_read", "course_before_members", "course_member",
                                           "course_before_record", "course_after_record", "publish_after_scan",
                                           "publish_after_objects"};
  for (const auto& point : points) {
    BOOST_TEST_CONTEXT("kill at " << point) {
      CourseSite s;
      std::string v1 = make_mbz(s.tmp / "v1.mbz", {"--files", "12", "--file-size", "20000"});
      std::string v2 = make_mbz(s.tmp / "v2.mbz", {"--files", "12", "--file-size", "20000", "--version", "2"});
      s.publish(v1);
      const std::string manifest_v1 = read_file(s.latest_manifest());

      RunResult k = run({bin("distctl"), "publish-course", "--config", s.hq_cfg, v2, "--json"}, {},
                        {"DISTD_FAULT=kill:" + point + ":1"});
      BOOST_TEST(k.status == 137, "status " << k.status << ": " << k.err);
      // What the centers can see is still version 1, whole.
      BOOST_TEST(read_file(s.latest_manifest()) == manifest_v1);
      check_channel(s);

      auto r = s.publish(v2);  // the next run completes the job
      BOOST_TEST(latest_version(s) == 2u);
      BOOST_TEST(r["channel"]["version"] == 2);
      check_tree_is(s, v2);
      auto entries = check_channel(s);
      BOOST_TEST(entries.count("BIO101/course.json") == 1u);
      BOOST_TEST(!fs::exists(s.hq_state + "/course-staging"));
      // The members a killed run left behind were either seeded or hashed: a rescan trusts them.
      RunResult again = run({bin("distctl"), "publish", "--channel", "courses", "--config", s.hq_cfg, "--json"});
      BOOST_REQUIRE(again.status == 0);
      BOOST_TEST(!nlohmann::json::parse(again.out)["changed"].get<bool>());
    }
  }
}

BOOST_AUTO_TEST_CASE(rebuild_killed_before_the_archive_rename) {
  TempDir t("hook");
  std::string hook = t / "hook.sh";
  write_file(hook, "#!/bin/sh\necho \"$1 $2\" >> " + (t / "calls") + "\ntest -s \"$1\"\n");
  fs::permissions(hook, fs::perms(0755));
  CourseSite s("", "course_hook = \"" + hook + "\"");
  std::string v1 = make_mbz(s.tmp / "v1.mbz", {"--files", "12", "--file-size", "20000"});
  std::string v2 = make_mbz(s.tmp / "v2.mbz", {"--files", "12", "--file-size", "20000", "--version", "2"});
  s.publish(v1);
  s.start_hq();
  const std::string kill = "DISTD_FAULT=kill:course_before_archive_rename:1";
  const std::string dir = s.reg_state + "/courses";

  // First version: killed after the members were installed, before the .mbz was renamed in.
  RunResult k1 = run({bin("distctl"), "sync", "--config", s.reg_cfg, "--json"}, {}, {kill});
  BOOST_TEST(k1.status == 137, k1.err);
  BOOST_TEST(!exists(s.rebuilt("BIO101")));  // no partial archive at its final name
  BOOST_TEST(count_lines(t / "calls") == 0u);
  auto list = s.courses();
  BOOST_REQUIRE(list.size() == 1u);
  BOOST_TEST(!list[0]["complete"].get<bool>(), list.dump());

  // The next sync has nothing to download and finishes the job: archive built, hook once.
  auto c1 = s.sync();
  BOOST_TEST(c1["up_to_date"].get<bool>(), c1.dump());
  check_same_members(v1, s.rebuilt("BIO101"));
  BOOST_TEST(count_lines(t / "calls") == 1u);

  // Version 2: killed again before the rename; the old archive stays, whole.
  s.publish(v2);
  RunResult k2 = run({bin("distctl"), "sync", "--config", s.reg_cfg, "--json"}, {}, {kill});
  BOOST_TEST(k2.status == 137, k2.err);
  check_same_members(v1, s.rebuilt("BIO101"));
  BOOST_TEST(count_lines(t / "calls") == 1u);
  s.sync();
  check_same_members(v2, s.rebuilt("BIO101"));
  BOOST_TEST(count_lines(t / "calls") == 2u);
  s.sync();
  BOOST_TEST(count_lines(t / "calls") == 2u);  // once per version, kill or not
  // No temporary left beside the archives.
  for (auto& e : fs::directory_iterator(dir))
    BOOST_TEST(e.path().filename().string().find(".tmp") == std::string::npos, e.path());
}
