// A course that travels on a stick arrives like one that came over the network: publish-course
// at HQ, `distctl bundle export`, `distctl bundle import` at the center -> the .mbz is rebuilt
// (same members, same bytes), `distctl courses` lists the course complete, the on-arrival hook
// ran once; importing the same bundle again changes nothing and does not run the hook again.
#include <boost/test/unit_test.hpp>
#include <filesystem>

#include "tests/support/course_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

size_t count_lines(const std::string& path) {
  if (!exists(path)) return 0;
  std::string t = read_file(path);
  return static_cast<size_t>(std::count(t.begin(), t.end(), '\n'));
}

RunResult import_stick(const CourseSite& s, const std::string& stick) {
  return run({bin("distctl"), "bundle", "import", "--config", s.reg_cfg, "--from", stick, "--json"}, {}, {}, 120);
}

}  // namespace

BOOST_AUTO_TEST_CASE(course_from_a_stick_is_rebuilt_and_listed_complete) {
  TempDir t("hook");
  std::string hook = t / "hook.sh";
  write_file(hook, "#!/bin/sh\necho \"$1 $2\" >> " + (t / "calls") + "\ntest -s \"$1\"\n");
  fs::permissions(hook, fs::perms(0755));
  CourseSite s("", "course_hook = \"" + hook + "\"");
  std::string mbz = make_mbz(s.tmp / "bio.mbz", {"--files", "12", "--file-size", "30000"});
  s.publish(mbz);

  std::string stick = s.tmp / "stick";
  RunResult e = run({bin("distctl"), "bundle", "export", "--config", s.hq_cfg, "--to", stick, "--json"});
  BOOST_REQUIRE_MESSAGE(e.status == 0, "export failed: " + e.err);
  RunResult i = import_stick(s, stick);
  BOOST_REQUIRE_MESSAGE(i.status == 0, "import failed: " + i.err + i.out);
  BOOST_TEST(nlohmann::json::parse(i.out)["channels"][0]["converged"].get<bool>());

  // Rebuilt at once, without a network sync.
  BOOST_REQUIRE(exists(s.rebuilt("BIO101")));
  auto a = list_archive(mbz), b = list_archive(s.rebuilt("BIO101"));
  BOOST_REQUIRE_EQUAL(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) BOOST_TEST((a[k] == b[k]), "member " << k << ": " << std::get<0>(a[k]));
  auto list = s.courses();
  BOOST_REQUIRE_EQUAL(list.size(), 1u);
  BOOST_TEST(list[0]["shortname"] == "BIO101");
  BOOST_TEST(list[0]["complete"].get<bool>());
  BOOST_TEST(list[0]["status"] == "complete");
  BOOST_TEST(list[0]["hook"] == "ok");
  BOOST_TEST(count_lines(t / "calls") == 1u);
  BOOST_TEST(read_file(t / "calls").find(s.rebuilt("BIO101") + " BIO101\n") != std::string::npos);

  // The same stick again: up to date, the course stays complete, the hook does not run again.
  RunResult again = import_stick(s, stick);
  BOOST_REQUIRE_MESSAGE(again.status == 0, again.err);
  BOOST_TEST(nlohmann::json::parse(again.out)["channels"][0]["up_to_date"].get<bool>());
  BOOST_TEST(s.courses()[0]["complete"].get<bool>());
  BOOST_TEST(count_lines(t / "calls") == 1u);
}
