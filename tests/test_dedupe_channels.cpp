// Dedupe across channels at a center (docs/regional.md "Copies from other channels"): content
// one channel holds, verified, is copied from its tree instead of fetched for another channel
// (a course's files/<sha1> member and moodledata's filedir blob are the same bytes). A source
// that changed at the center is not trusted: the file is fetched, and the tree still ends
// exactly as signed.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/support/bundle_site.h"
#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

std::string courses_src(const SyncSite& s) { return s.tmp / "hq-courses"; }
std::string courses_dst(const SyncSite& s) { return s.tmp / "center/courses"; }
const std::string kMember = "/BIO101/files/3f/3f786850e387550fdab836ed7e6dc881de23001b";

// A second channel "courses" at HQ and at the center, holding blob under BIO101/files/ while
// channel "c" holds the same bytes under filedir/; both published.
void add_courses_channel(SyncSite& s, const std::string& blob) {
  write_file(s.hq_cfg, read_file(s.hq_cfg) + "\n[[channel]]\nname = \"courses\"\npath = \"" + courses_src(s) + "\"\n");
  write_file(courses_src(s) + kMember, blob);
  write_file(courses_src(s) + "/BIO101/course.xml", "<course/>\n");
  write_file(s.src() + "/filedir/3f/78/3f786850e387550fdab836ed7e6dc881de23001b", blob);
  write_file(s.src() + "/filedir/aa/bb/aabb", random_bytes(20'000, 12));
  s.publish();
  RunResult r = run({"distctl", "publish", "--channel", "courses", "--config", s.hq_cfg}, {}, {}, 120);
  BOOST_REQUIRE_MESSAGE(r.status == 0, r.err);
  write_file(s.reg_cfg, read_file(s.reg_cfg) + "\n[[channel]]\nname = \"courses\"\npath = \"" + courses_dst(s) + "\"\n");
}

struct TwoChannels {
  SyncSite s;
  std::string blob = random_bytes(400'000, 11);
  std::string courses_src() const { return ::courses_src(s); }
  std::string courses_dst() const { return ::courses_dst(s); }
  TwoChannels() {
    add_courses_channel(s, blob);
    s.start_hq();
  }
  nlohmann::json sync(const std::string& channel) {
    RunResult r = s.sync({"--channel", channel});
    BOOST_TEST_INFO("sync " << channel << ": " << r.err);
    BOOST_REQUIRE_EQUAL(r.status, 0);
    return nlohmann::json::parse(r.out)["channels"][0];
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(content_another_channel_holds_is_copied_not_fetched) {
  TwoChannels t;
  nlohmann::json courses = t.sync("courses");
  BOOST_TEST(courses["bytes_received"].get<uint64_t>() >= t.blob.size());

  nlohmann::json data = t.sync("c");
  BOOST_TEST(data["copied"] == 1, data.dump());
  BOOST_TEST(data["full"] == 1, data.dump());
  // The 20 kB file and the manifest came; the 400 kB blob did not.
  BOOST_TEST(data["bytes_received"].get<uint64_t>() < 100'000u, data.dump());
  t.s.check_converged(1);
  BOOST_TEST(read_file(t.courses_dst() + "/BIO101/files/3f/3f786850e387550fdab836ed7e6dc881de23001b") == t.blob);

  // The plan says so before anything is done: --dry-run counts it as a copy.
  write_file(t.s.src() + "/filedir/cc/dd/ccdd", t.blob + "x");
  write_file(t.courses_src() + "/BIO101/files/cc/ccdd", t.blob + "x");
  t.s.publish();
  RunResult pub = run({"distctl", "publish", "--channel", "courses", "--config", t.s.hq_cfg}, {}, {}, 120);
  BOOST_REQUIRE_EQUAL(pub.status, 0);
  t.sync("courses");
  RunResult dry = run({"distctl", "sync", "--config", t.s.reg_cfg, "--channel", "c", "--dry-run", "--json"});
  BOOST_REQUIRE_MESSAGE(dry.status == 0, dry.err);
  auto plan = nlohmann::json::parse(dry.out)["channels"][0];
  BOOST_TEST(plan["copy"] == 1, plan.dump());
  BOOST_TEST(plan["full_bytes"] == 0, plan.dump());
}

BOOST_AUTO_TEST_CASE(a_source_changed_at_the_center_is_fetched_instead) {
  TwoChannels t;
  t.sync("courses");
  // Someone edits the course's copy at the center after it was installed.
  write_file(t.courses_dst() + "/BIO101/files/3f/3f786850e387550fdab836ed7e6dc881de23001b", "not the blob\n");
  RunResult r = t.s.sync({"--channel", "c"});
  BOOST_REQUIRE_MESSAGE(r.status == 0, r.err);
  auto data = nlohmann::json::parse(r.out)["channels"][0];
  BOOST_TEST(data["copied"] == 0, data.dump());
  BOOST_TEST(data["bytes_received"].get<uint64_t>() >= t.blob.size(), data.dump());
  BOOST_TEST(r.err.find("(another channel) changed; bringing it in instead") != std::string::npos, r.err);
  t.s.check_converged(1);
}

BOOST_AUTO_TEST_CASE(a_link_in_the_other_tree_is_not_followed) {
  TwoChannels t;
  t.sync("courses");
  // The course's member replaced by a link to a file with the right bytes elsewhere: never read.
  const std::string member = t.courses_dst() + "/BIO101/files/3f/3f786850e387550fdab836ed7e6dc881de23001b";
  write_file(t.s.tmp / "outside", t.blob);
  fs::remove(member);
  fs::create_symlink(t.s.tmp / "outside", member);
  RunResult r = t.s.sync({"--channel", "c"});
  BOOST_REQUIRE_MESSAGE(r.status == 0, r.err);
  auto data = nlohmann::json::parse(r.out)["channels"][0];
  BOOST_TEST(data["copied"] == 0, data.dump());
  t.s.check_converged(1);
}

// A stick leaves out what the center holds in another channel (its request lists each
// channel's content); the import copies it from there.
BOOST_AUTO_TEST_CASE(a_stick_leaves_out_what_another_channel_of_the_center_holds) {
  BundleSite s;
  const std::string blob = random_bytes(400'000, 11);
  add_courses_channel(s, blob);
  s.round({"--channel", "courses"}, s.tmp / "stick1");
  RunResult i1 = s.import_(s.tmp / "stick1");
  BOOST_REQUIRE_MESSAGE(i1.status == 0, i1.err);
  BOOST_REQUIRE(read_file(courses_dst(s) + kMember) == blob);

  nlohmann::json e = s.round({}, s.tmp / "stick2");
  BOOST_TEST(e["held_elsewhere_entries"] == 1, e.dump());
  BOOST_TEST(e["bytes"].get<uint64_t>() < 200'000u, e.dump());  // not the 400 kB blob
  RunResult i2 = s.import_(s.tmp / "stick2");
  BOOST_REQUIRE_MESSAGE(i2.status == 0, i2.err);
  s.check_converged(1);
}
