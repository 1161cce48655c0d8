// distctl keygen / manifest build|verify|diff|show, from the operator's side: exit codes and
// the one line that says what is wrong.
#include <boost/test/unit_test.hpp>
#include <sys/stat.h>

#include <algorithm>

#include "tests/support/test_support.h"

using namespace distd::test;

namespace {

struct Site {
  TempDir t{"cli"};
  std::string sec = t / "hq.key", pub = t / "hq.pub", tree = t / "tree";
  Site() {
    RunResult r = run({"distctl", "keygen", "--secret", sec, "--public", pub});
    BOOST_REQUIRE_MESSAGE(r.status == 0, r.err);
    write_file(tree + "/filedir/ab/cd/abcd", "course pdf");
    write_file(tree + "/filedir/12/34/1234", std::string(100000, 'v'));
    write_file(tree + "/temp/ignored", "scratch");
  }
  RunResult build(int version, const std::string& out, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"distctl", "manifest", "build", tree, "--channel", "moodledata", "--version",
                                  std::to_string(version), "--key", sec, "-o", out, "--preset", "moodledata"};
    a.insert(a.end(), extra.begin(), extra.end());
    return run(a);
  }
  RunResult verify(const std::string& m, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"distctl", "manifest", "verify", m, "--pubkey", pub};
    a.insert(a.end(), extra.begin(), extra.end());
    return run(a);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(keygen_writes_private_secret_and_never_overwrites) {
  Site s;
  struct stat st {};
  BOOST_REQUIRE(::stat(s.sec.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0600u);
  BOOST_TEST(read_file(s.pub).find("ed25519-public ") != std::string::npos);
  RunResult again = run({"distctl", "keygen", "--secret", s.sec, "--public", s.pub});
  BOOST_TEST(again.status == 2);
  BOOST_TEST(again.err.find("already exists; refusing to overwrite") != std::string::npos, again.err);
  ::chmod(s.sec.c_str(), 0644);
  RunResult loose = s.build(1, s.t / "v1.manifest");
  BOOST_TEST(loose.status == 2);
  BOOST_TEST(loose.err.find("chmod 600") != std::string::npos, loose.err);
}

BOOST_AUTO_TEST_CASE(build_verify_tree_and_diff) {
  Site s;
  RunResult b = s.build(1, s.t / "v1.manifest");
  BOOST_REQUIRE_MESSAGE(b.status == 0, b.err);
  BOOST_TEST(b.out.find("2 files") != std::string::npos, b.out);
  RunResult v = s.verify(s.t / "v1.manifest", {"--tree", s.tree, "--preset", "moodledata"});
  BOOST_TEST(v.status == 0, v.err);
  BOOST_TEST(v.out.find("the tree matches exactly") != std::string::npos, v.out);

  // A changed byte, a missing file and an extra file are each named.
  write_file(s.tree + "/filedir/ab/cd/abcd", "course pdG");
  v = s.verify(s.t / "v1.manifest", {"--tree", s.tree, "--preset", "moodledata"});
  BOOST_TEST(v.status == 10);
  BOOST_TEST(v.err.find("'filedir/ab/cd/abcd' changed (content differs") != std::string::npos, v.err);
  write_file(s.tree + "/filedir/ab/cd/abcd", "course pdf");
  ::unlink((s.tree + "/filedir/12/34/1234").c_str());
  v = s.verify(s.t / "v1.manifest", {"--tree", s.tree, "--preset", "moodledata"});
  BOOST_TEST(v.status == 10);
  BOOST_TEST(v.err.find("'filedir/12/34/1234' is missing") != std::string::npos, v.err);
  write_file(s.tree + "/filedir/12/34/1234", std::string(100000, 'v'));
  write_file(s.tree + "/filedir/ff/ff/ffff", "new");
  v = s.verify(s.t / "v1.manifest", {"--tree", s.tree, "--preset", "moodledata", "--json"});
  BOOST_TEST(v.status == 10);
  BOOST_TEST(v.out.find("\"problem\": \"extra\"") != std::string::npos, v.out);

  // v2 chains to v1; diff reports the addition and a move.
  ::rename((s.tree + "/filedir/12/34/1234").c_str(), (s.tree + "/filedir/12/34/moved").c_str());
  b = s.build(2, s.t / "v2.manifest", {"--previous", s.t / "v1.manifest"});
  BOOST_REQUIRE_MESSAGE(b.status == 0, b.err);
  RunResult d = run({"distctl", "manifest", "diff", s.t / "v1.manifest", s.t / "v2.manifest"});
  BOOST_TEST(d.status == 0);
  BOOST_TEST(d.out.find("+ filedir/ff/ff/ffff") != std::string::npos, d.out);
  BOOST_TEST(d.out.find("> filedir/12/34/1234 -> filedir/12/34/moved") != std::string::npos, d.out);
  RunResult show1 = run({"distctl", "manifest", "show", s.t / "v1.manifest", "--json", "--header"});
  RunResult show2 = run({"distctl", "manifest", "show", s.t / "v2.manifest", "--json", "--header"});
  auto field = [](const std::string& json, const std::string& key) {
    auto p = json.find("\"" + key + "\": \"");
    return p == std::string::npos ? std::string() : json.substr(p + key.size() + 5, 64);
  };
  BOOST_TEST(field(show2.out, "previous") == field(show1.out, "digest"));
  // A version that does not grow is refused.
  b = s.build(2, s.t / "v2b.manifest", {"--previous", s.t / "v2.manifest"});
  BOOST_TEST(b.status == 8);
  BOOST_TEST(b.err.find("use --version 3") != std::string::npos, b.err);
}

BOOST_AUTO_TEST_CASE(tampered_truncated_foreign_and_garbage_manifests_get_one_clear_line) {
  Site s;
  BOOST_REQUIRE_EQUAL(s.build(1, s.t / "v1.manifest").status, 0);
  std::string good = read_file(s.t / "v1.manifest");

  std::string flipped = good;
  flipped[flipped.find("version 1") + 8] = '2';
  write_file(s.t / "flip.manifest", flipped);
  RunResult r = s.verify(s.t / "flip.manifest");
  BOOST_TEST(r.status == 6);
  BOOST_TEST(r.err.find("has a bad signature") != std::string::npos, r.err);

  write_file(s.t / "trunc.manifest", good.substr(0, good.size() - 50));
  r = s.verify(s.t / "trunc.manifest");
  BOOST_TEST(r.status == 5);
  BOOST_TEST(r.err.find("truncated") != std::string::npos, r.err);

  RunResult k2 = run({"distctl", "keygen", "--secret", s.t / "other.key", "--public", s.t / "other.pub"});
  BOOST_REQUIRE_EQUAL(k2.status, 0);
  r = run({"distctl", "manifest", "verify", s.t / "v1.manifest", "--pubkey", s.t / "other.pub"});
  BOOST_TEST(r.status == 6);
  BOOST_TEST(r.err.find("but this site trusts key") != std::string::npos, r.err);

  write_file(s.t / "garbage.manifest", random_bytes(3000, 1));
  r = s.verify(s.t / "garbage.manifest");
  BOOST_TEST(r.status == 5);
  BOOST_TEST(r.err.find("not a distd manifest") != std::string::npos, r.err);

  r = s.verify(s.t / "absent.manifest");
  BOOST_TEST(r.status == 4);
  BOOST_TEST(r.err.find("cannot open manifest") != std::string::npos, r.err);
  // One line of error plus one line saying what to do: nothing more.
  BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 2);
}

BOOST_AUTO_TEST_CASE(every_command_has_help_with_an_example) {
  for (std::vector<std::string> cmd : {std::vector<std::string>{"keygen"}, {"manifest", "build"},
                                       {"manifest", "verify"}, {"manifest", "diff"}, {"manifest", "show"}}) {
    std::vector<std::string> a = {"distctl"};
    a.insert(a.end(), cmd.begin(), cmd.end());
    a.push_back("--help");
    RunResult r = run(a);
    BOOST_TEST(r.status == 0);
    BOOST_TEST(r.out.find("Example") != std::string::npos, cmd.back() << ": " << r.out);
  }
}
