// publish-course at HQ, from the operator's side: a Moodle backup (tar.gz and zip) becomes a
// course subtree of the courses channel and a signed version; a new backup of the same course
// reports what changed; damaged or non-Moodle archives are refused with the reason and nothing
// is published; --moodle runs (a stand-in for) Moodle's admin/cli/backup.php.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <set>
#include <sstream>

#include "distd/course/course_record.h"
#include "tests/support/course_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

// Moodle stamps the members of a backup with the time each was written, and a new backup
// re-stamps all of them. The record says one time (archive.mtime) and no member its own: the new
// record differs from the old one where content changed, not on every member's entry (which
// made its delta as large as the file).
BOOST_AUTO_TEST_CASE(a_backup_that_restamps_every_mtime_changes_the_record_only_where_content_did) {
  CourseSite s;
  // Stamped over 4 seconds, as a real backup of this size is (bench/bench_moodle_backup.sh).
  std::string v1 = make_mbz(s.tmp / "v1.mbz", {"--files", "300", "--file-size", "2000", "--spread", "4"});
  std::string v2 = make_mbz(s.tmp / "v2.mbz", {"--files", "300", "--file-size", "2000", "--version", "2", "--spread", "4"});
  s.publish(v1);
  const std::string a = read_file(s.hq_tree() + "/BIO101/course.json");
  s.publish(v2);
  const std::string b = read_file(s.hq_tree() + "/BIO101/course.json");
  auto rec = nlohmann::json::parse(b);
  BOOST_TEST(rec["format"] == "distd-course 2");
  BOOST_TEST(rec["archive"]["mtime"].get<int64_t>() >= 1730000000 + 2 * 86400);  // make_mbz's MTIME of version 2 ...
  BOOST_TEST(rec["archive"]["mtime"].get<int64_t>() < 1730000000 + 2 * 86400 + 4);  // ... + the spread
  size_t own_mtimes = 0;
  for (const auto& m : rec["members"]) own_mtimes += m.contains("mtime");
  BOOST_TEST(own_mtimes == 0u);
  std::set<std::string> old_lines;
  std::istringstream ia(a), ib(b);
  for (std::string l; std::getline(ia, l);) old_lines.insert(l);
  size_t lines = 0, changed = 0;
  for (std::string l; std::getline(ib, l); ++lines) changed += !old_lines.count(l);
  BOOST_TEST_MESSAGE("course.json: " << b.size() << " B, " << lines << " lines, " << changed << " new or changed");
  BOOST_TEST(lines > 2000u);
  BOOST_TEST(changed < 30u);  // the backup's name, date and size, one new files/ member, the XML around it
}

// Records of format 1 (every member with its own mtime) are still read, by the center's rebuild too.
BOOST_AUTO_TEST_CASE(a_format_1_record_is_still_read) {
  const std::string v1 = R"({"format":"distd-course 1","course":{"id":7,"shortname":"B","fullname":"B","backup_date":5},
    "archive":{"format":"tar.gz"},"members":[{"path":"a.xml","type":"file","mode":420,"mtime":1234,"size":1,
    "digest":"0000000000000000000000000000000000000000000000000000000000000000"},{"path":"d","type":"dir","mode":493,"mtime":99}]})";
  auto r = distd::course::parse_record(v1, "v1");
  BOOST_REQUIRE_EQUAL(r.members.size(), 2u);
  BOOST_TEST(r.members[0].h.mtime == 1234);
  BOOST_TEST(r.members[1].h.mtime == 99);
  // Written again, it is format 2: one time for all members.
  auto again = distd::course::parse_record(distd::course::record_to_json(r), "v2");
  BOOST_TEST(again.members[0].h.mtime == again.members[1].h.mtime);
}

BOOST_AUTO_TEST_CASE(publish_versions_zip_and_summary) {
  CourseSite s;
  std::string v1 = make_mbz(s.tmp / "v1.mbz", {"--files", "20", "--file-size", "30000"});
  std::string v2 = make_mbz(s.tmp / "v2.mbz", {"--files", "20", "--file-size", "30000", "--version", "2"});

  auto r1 = s.publish(v1);
  BOOST_TEST(r1["course"]["shortname"] == "BIO101");
  BOOST_TEST(r1["course"]["fullname"] == "Introduction to Biology");
  BOOST_TEST(r1["course"]["id"] == 42);
  BOOST_TEST(r1["course"]["moodle_release"] == "4.5.5 (Build: 20250609)");
  BOOST_TEST(r1["archive"]["format"] == "tar.gz");
  BOOST_TEST(r1["first_version"].get<bool>());
  BOOST_TEST(r1["channel"]["version"] == 1);
  BOOST_TEST(r1["new"]["files"] == r1["files"]);
  // Every file member is in the tree, byte for byte; course.json lists them in archive order.
  auto listed = list_archive(v1);
  BOOST_TEST(std::get<0>(listed.front()) == ".ARCHIVE_INDEX");
  for (auto& [name, type, size, digest] : listed)
    if (type == 'f') BOOST_TEST(file_digest_hex(s.hq_tree() + "/BIO101/members/" + name) == digest, name);
  auto rec = nlohmann::json::parse(read_file(s.hq_tree() + "/BIO101/course.json"));
  BOOST_TEST(rec["members"].size() == listed.size());
  BOOST_TEST(rec["members"][0]["path"] == ".ARCHIVE_INDEX");
  BOOST_TEST(read_file(s.latest_manifest()).find("BIO101/members/files/") != std::string::npos);

  // Version 2: one file replaced (new SHA-1 name), the XML around it rewritten.
  auto r2 = s.publish(v2);
  BOOST_TEST(!r2["first_version"].get<bool>());
  BOOST_TEST(r2["channel"]["version"] == 2);
  BOOST_TEST(r2["new"]["files"] == 1);
  BOOST_TEST(r2["removed"]["files"] == 1);
  BOOST_TEST(r2["unchanged"]["files"].get<int>() >= 19);
  BOOST_TEST(r2["unchanged"]["bytes"].get<uint64_t>() > 19u * 25000u);
  BOOST_TEST(r2["channel"]["bytes_copied"].get<uint64_t>() < 60000u);  // link = true: only new content stored

  // The same backup again: nothing to publish, and nothing written (no member staged, the
  // record not rewritten: it keeps its inode).
  const std::string record = s.hq_tree() + "/BIO101/course.json";
  const auto ino = [](const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 ? st.st_ino : ino_t(0);
  };
  const ino_t record_ino = ino(record);
  BOOST_TEST(r2["staged_bytes"].get<uint64_t>() > 0u);
  auto r3 = s.publish(v2);
  BOOST_TEST(!r3["channel"]["changed"].get<bool>());
  BOOST_TEST(r3["channel"]["version"] == 2);
  BOOST_TEST(r3["staged_bytes"].get<uint64_t>() == 0u);
  BOOST_TEST(ino(record) == record_ino);

  // A zip backup of another course: detected by content, even when named .zip.mbz or not.
  std::string z = make_mbz(s.tmp / "chem.bin", {"--format", "zip", "--shortname", "CHEM 2/b", "--course-id", "7",
                                               "--fullname", "Chemistry II"});
  auto rz = s.publish(z);
  BOOST_TEST(rz["archive"]["format"] == "zip");
  BOOST_TEST(rz["key"] == "CHEM%202%2Fb");
  BOOST_TEST(rz["channel"]["version"] == 3);
  BOOST_TEST(fs::exists(s.hq_tree() + "/CHEM%202%2Fb/members/moodle_backup.xml"));

  // The human summary names the course and what changed.
  std::string v3 = make_mbz(s.tmp / "v3.mbz", {"--files", "20", "--file-size", "30000", "--version", "3"});
  RunResult h = s.publish_raw({v3});
  BOOST_REQUIRE_EQUAL(h.status, 0);
  BOOST_TEST(h.out.find("course BIO101 \"Introduction to Biology\" (id 42)") != std::string::npos, h.out);
  BOOST_TEST(h.out.find("1 new") != std::string::npos, h.out);
  BOOST_TEST(h.out.find("published courses version 4") != std::string::npos, h.out);

  RunResult ls = run({bin("distctl"), "courses", "--config", s.hq_cfg});
  BOOST_TEST(ls.status == 0);
  BOOST_TEST(ls.out.find("BIO101") != std::string::npos);
  BOOST_TEST(ls.out.find("Chemistry II") != std::string::npos);
  BOOST_TEST(ls.out.find("published") != std::string::npos, ls.out);  // docs/courses.md's status at HQ
}

BOOST_AUTO_TEST_CASE(broken_archives_are_refused_and_nothing_is_published) {
  CourseSite s;
  s.publish(make_mbz(s.tmp / "good.mbz"));
  const std::string manifest_before = read_file(s.latest_manifest());
  const std::string record_before = read_file(s.hq_tree() + "/BIO101/course.json");

  struct Case {
    std::vector<std::string> args;
    int status;
    std::string reason;
  };
  std::vector<Case> cases = {
      {{"--broken", "truncated"}, 5, "is damaged"},
      {{"--broken", "truncated", "--format", "zip"}, 5, "is damaged"},
      {{"--broken", "notgzip"}, 5, "neither gzip (tar.gz) nor zip"},
      {{"--broken", "nomoodlexml"}, 5, "has no moodle_backup.xml"},
      {{"--broken", "badxml"}, 5, "moodle_backup.xml is not well-formed XML"},
      {{"--broken", "traversal"}, 9, "unsafe member path 'files/../../evil.txt'"},
      {{"--broken", "absolute"}, 9, "unsafe member path '/etc/evil.txt'"},
      {{"--broken", "symlink"}, 14, "symbolic link member 'course/link.xml'"},
      {{"--broken", "symlink", "--format", "zip"}, 14, "symbolic link member"},
      {{"--broken", "hardlink"}, 14, "hard link member 'course/link.xml'"},
      {{"--broken", "device"}, 14, "device member"},
      {{"--broken", "badsha1"}, 5, "not the one its name says"},
      {{"--broken", "badsha1", "--format", "zip"}, 5, "not the one its name says"},
      {{"--broken", "sha1dir"}, 5, "is in the wrong directory for its SHA-1"},
      {{"--broken", "bomb"}, 14, "over 100 times its size: refusing it as an archive bomb"},
      {{"--broken", "bomb", "--format", "zip"}, 14, "refusing it as an archive bomb"},
      {{"--broken", "fileoverdir"}, 9, "file member 'loose' with the name of a directory that holds earlier members"},
  };
  int n = 0;
  for (auto& c : cases) {
    std::vector<std::string> args = c.args;
    args.insert(args.end(), {"--version", "2"});  // would be a new version if it were accepted
    std::string f = make_mbz(s.tmp / ("bad" + std::to_string(n++) + ".mbz"), args);
    RunResult r = s.publish_raw({f});
    std::string what = c.args[1] + (c.args.size() > 2 ? " zip" : "");
    BOOST_TEST(r.status == c.status, what << ": status " << r.status << ": " << r.err);
    BOOST_TEST(r.err.find(c.reason) != std::string::npos, what << ": " << r.err);
    BOOST_TEST(r.err.find("what to do:") != std::string::npos, what);
    BOOST_TEST(read_file(s.latest_manifest()) == manifest_before, what);
    BOOST_TEST(read_file(s.hq_tree() + "/BIO101/course.json") == record_before, what);
  }
  write_file(s.tmp / "empty.mbz", "");
  RunResult e = s.publish_raw({s.tmp / "empty.mbz"});
  BOOST_TEST(e.status == 5);
  BOOST_TEST(e.err.find("the file is empty") != std::string::npos, e.err);
  RunResult missing = s.publish_raw({s.tmp / "nope.mbz"});
  BOOST_TEST(missing.status == 4);
  BOOST_TEST(!fs::exists(s.hq_state + "/course-staging"));
  BOOST_TEST(read_file(s.latest_manifest()) == manifest_before);
}

BOOST_AUTO_TEST_CASE(moodle_backup_cli_stand_in) {
  TempDir t("fakephp");
  // A stand-in for php: records its arguments, then writes a backup where backup.php would.
  std::string fake = t / "fake-php";
  write_file(fake,
             "#!/bin/sh\n"
             "echo \"$@\" > " + (t / "args") + "\n"
             "[ -n \"$FAIL\" ] && { echo 'Error: course not found' >&2; exit 1; }\n"
             "dest=''; id=''\n"
             "for a in \"$@\"; do case \"$a\" in --destination=*) dest=${a#--destination=};; "
             "--courseid=*) id=${a#--courseid=};; --courseshortname=*) id=77;; esac; done\n"
             "echo 'Backup completed.'\n"
             "exec python3 " + source_path("tests/support/make_mbz.py") +
             " \"$dest/backup-moodle2-course-$id-x-20241028-0933.mbz\" --course-id \"$id\" --shortname \"C$id\"\n");
  fs::permissions(fake, fs::perms(0755));
  write_file(t / "moodle/admin/cli/backup.php", "<?php // stand-in\n");
  CourseSite s("php = \"" + fake + "\"");

  RunResult r = run({bin("distctl"), "publish-course", "--config", s.hq_cfg, "--moodle", t / "moodle", "--course-id",
                     "42", "--json"});
  BOOST_REQUIRE_MESSAGE(r.status == 0, r.err);
  std::string args = read_file(t / "args");
  BOOST_TEST(args.find((t / "moodle/admin/cli/backup.php") + " --courseid=42 --destination=") == 0u, args);
  auto j = nlohmann::json::parse(r.out);
  BOOST_TEST(j["course"]["shortname"] == "C42");
  BOOST_TEST(j["channel"]["version"] == 1);
  BOOST_TEST(r.err.find("backup.php: Backup completed.") != std::string::npos, r.err);

  RunResult by_name = run({bin("distctl"), "publish-course", "--config", s.hq_cfg, "--moodle", t / "moodle",
                           "--course", "BIO101"});
  BOOST_REQUIRE_MESSAGE(by_name.status == 0, by_name.err);
  BOOST_TEST(read_file(t / "args").find("--courseshortname=BIO101") != std::string::npos);

  const std::string before = read_file(s.latest_manifest());
  RunResult bad = run({bin("distctl"), "publish-course", "--config", s.hq_cfg, "--moodle", t / "moodle", "--course-id",
                       "9"},
                      "", {"FAIL=1"});
  BOOST_TEST(bad.status == 3);
  BOOST_TEST(bad.err.find("failed with exit status 1") != std::string::npos, bad.err);
  BOOST_TEST(bad.err.find("course not found") != std::string::npos, bad.err);
  BOOST_TEST(read_file(s.latest_manifest()) == before);

  RunResult nomoodle = run({bin("distctl"), "publish-course", "--config", s.hq_cfg, "--moodle", t / "nowhere",
                            "--course-id", "1"});
  BOOST_TEST(nomoodle.status == 4);
  BOOST_TEST(nomoodle.err.find("admin/cli/backup.php") != std::string::npos);
  RunResult both = run({bin("distctl"), "publish-course", "--config", s.hq_cfg, "--moodle", t / "moodle"});
  BOOST_TEST(both.status == 2);
}
