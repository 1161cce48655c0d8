// The one main() of every tests/test_*.cpp suite. Each suite used to define BOOST_TEST_MODULE, which
// made each one's flags differ; with one main here they all share a precompiled header
// (tests/main/pch.h). The master suite is named after the executable, as BOOST_TEST_MODULE did.
#include <boost/test/unit_test.hpp>

#include <string>

namespace {

bool init_suite() {
  auto& master = boost::unit_test::framework::master_test_suite();
  if (master.argc > 0) {
    std::string name = master.argv[0];
    if (auto slash = name.rfind('/'); slash != std::string::npos) name.erase(0, slash + 1);
    master.p_name.value = name;
  }
  return true;
}

}  // namespace

int main(int argc, char* argv[]) { return boost::unit_test::unit_test_main(&init_suite, argc, argv); }
