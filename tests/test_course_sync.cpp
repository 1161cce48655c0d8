// A course from HQ to a regional center end to end (real distctl publish-course, distd role hq,
// distctl sync): the center rebuilds an .mbz that lists the same members with the same bytes
// (tar.gz and zip); a new backup with one changed file moves about that file only; the
// on-arrival hook runs once per course version; distctl courses tells complete from arriving.
#include <boost/test/unit_test.hpp>
#include <filesystem>

#include "tests/support/course_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

void check_equivalent(const std::string& original, const std::string& rebuilt) {
  BOOST_REQUIRE(exists(rebuilt));
  BOOST_TEST(archive_format_of(original) == archive_format_of(rebuilt));
  auto a = list_archive(original), b = list_archive(rebuilt);
  BOOST_REQUIRE_EQUAL(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) BOOST_TEST((a[i] == b[i]), "member " << i << ": " << std::get<0>(a[i]) << " vs " << std::get<0>(b[i]));
}

size_t count_lines(const std::string& path) {
  if (!exists(path)) return 0;
  std::string t = read_file(path);
  return static_cast<size_t>(std::count(t.begin(), t.end(), '\n'));
}

}  // namespace

BOOST_AUTO_TEST_CASE(publish_sync_rebuild_delta_and_hook) {
  TempDir t("hook");
  std::string hook = t / "hook.sh";
  write_file(hook, "#!/bin/sh\necho \"$1 $2\" >> " + (t / "calls") + "\ntest -s \"$1\"\n");
  fs::permissions(hook, fs::perms(0755));
  CourseSite s("", "course_hook = \"" + hook + "\"");
  const std::vector<std::string> shape = {"--files", "40", "--file-size", "100000"};
  auto with = [&](std::vector<std::string> more) {
    more.insert(more.begin(), shape.begin(), shape.end());
    return more;
  };
  std::string v1 = make_mbz(s.tmp / "bio-v1.mbz", with({}));
  std::string v2 = make_mbz(s.tmp / "bio-v2.mbz", with({"--version", "2"}));
  std::string zip = make_mbz(s.tmp / "chem.mbz", {"--format", "zip", "--shortname", "CHEM2", "--course-id", "7",
                                                  "--files", "5", "--seed", "9"});
  s.publish(v1);
  s.publish(zip);
  s.start_hq();

  // 1. First sync: both courses arrive, are rebuilt, the hook runs once for each.
  auto r1 = s.sync();
  BOOST_TEST(r1["converged"].get<bool>());
  check_equivalent(v1, s.rebuilt("BIO101"));
  check_equivalent(zip, s.rebuilt("CHEM2"));
  BOOST_TEST(count_lines(t / "calls") == 2u);
  BOOST_TEST(read_file(t / "calls").find(s.rebuilt("BIO101") + " BIO101\n") != std::string::npos, read_file(t / "calls"));
  auto list = s.courses();
  BOOST_REQUIRE_EQUAL(list.size(), 2u);
  BOOST_TEST(list[0]["shortname"] == "BIO101");
  BOOST_TEST(list[0]["fullname"] == "Introduction to Biology");
  BOOST_TEST(list[0]["complete"].get<bool>());
  BOOST_TEST(list[0]["status"] == "complete");
  BOOST_TEST(list[0]["hook"] == "ok");
  BOOST_TEST(list[1]["format"] == "zip");

  // 2. Nothing new: up to date, the hook does not run again.
  auto r2 = s.sync();
  BOOST_TEST(r2["up_to_date"].get<bool>());
  BOOST_TEST(count_lines(t / "calls") == 2u);

  // 3. Version 2 of BIO101: one ~100 KB file changed in a ~4 MB course. Only about that file moves.
  auto p2 = s.publish(v2);
  BOOST_TEST(p2["new"]["files"] == 1);
  auto r3 = s.sync();
  uint64_t recv = r3["bytes_received"].get<uint64_t>();
  BOOST_TEST_MESSAGE("v2 with one changed 100 KB file in a " << fs::file_size(v2) << "-byte backup: " << recv
                                                             << " bytes received");
  BOOST_TEST(recv < 250000u);  // the file, the rewritten XML members, the manifest
  BOOST_TEST(recv < fs::file_size(v2) / 10);
  check_equivalent(v2, s.rebuilt("BIO101"));
  BOOST_TEST(count_lines(t / "calls") == 3u);
  BOOST_TEST(s.courses()[0]["backup_date"] == "2024-10-29T03:34:20Z");

  // 4. A course whose members are not all here is listed as arriving, and the archive is not
  // rebuilt from it.
  auto rec = nlohmann::json::parse(read_file(s.center_tree() + "/CHEM2/course.json"));
  std::string victim;
  for (auto& m : rec["members"])
    if (m["type"] == "file" && m["path"].get<std::string>().rfind("files/", 0) == 0) victim = m["path"];
  fs::remove(s.center_tree() + "/CHEM2/members/" + victim);
  auto l2 = s.courses();
  BOOST_TEST(!l2[1]["complete"].get<bool>());
  BOOST_TEST(l2[1]["status"].get<std::string>().rfind("arriving", 0) == 0u, l2[1]["status"]);
  RunResult text = run({bin("distctl"), "courses", "--config", s.reg_cfg});
  BOOST_TEST(text.out.find("arriving") != std::string::npos, text.out);
}
