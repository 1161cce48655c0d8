// The replica and the files meet: rows that reach the regional replica's mdl_files show up as
// missing files until the sync brings their blobs, and the sync brings those first — even when
// every other big file waits for the night window. Real MariaDB primary + replica, real distd hq,
// real distctl at the center.
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <ctime>
#include <openssl/evp.h>

#include "tests/support/mariadb_pair.h"
#include "tests/support/sync_site.h"

using namespace distd::test;
using nlohmann::json;

namespace {

std::string sha1_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha1(), nullptr);
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += d[md[i] >> 4];
    out += d[md[i] & 15];
  }
  return out;
}

// A one-hour window twelve hours from now: whatever the clock, big files must wait.
std::string window_not_now() {
  time_t now = ::time(nullptr);
  struct tm tm {};
  localtime_r(&now, &tm);
  int start = (tm.tm_hour + 12) % 24;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02d:00-%02d:00", start, (start + 1) % 24);
  return buf;
}

}  // namespace

BOOST_AUTO_TEST_CASE(files_the_replica_references_come_first_and_check_files_ends_clean) {
  MariaDbPair pair;
  pair.primary_exec(read_file(source_path("tests/fixtures/moodle_schema.sql")));
  pair.replica_exec(
      "CREATE USER 'distd'@'localhost' IDENTIFIED BY 'distd-pw';\n"
      "GRANT SELECT ON mysql.* TO 'distd'@'localhost';\n"
      "GRANT SELECT ON moodle.* TO 'distd'@'localhost';\n"
      "GRANT SLAVE MONITOR ON *.* TO 'distd'@'localhost';\n");

  SyncSite site;
  // HQ publishes a moodledata filedir of 30 blobs named by their SHA-1, as Moodle stores them.
  std::vector<std::string> hashes;
  for (int i = 0; i < 30; ++i) {
    std::string content = random_bytes(20000 + 1000 * i, 500 + i);
    std::string h = sha1_hex(content);
    hashes.push_back(h);
    write_file(site.src() + "/filedir/" + h.substr(0, 2) + "/" + h.substr(2, 2) + "/" + h, content);
  }
  site.start_hq();
  BOOST_REQUIRE_EQUAL(site.publish(), 1u);

  // The center: channel with the moodledata preset, [replica] pointing at the local replica.
  std::string moodledata = site.tmp / "center/moodledata";
  write_file(site.tmp / "distd.password", "distd-pw\n");
  ::chmod((site.tmp / "distd.password").c_str(), 0600);
  write_file(site.reg_cfg,
             "role = \"regional\"\nsite = \"center-1\"\nstate_dir = \"" + site.reg_state + "\"\n"
             "[regional]\nhq_url = \"" + site.hq_url() + "\"\nhq_public_key = \"" + site.pub + "\"\n"
             "big_files_window = \"" + window_not_now() + "\"\nbig_file_threshold = 1\n\n"
             "[replica]\nsocket = \"" + pair.replica().socket() + "\"\nuser = \"distd\"\n"
             "password_file = \"" + (site.tmp / "distd.password") + "\"\ndatabase = \"moodle\"\n"
             "filedir = \"" + moodledata + "/filedir\"\n\n"
             "[[channel]]\nname = \"c\"\npath = \"" + moodledata + "\"\npreset = \"moodledata\"\n");
  std::filesystem::create_directories(moodledata + "/filedir");

  // Teachers at HQ attach 8 of the files to a course: the rows replicate before the blobs travel.
  std::string sql = "INSERT INTO moodle.mdl_files (contenthash, pathnamehash, contextid, component, filearea, itemid,"
                    " filepath, filename, filesize, timecreated, timemodified) VALUES ";
  for (int i = 0; i < 8; ++i) {
    std::string h = hashes[static_cast<size_t>(i * 3)];
    sql += std::string(i ? "," : "") + "('" + h + "','" + sha1_hex("p" + std::to_string(i)) + "',20,'mod_resource','content',0,'/','f" +
           std::to_string(i) + ".pdf'," + std::to_string(20000 + 1000 * i * 3) + ",1700000000,1700000000)";
  }
  // A directory entry ('.') names the empty file: never a missing blob.
  sql += ",('da39a3ee5e6b4b0d3255bfef95601890afd80709','" + sha1_hex("dir") + "',20,'mod_resource','content',0,'/','.',0,1,1);";
  pair.primary_exec(sql);
  BOOST_REQUIRE(pair.wait_replicated());

  RunResult cf = run({"distctl", "replica", "check-files", "--config", site.reg_cfg, "--json"});
  BOOST_TEST_INFO(cf.err);
  json before = json::parse(cf.out);
  BOOST_TEST(before["missing"].size() == 8u);
  RunResult st = run({"distctl", "status", "--config", site.reg_cfg, "--json"});
  BOOST_REQUIRE_MESSAGE(st.status == 75, st.err);  // nothing installed yet: not converged
  json status = json::parse(st.out);
  BOOST_TEST(status["replica"]["referenced_missing_files"].get<int>() == 8);
  RunResult st_text = run({"distctl", "status", "--config", site.reg_cfg});
  BOOST_TEST(st_text.out.find("files the database references but the disk lacks: 8") != std::string::npos, st_text.out);

  // Outside the big-file window: only the referenced (priority) files may come now.
  RunResult s1 = site.sync();
  BOOST_TEST(s1.status == 75, s1.err);  // EX_TEMPFAIL: the rest waits for the window
  for (int i = 0; i < 30; ++i) {
    const std::string& h = hashes[static_cast<size_t>(i)];
    bool there = exists(moodledata + "/filedir/" + h.substr(0, 2) + "/" + h.substr(2, 2) + "/" + h);
    BOOST_TEST(there == (i % 3 == 0 && i < 24), "blob " << i);
  }
  cf = run({"distctl", "replica", "check-files", "--config", site.reg_cfg, "--json", "--verify"});
  BOOST_TEST(cf.status == 0, cf.out << cf.err);
  BOOST_TEST(json::parse(cf.out)["missing"].empty());

  // The night comes (--now ignores the window): the center converges on everything.
  RunResult s2 = site.sync({"--now"});
  BOOST_TEST(s2.status == 0, s2.err);
  st = run({"distctl", "status", "--config", site.reg_cfg, "--json"});
  BOOST_TEST(json::parse(st.out)["replica"]["referenced_missing_files"].get<int>() == 0);
}
