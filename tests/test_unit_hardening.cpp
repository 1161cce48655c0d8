// The systemd units stay sandboxed: `systemd-analyze security --offline=yes` rates each service
// 2.0 or lower (distd.service 1.4, distd-sync.service 1.4, distd-stick-import.service 0.7 when
// written; before, the sync unit was 7.6 "EXPOSED" and the import unit 7.0), and the stick is
// mounted with an explicit type, nosuid, nodev, noexec and a private umask.
#include <boost/test/unit_test.hpp>
#include <regex>

#include "tests/support/test_support.h"

using namespace distd::test;

namespace {

double exposure(const std::string& unit) {
  RunResult r = run({"systemd-analyze", "security", "--offline=yes", "--no-pager", source_path("systemd/" + unit)});
  BOOST_TEST_INFO(r.out << r.err);
  std::smatch m;
  static const std::regex level("Overall exposure level for [^:]+: ([0-9.]+)");
  std::string all = r.out + r.err;
  BOOST_REQUIRE(std::regex_search(all, m, level));
  return std::stod(m[1]);
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_service_is_sandboxed) {
  if (run({"systemd-analyze", "--version"}).status != 0) {
    BOOST_TEST_MESSAGE("systemd-analyze is not installed; skipped");
    return;
  }
  for (std::string unit : {"distd.service", "distd-sync.service", "distd-stick-import.service"}) {
    double e = exposure(unit);
    BOOST_TEST_MESSAGE(unit << ": exposure " << e);
    BOOST_TEST(e <= 2.0, unit << " exposure " << e);
  }
}

BOOST_AUTO_TEST_CASE(the_stick_mount_names_its_type_and_runs_nothing) {
  std::string m = read_file(source_path("systemd/media-distd.mount"));
  BOOST_TEST(m.find("\nType=vfat\n") != std::string::npos);
  BOOST_TEST(m.find("Type=auto") == std::string::npos);
  std::smatch opts;
  BOOST_REQUIRE(std::regex_search(m, opts, std::regex("\nOptions=([^\n]*)\n")));
  std::string o = "," + opts[1].str() + ",";
  for (std::string want : {",nosuid,", ",nodev,", ",noexec,", ",umask=0077,", ",uid=distd,", ",gid=distd,"})
    BOOST_TEST(o.find(want) != std::string::npos, want);
  BOOST_TEST(o.find("umask=0000") == std::string::npos);
}
