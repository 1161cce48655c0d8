// Course files first at centers on a database replica: with [hq.database] (a real MariaDB
// primary with Moodle's mdl_context and mdl_files), publish-course lists the SHA-1 content
// hashes of every file in the course's contexts (course 50, modules 70 below it) in the
// courses channel; a center's moodledata sync gets them as priority names.
#include <boost/test/unit_test.hpp>
#include <filesystem>

#include "distd/config/config.h"
#include "distd/course/course_priority.h"
#include "tests/support/course_site.h"
#include "tests/support/mariadb_pair.h"

using namespace distd;
using namespace distd::test;

namespace {

std::string sha(int i) {
  std::string h = digest_hex(digest_bytes("blob " + std::to_string(i))).substr(0, 40);
  return h;
}

void add_file(db::SqlConnection& c, int id, int contextid, const std::string& hash, const std::string& name,
              int size) {
  c.exec("INSERT INTO mdl_files (contenthash, pathnamehash, contextid, component, filearea, itemid, filepath, filename,"
         " userid, filesize, mimetype, timecreated, timemodified) VALUES ('" + hash + "', '" +
         sha(100000 + id) + "', " + std::to_string(contextid) + ", 'mod_resource', 'content', 0, '/', '" + name +
         "', 2, " + std::to_string(size) + ", 'application/pdf', 1730000000, 1730000000)");
}

}  // namespace

BOOST_AUTO_TEST_CASE(course_filedir_hashes_from_the_primary) {
  TempDir dbdir("hqdb");
  MariaDbServer db(dbdir.path(), {"--server-id=1"});
  auto root = db.root();
  for (const auto& stmt : split_sql(read_file(source_path("tests/fixtures/moodle_schema.sql")))) root->exec(stmt);
  auto c = db.root("moodle");
  // System 1, category 3; course 42 -> context 150 (/1/3/150), its modules 151, 152; course 43
  // -> context 1500 (/1/3/1500: a LIKE '/1/3/150%' trap), course 44 -> 160.
  c->exec("INSERT INTO mdl_context (id, contextlevel, instanceid, path, depth) VALUES (1, 10, 0, '/1', 1), "
          "(3, 40, 1, '/1/3', 2), (150, 50, 42, '/1/3/150', 3), (151, 70, 421, '/1/3/150/151', 4), "
          "(152, 70, 422, '/1/3/150/152', 4), (1500, 50, 43, '/1/3/1500', 3), (1501, 70, 431, '/1/3/1500/1501', 4), "
          "(160, 50, 44, '/1/3/160', 3)");
  add_file(*c, 1, 150, sha(1), "overview.pdf", 1000);       // course context: yes
  add_file(*c, 2, 151, sha(2), "reading.pdf", 2000);        // module: yes
  add_file(*c, 3, 152, sha(3), "slides.pdf", 3000);         // module: yes
  add_file(*c, 4, 152, sha(2), "reading-copy.pdf", 2000);   // same content twice: listed once
  add_file(*c, 5, 152, "da39a3ee5e6b4b0d3255bfef95601890afd80709", ".", 0);  // directory entry: no
  add_file(*c, 6, 1501, sha(6), "other.pdf", 6000);         // course 43's module: no
  add_file(*c, 7, 160, sha(7), "third.pdf", 7000);          // course 44: no

  CourseSite s("\n[hq.database]\nsocket = \"" + db.socket() + "\"\nuser = \"root\"\ndatabase = \"moodle\"\n");
  auto r = s.publish(make_mbz(s.tmp / "bio.mbz"));
  std::vector<std::string> want = {sha(1), sha(2), sha(3)};
  std::sort(want.begin(), want.end());
  BOOST_TEST(r["priority_hashes"] == 3);
  std::string expected;
  for (auto& h : want) expected += h + "\n";
  BOOST_TEST(read_file(s.hq_tree() + "/BIO101/filedir-priority.txt") == expected);
  BOOST_TEST(read_file(s.latest_manifest()).find("BIO101/filedir-priority.txt") != std::string::npos);

  // A course the database does not know: published anyway, with a warning and no list.
  RunResult unknown = s.publish_raw({make_mbz(s.tmp / "x.mbz", {"--shortname", "X1", "--course-id", "999"})});
  BOOST_TEST(unknown.status == 0, unknown.err);
  BOOST_TEST(unknown.err.find("no filedir priority list") != std::string::npos, unknown.err);

  // The center: after the courses channel arrived, its moodledata plan gets these names first.
  s.start_hq();
  s.sync();
  BOOST_TEST(read_file(s.center_tree() + "/BIO101/filedir-priority.txt") == expected);
  Config reg = load_config(s.reg_cfg);
  auto got = course::course_priority_hashes(reg);
  BOOST_TEST(got == want, "priority names at the center");
}

BOOST_AUTO_TEST_CASE(no_database_no_list) {
  CourseSite s;
  auto r = s.publish(make_mbz(s.tmp / "bio.mbz"));
  BOOST_TEST(r["priority_hashes"] == 0);
  BOOST_TEST(!exists(s.hq_tree() + "/BIO101/filedir-priority.txt"));
}
