// One exit-status table (manifest/error.cpp): docs/cli.md documents exactly its statuses with
// the same meaning, and distctl's and distd's --help footers are made from it.
#include <boost/test/unit_test.hpp>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "manifest/error.h"
#include "tests/support/test_support.h"

using namespace distd;
using namespace distd::test;

namespace {

// | N | meaning | rows of docs/cli.md's "## Exit status" section.
std::map<int, std::string> documented() {
  std::istringstream in(read_file(source_path("docs/cli.md")));
  std::map<int, std::string> out;
  bool in_section = false;
  std::regex row(R"(^\| (\d+) \| (.*) \|$)");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("## ", 0) == 0) in_section = line == "## Exit status";
    std::smatch m;
    if (in_section && std::regex_match(line, m, row)) out[std::stoi(m[1])] = m[2];
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(docs_list_exactly_the_table) {
  auto docs = documented();
  std::set<int> want = {kExitOk, kExitDeferred};
  for (auto& e : exit_status_table()) want.insert(e.status);
  std::set<int> have;
  for (auto& [n, _] : docs) have.insert(n);
  BOOST_TEST(have == want, "docs/cli.md lists other exit statuses than manifest/error.cpp");
  for (auto& e : exit_status_table()) {
    std::string doc = docs[e.status];
    std::string lower = e.summary;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string doc_lower = doc;
    for (auto& c : doc_lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    BOOST_TEST(doc_lower.find(lower) != std::string::npos, "status " << e.status << ": docs say '" << doc
                                                                     << "', the table '" << e.summary << "'");
  }
}

BOOST_AUTO_TEST_CASE(help_footers_come_from_the_table) {
  for (const char* prog : {"distctl", "distd"}) {
    auto r = run({prog, "--help"});
    BOOST_TEST(r.status == 0);
    std::string flat = r.out;
    for (auto& c : flat)
      if (c == '\n') c = ' ';
    for (auto& e : exit_status_table())
      BOOST_TEST(flat.find(std::to_string(e.status) + " " + e.summary) != std::string::npos, prog << ": " << e.summary);
    BOOST_TEST(flat.find("75 big files deferred") != std::string::npos, prog);
  }
}

// Mistakes in the arguments exit 2 (usage), not CLI11's own codes (106, 109, ...); an unknown
// command is named with the nearest one; --help and --version exit 0.
BOOST_AUTO_TEST_CASE(argument_mistakes_exit_2_and_name_the_command) {
  RunResult r = run({"distctl", "sycn"});
  BOOST_TEST(r.status == 2);
  BOOST_TEST(r.err.find("unknown command 'sycn' (did you mean 'sync'?)") != std::string::npos, r.err);
  r = run({"distctl", "nosuch"});
  BOOST_TEST(r.status == 2);
  BOOST_TEST(r.err.find("unknown command 'nosuch'") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("did you mean") == std::string::npos, r.err);
  BOOST_TEST(run({"distctl"}).status == 2);
  BOOST_TEST(run({"distctl", "sync", "--bogus"}).status == 2);
  BOOST_TEST(run({"distctl", "key"}).status == 2);
  BOOST_TEST(run({"distd", "--bogus"}).status == 2);
  BOOST_TEST(run({"distctl", "--help"}).status == 0);
  BOOST_TEST(run({"distctl", "sync", "--help"}).status == 0);
  BOOST_TEST(run({"distctl", "--version"}).status == 0);
  BOOST_TEST(run({"distd", "--help"}).status == 0);
}
