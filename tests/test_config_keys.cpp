// distd.toml keys (docs/config.md): a key distd does not know is refused with its line and the
// closest known key, so a typo cannot leave a default silently in force; the list of known keys
// and docs/config.md name the same keys; [hq.database] password_file is read as documented.
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include <fstream>
#include <regex>
#include <set>

#include "distd/config/config.h"
#include "distd/config/known_keys.h"
#include "distd/course/course_priority.h"
#include "manifest/error.h"
#include "manifest/scan.h"
#include "tests/support/test_support.h"

using namespace distd;
using namespace distd::test;

namespace {

const std::string kHead = "role = \"hq\"\nstate_dir = \"/tmp/x\"\n";

// The message load_config refuses `text` with ("" when it loads).
std::string refusal(const std::string& text) {
  TempDir d{"cfgkeys"};
  write_file(d / "distd.toml", text);
  try {
    (void)load_config(d / "distd.toml");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Errc::usage));
    return e.what();
  }
  return {};
}

}  // namespace

BOOST_AUTO_TEST_CASE(unknown_keys_are_refused_with_the_line_and_the_closest_known_key) {
  BOOST_TEST(refusal(kHead + "[hq]\nlisten = \":1\"\n") == "");
  BOOST_TEST(refusal(kHead + "[hq]\nlisten = \":1\"\nkeep_version = 3\n").find(
                 "line 5: unknown key 'hq.keep_version' (did you mean 'hq.keep_versions'?)") != std::string::npos);
  BOOST_TEST(refusal(kHead + "[[channel]]\nname = \"c\"\npaht = \"/x\"\n").find(
                 "unknown key '[[channel]] paht' (did you mean '[[channel]] path'?)") != std::string::npos);
  BOOST_TEST(refusal(kHead + "[regional]\nhq_ulr = \"http://x\"\n").find("did you mean 'regional.hq_url'") !=
             std::string::npos);
  BOOST_TEST(refusal(kHead + "[hq.databse]\nuser = \"m\"\n").find("did you mean 'hq.database'") != std::string::npos);
  BOOST_TEST(refusal(kHead + "[hq.database]\npasword_file = \"p\"\n").find(
                 "did you mean 'hq.database.password_file'") != std::string::npos);
  // Far from every key: no suggestion. A section given as a value: says to write the section.
  std::string far = refusal(kHead + "colour_scheme = \"dark\"\n");
  BOOST_TEST(far.find("unknown key 'colour_scheme'") != std::string::npos);
  BOOST_TEST(far.find("did you mean") == std::string::npos);
  BOOST_TEST(refusal(kHead + "hq = 1\n").find("'hq' must be a section: write [hq]") != std::string::npos);

  // distd and distctl exit 2 with it.
  TempDir d{"cfgkeys"};
  write_file(d / "distd.toml", kHead + "[hq]\nlisten = \"127.0.0.1:1\"\nlisten_adress = \"x\"\n");
  RunResult r = run({"distd", "--config", d / "distd.toml", "--check-config"});
  BOOST_TEST(r.status == 2);
  BOOST_TEST(r.err.find("unknown key 'hq.listen_adress'") != std::string::npos, r.err);
  r = run({"distctl", "publish", "--channel", "c", "--config", d / "distd.toml"});
  BOOST_TEST(r.status == 2);
  r = run({"distctl", "config", "check", "--config", d / "distd.toml"});
  BOOST_TEST(r.status == 2);
  BOOST_TEST(r.err.find("unknown key 'hq.listen_adress'") != std::string::npos, r.err);
}

// distctl config check says what distd --check-config says, and --json for scripts.
BOOST_AUTO_TEST_CASE(distctl_config_check_agrees_with_distd_check_config) {
  TempDir d{"cfgcheck"};
  write_file(d / "distd.toml", kHead + "[hq]\nlisten = \"127.0.0.1:8750\"\n");
  RunResult daemon = run({"distd", "--config", d / "distd.toml", "--check-config"});
  RunResult tool = run({"distctl", "config", "check", "--config", d / "distd.toml"});
  BOOST_TEST(daemon.status == 0, daemon.err);
  BOOST_TEST(tool.status == 0, tool.err);
  BOOST_TEST(tool.out == daemon.out);
  BOOST_TEST(tool.out.find(": OK (role hq") != std::string::npos, tool.out);
  RunResult j = run({"distctl", "config", "check", "--config", d / "distd.toml", "--json"});
  BOOST_TEST(j.status == 0, j.err);
  auto js = nlohmann::json::parse(j.out);
  BOOST_TEST(js["ok"] == true);
  BOOST_TEST(js["role"] == "hq");
  BOOST_TEST(js["listen"] == "127.0.0.1:8750");
  // `distctl config` alone is a usage error that names the subcommand.
  RunResult bare = run({"distctl", "config"});
  BOOST_TEST(bare.status == 2);
  BOOST_TEST(bare.err.find("check") != std::string::npos, bare.err);
}

// Every known key is described in docs/config.md (by its name in backticks or in the list of keys
// documented with their features), and every key in the tables of its sections is known.
BOOST_AUTO_TEST_CASE(the_known_keys_and_docs_config_md_agree) {
  std::ifstream in(std::string(DISTD_SOURCE_DIR) + "/docs/config.md");
  std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BOOST_REQUIRE(!doc.empty());
  for (const std::string& k : known_config_keys()) {
    const std::string leaf = k.substr(k.rfind('.') + 1);
    const bool table = k.find('.') == std::string::npos && doc.find("[" + k + "]") != std::string::npos;
    BOOST_TEST((table || doc.find("`" + leaf + "`") != std::string::npos ||
                std::regex_search(doc, std::regex("[ ,/`]" + leaf + "[ ,/`|]"))),
               k << " is not in docs/config.md");
  }
  const std::set<std::string> known(known_config_keys().begin(), known_config_keys().end());
  std::string section;
  std::istringstream lines(doc);
  int rows = 0;
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, std::regex(R"(## \[\[?([a-z.]+)\]\]?)"))) section = m[1].str() + ".";
    else if (line.rfind("## ", 0) == 0) section = line == "## Top level" ? "" : "-";
    else if (section != "-" && std::regex_search(line, m, std::regex(R"(^\| `([a-z_]+)` \|)"))) {
      ++rows;
      BOOST_TEST(known.count(section + m[1].str()) == 1u, section + m[1].str() << " is documented but unknown");
    }
  }
  BOOST_TEST(rows > 40);
}

BOOST_AUTO_TEST_CASE(hq_database_password_file_is_read_and_must_be_private) {
  TempDir d{"cfgkeys"};
  write_file(d / "pw", "s3cret\n");
  ::chmod((d / "pw").c_str(), 0644);
  write_file(d / "distd.toml", kHead + "[hq.database]\nuser = \"moodle\"\npassword_file = \"pw\"\n");
  Config cfg = load_config(d / "distd.toml");
  try {
    (void)course::moodle_db_settings(cfg);
    BOOST_FAIL("a world-readable password file was accepted");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("has mode 0644") != std::string::npos, e.what());
  }
  ::chmod((d / "pw").c_str(), 0600);
  BOOST_TEST(course::moodle_db_settings(cfg)->password == "s3cret");
}

// docs/config.md and docs/cli.md list the moodledata preset's excludes exactly.
BOOST_AUTO_TEST_CASE(the_moodledata_preset_is_documented_exactly) {
  std::string want;
  for (const std::string& e : moodledata_excludes()) want += (want.empty() ? "" : " ") + e;
  const std::string config_md = read_file(std::string(DISTD_SOURCE_DIR) + "/docs/config.md");
  BOOST_TEST(config_md.find("(`" + want + "`)") != std::string::npos, want);
  std::string cli_md = read_file(std::string(DISTD_SOURCE_DIR) + "/docs/cli.md");
  cli_md = std::regex_replace(cli_md, std::regex("\\n +"), " ");
  BOOST_TEST(cli_md.find("(`" + want + "`)") != std::string::npos, want);
}

// A site id a signed request could not carry is refused when the config is read.
BOOST_AUTO_TEST_CASE(a_site_id_requests_cannot_carry_is_refused) {
  BOOST_TEST(refusal("role = \"hq\"\nsite = \"center-07\"\nstate_dir = \"/x\"\n") == "");
  for (const std::string& bad : std::vector<std::string>{"centre 7", "c/7", "", std::string(129, 'a'), "zentrum-ü", "..", ".hidden"})
    BOOST_TEST(refusal("role = \"hq\"\nsite = \"" + bad + "\"\nstate_dir = \"/x\"\n").find("is not a site id") !=
                   std::string::npos,
               bad);
}
