// The regional replica of HQ's Moodle database, with real servers: a MariaDB primary ("HQ") and a
// replica ("center") replicating with GTID, a Moodle-shaped schema, and distctl run as a process.
// The pair is started once for the module; the test cases run in order and build on each other.
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "distd/config/config.h"
#include "distd/replica/file_check.h"
#include "manifest/error.h"
#include "tests/support/mariadb_pair.h"
#include "tests/support/test_support.h"

using namespace distd;
using namespace distd::test;
using nlohmann::json;

namespace {

struct Env {
  MariaDbPair pair;
  TempDir dir{"replica"};
  std::string config = dir / "distd.toml";
  std::string pwfile = dir / "distd.password";
  std::string filedir = dir / "moodledata/filedir";

  Env() {
    pair.primary_exec(read_file(source_path("tests/fixtures/moodle_schema.sql")));
    pair.primary_exec(
        "INSERT INTO moodle.mdl_course (id, category, fullname, shortname, summary) VALUES (1, 0, 'Site', 'site', ''), "
        "(2, 1, 'Agronomy 101', 'AGR101', 'Soils');\n"
        "INSERT INTO moodle.mdl_user (id, auth, confirmed, mnethostid, username, password, firstname, lastname, email) "
        "VALUES (2, 'manual', 1, 1, 'amina', '$6$rounds=10000$salt$hash', 'Amina', 'K', 'amina@example.org');\n"
        "INSERT INTO moodle.mdl_forum (id, course, name, intro) VALUES (1, 2, 'Questions', '');\n"
        "INSERT INTO moodle.mdl_forum_discussions (id, course, forum, name, firstpost, userid) VALUES (1, 2, 1, 'Soil pH', 1, 2);\n"
        "INSERT INTO moodle.mdl_forum_posts (id, discussion, parent, userid, created, modified, subject, message, attachment) "
        "VALUES (1, 1, 0, 2, 1700000000, 1700000000, 'Soil pH', 'How do I measure it?', '');\n");
    BOOST_REQUIRE(pair.wait_replicated());
    // At the center: Moodle's account as a typical install leaves it (ALL on its database), and
    // distd's own monitoring account.
    pair.replica_exec(
        "CREATE USER 'moodle'@'localhost' IDENTIFIED BY 'moodle-pw';\n"
        "GRANT ALL PRIVILEGES ON moodle.* TO 'moodle'@'localhost';\n"
        "CREATE USER 'distd'@'localhost' IDENTIFIED BY 'distd-pw';\n"
        "GRANT SELECT ON mysql.* TO 'distd'@'localhost';\n"
        "GRANT SELECT ON moodle.* TO 'distd'@'localhost';\n"
        "GRANT SLAVE MONITOR ON *.* TO 'distd'@'localhost';\n");
    write_file(pwfile, "distd-pw\n");
    ::chmod(pwfile.c_str(), 0600);
    std::filesystem::create_directories(filedir);
    write_file(config,
               "role = \"regional\"\nsite = \"center-test\"\nstate_dir = \"state\"\n\n[replica]\n"
               "socket = \"" + pair.replica().socket() + "\"\n"
               "user = \"distd\"\npassword_file = \"distd.password\"\ndatabase = \"moodle\"\nprefix = \"mdl_\"\n"
               "moodle_user = \"moodle\"\nfiledir = \"moodledata/filedir\"\nlag_warn_seconds = 60\n");
  }
};

Env* env = nullptr;

struct GlobalFixture {
  GlobalFixture() {}
  void setup() { env = new Env(); }
  void teardown() {
    delete env;
    env = nullptr;
  }
};
BOOST_TEST_GLOBAL_FIXTURE(GlobalFixture);

RunResult distctl(std::vector<std::string> args) {
  args.insert(args.begin(), "distctl");
  args.push_back("--config");
  args.push_back(env->config);
  return run(args, {}, {}, 60);
}

json status_json() {
  auto r = distctl({"replica", "status", "--json"});
  BOOST_TEST_INFO("stderr: " << r.err);
  BOOST_REQUIRE(r.status == 0 || r.status == 1);
  return json::parse(r.out);
}

// Polls `replica status --json` until pred holds (or the timeout); returns the last report.
json wait_status(const std::function<bool(const json&)>& pred, double timeout_s = 20) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(int(timeout_s * 1000));
  json j;
  do {
    j = status_json();
    if (pred(j)) return j;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  } while (std::chrono::steady_clock::now() < deadline);
  return j;
}

bool any_warning_contains(const json& j, const std::string& needle) {
  for (auto& w : j["warnings"])
    if (w.get<std::string>().find(needle) != std::string::npos) return true;
  return false;
}

unsigned sql_errno_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error&) {
    return 1;  // caller inspects the connection's last_errno
  }
  return 0;
}

std::string sha1_of(const std::string& content) {
  std::string p = env->dir / "sha1.tmp";
  write_file(p, content);
  auto r = run({"sha1sum", p});
  BOOST_REQUIRE_EQUAL(r.status, 0);
  return r.out.substr(0, 40);
}

std::string blob_path(const std::string& h) {
  return env->filedir + "/" + h.substr(0, 2) + "/" + h.substr(2, 2) + "/" + h;
}

}  // namespace

BOOST_AUTO_TEST_CASE(password_file_must_be_private) {
  ::chmod(env->pwfile.c_str(), 0644);
  auto r = distctl({"replica", "status"});
  ::chmod(env->pwfile.c_str(), 0600);
  BOOST_TEST(r.status == 2);
  BOOST_TEST(r.err.find("chmod 600") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(profile_print_shows_grants_filters_and_mycnf) {
  auto r = distctl({"replica", "profile", "--print"});
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  for (const char* s : {"REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'moodle'@'localhost'",
                        "GRANT SELECT, CREATE TEMPORARY TABLES ON `moodle`.*",
                        "GRANT SELECT, INSERT, UPDATE, DELETE ON `moodle`.`mdl_sessions`",
                        "GRANT SELECT, INSERT, UPDATE, DELETE ON `moodle`.`mdl_logstore_standard_log`",
                        "GRANT SELECT, INSERT, UPDATE, DELETE ON `moodle`.`mdl_user_lastaccess`",
                        "GRANT UPDATE (`firstaccess`, `lastaccess`, `lastlogin`, `currentlogin`, `lastip`, `password`)",
                        "moodle.mdl_sessions,moodle.mdl_user_lastaccess,moodle.mdl_logstore_standard_log",
                        "MASTER_USE_GTID = slave_pos", "MASTER_CONNECT_RETRY = 60", "slave_compressed_protocol",
                        "master_retry_count"})
    BOOST_TEST(r.out.find(s) != std::string::npos, "missing: " << s);

  auto m = distctl({"replica", "profile", "--print", "--flavor", "mysql", "--moodle-user", "mdl", "--moodle-db", "lms"});
  BOOST_TEST_REQUIRE(m.status == 0, m.err);
  BOOST_TEST(m.out.find("CHANGE REPLICATION FILTER REPLICATE_IGNORE_TABLE = (lms.mdl_sessions") != std::string::npos);
  BOOST_TEST(m.out.find("SOURCE_AUTO_POSITION = 1") != std::string::npos);
  BOOST_TEST(m.out.find("ON `lms`.`mdl_sessions` TO 'mdl'@'localhost'") != std::string::npos);

  auto bad = distctl({"replica", "profile"});
  BOOST_TEST(bad.status != 0);
}

BOOST_AUTO_TEST_CASE(check_before_apply_reports_every_deviation) {
  auto r = distctl({"replica", "profile", "--check", "--json"});
  BOOST_TEST_REQUIRE(r.status == 1, r.out << r.err);
  auto j = json::parse(r.out);
  std::set<std::string> codes;
  bool insert_everywhere = false;
  for (auto& f : j["findings"]) {
    codes.insert(f["code"]);
    std::string msg = f["message"], fix = f["fix"];
    if (f["code"] == "schema-privilege" && msg.find("INSERT, UPDATE, DELETE") != std::string::npos &&
        msg.find("on every table of `moodle`") != std::string::npos) {
      insert_everywhere = true;
      BOOST_TEST(fix.rfind("REVOKE INSERT, UPDATE, DELETE, ", 0) == 0, fix);
      BOOST_TEST(fix.find(" ON `moodle`.* FROM 'moodle'@'localhost';") != std::string::npos, fix);
    }
  }
  BOOST_TEST(insert_everywhere);
  BOOST_TEST(codes.count("ignore-table-missing"));
  BOOST_TEST(codes.count("compression-off"));
  // The replica binlogs in its own domain (2), so no clash yet.
  BOOST_TEST(!codes.count("gtid-domain-clash"));
}

BOOST_AUTO_TEST_CASE(apply_then_check_is_clean) {
  // distd's monitoring account may not grant: --apply as an administrator.
  auto denied = distctl({"replica", "profile", "--apply"});
  BOOST_TEST(denied.status != 0);

  auto r = distctl({"replica", "profile", "--apply", "--db-user", "root"});
  BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
  BOOST_TEST(r.out.find("no findings") != std::string::npos, r.out);

  auto c = distctl({"replica", "profile", "--check"});
  BOOST_TEST(c.status == 0, c.out << c.err);
  auto ignore = env->pair.replica().root()->scalar("SELECT @@GLOBAL.replicate_ignore_table").value_or("");
  BOOST_TEST(ignore.find("moodle.mdl_sessions") != std::string::npos, ignore);
  auto st = status_json();
  BOOST_TEST(st["ok"].get<bool>(), st.dump(2));
  BOOST_TEST(st["sql_running"].get<bool>());
}

BOOST_AUTO_TEST_CASE(moodle_account_writes_only_local_tables) {
  auto moodle = env->pair.replica().connect("moodle", "moodle-pw", "moodle");
  auto refused = [&](const std::string& sql) {
    bool threw = sql_errno_of([&] { moodle->exec(sql); }) != 0;
    BOOST_TEST(threw, "not refused: " << sql);
    BOOST_TEST((moodle->last_errno() == 1142 || moodle->last_errno() == 1143), sql << " errno " << moodle->last_errno());
  };
  refused("INSERT INTO mdl_forum_posts (discussion, parent, userid, subject, message, attachment) VALUES (1, 1, 2, 'Re', 'local', '')");
  refused("UPDATE mdl_forum_posts SET message = 'edited' WHERE id = 1");
  refused("DELETE FROM mdl_course WHERE id = 2");
  refused("UPDATE mdl_user SET email = 'x@example.org' WHERE id = 2");
  refused("CREATE TABLE mdl_evil (id INT)");

  // What a page view and a login write.
  moodle->exec("INSERT INTO mdl_sessions (state, sid, userid, timecreated, timemodified, firstip, lastip) "
               "VALUES (0, 'center-session-1', 2, 1700000100, 1700000100, '10.0.0.5', '10.0.0.5')");
  moodle->exec("UPDATE mdl_sessions SET timemodified = 1700000200 WHERE sid = 'center-session-1'");
  moodle->exec("INSERT INTO mdl_logstore_standard_log (eventname, component, action, target, crud, edulevel, contextid, "
               "contextlevel, contextinstanceid, userid, courseid, timecreated, origin, ip) VALUES "
               "('\\\\core\\\\event\\\\course_viewed', 'core', 'viewed', 'course', 'r', 2, 1, 50, 2, 2, 2, 1700000100, 'web', '10.0.0.5')");
  moodle->exec("INSERT INTO mdl_user_lastaccess (userid, courseid, timeaccess) VALUES (2, 2, 1700000100)");
  moodle->exec("UPDATE mdl_user SET firstaccess = 1700000100, lastaccess = 1700000100, lastlogin = 1700000000, "
               "currentlogin = 1700000100, lastip = '10.0.0.5' WHERE id = 2");
  moodle->exec("UPDATE mdl_user SET password = '$6$rounds=10000$new$rehash' WHERE id = 2");
  moodle->exec("CREATE TEMPORARY TABLE tmp_report (id INT)");
  BOOST_TEST(moodle->scalar("SELECT COUNT(*) FROM mdl_forum_posts").value_or("") == "1");
}

BOOST_AUTO_TEST_CASE(replication_keeps_flowing_after_local_writes) {
  // HQ writes the same local-only tables (same ids as the center's rows) and content.
  env->pair.primary_exec(
      "INSERT INTO moodle.mdl_sessions (id, state, sid, userid, timecreated, timemodified) VALUES (1, 0, 'hq-session-1', 2, 1700000300, 1700000300);\n"
      "INSERT INTO moodle.mdl_logstore_standard_log (id, eventname, component, action, target, crud, edulevel, contextid, "
      "contextlevel, contextinstanceid, userid, timecreated) VALUES (1, 'x', 'core', 'viewed', 'course', 'r', 2, 1, 50, 2, 2, 1700000300);\n"
      "INSERT INTO moodle.mdl_user_lastaccess (id, userid, courseid, timeaccess) VALUES (1, 2, 2, 1700000300);\n"
      "UPDATE moodle.mdl_user SET firstname = 'Amina-HQ' WHERE id = 2;\n"
      "INSERT INTO moodle.mdl_course (id, category, fullname, shortname, summary) VALUES (3, 1, 'Irrigation', 'IRR', '');\n"
      "INSERT INTO moodle.mdl_forum_posts (id, discussion, parent, userid, created, modified, subject, message, attachment) "
      "VALUES (2, 1, 1, 2, 1700000300, 1700000300, 'Re: Soil pH', 'Use a meter', '');\n");
  BOOST_TEST_REQUIRE(env->pair.wait_replicated(), env->pair.replica().error_log());
  auto r = env->pair.replica().root("moodle");
  BOOST_TEST(r->scalar("SELECT fullname FROM mdl_course WHERE id = 3").value_or("") == "Irrigation");
  BOOST_TEST(r->scalar("SELECT COUNT(*) FROM mdl_forum_posts").value_or("") == "2");
  BOOST_TEST(r->scalar("SELECT firstname FROM mdl_user WHERE id = 2").value_or("") == "Amina-HQ");
  // The center's own rows are untouched; HQ's never arrived.
  BOOST_TEST(r->scalar("SELECT GROUP_CONCAT(sid) FROM mdl_sessions").value_or("") == "center-session-1");
  BOOST_TEST(r->scalar("SELECT COUNT(*) FROM mdl_logstore_standard_log WHERE origin = 'web'").value_or("") == "1");
  auto st = status_json();
  BOOST_TEST(st["sql_running"].get<bool>(), st.dump(2));
  BOOST_TEST(st["io_running"].get<bool>(), st.dump(2));
  BOOST_TEST(st["ok"].get<bool>(), st.dump(2));
  BOOST_TEST(!st["gtid_position"].get<std::string>().empty());
}

BOOST_AUTO_TEST_CASE(check_names_a_content_table_moodle_can_write) {
  env->pair.replica_exec("GRANT INSERT ON moodle.mdl_forum_posts TO 'moodle'@'localhost';\n");
  auto r = distctl({"replica", "profile", "--check"});
  BOOST_TEST(r.status == 1);
  BOOST_TEST(r.out.find("can INSERT into mdl_forum_posts") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("REVOKE INSERT ON `moodle`.`mdl_forum_posts` FROM 'moodle'@'localhost';") != std::string::npos, r.out);
  auto st = distctl({"replica", "status", "--json"});
  BOOST_TEST(st.status == 1);
  BOOST_TEST(any_warning_contains(json::parse(st.out), "replica profile"), st.out);
  env->pair.replica_exec("REVOKE INSERT ON moodle.mdl_forum_posts FROM 'moodle'@'localhost';\n");
  BOOST_TEST(distctl({"replica", "profile", "--check"}).status == 0);
}

// A built-in local-only table that this Moodle lacks (a later Moodle without mod_chat) is no
// finding; a configured extra table that does not exist is one (a typo, or a missing plugin).
BOOST_AUTO_TEST_CASE(missing_local_tables_builtin_versus_extra) {
  env->pair.primary_exec("DROP TABLE moodle.mdl_chat_users;\n");
  BOOST_REQUIRE(env->pair.wait_replicated());  // the DROP is filtered at the center: drop it there too
  env->pair.replica_exec("DROP TABLE moodle.mdl_chat_users;\n");
  BOOST_TEST(distctl({"replica", "profile", "--check"}).status == 0);
  std::string cfg = read_file(env->config);
  write_file(env->config, cfg + "extra_local_tables = [\"no_such_table\"]\n");
  auto r = distctl({"replica", "profile", "--check", "--json"});
  write_file(env->config, cfg);
  BOOST_TEST(r.status == 1);
  BOOST_TEST(r.out.find("local-table-missing") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("mdl_no_such_table") != std::string::npos, r.out);
  json report = json::parse(r.out);  // a range-for over a temporary's member would dangle
  for (auto& f : report["findings"])
    BOOST_TEST(f["message"].get<std::string>().find("mdl_chat_users") == std::string::npos, r.out);
}

BOOST_AUTO_TEST_CASE(stopped_io_thread_is_reported) {
  env->pair.replica_exec("STOP SLAVE IO_THREAD;\n");
  auto j = wait_status([](const json& j) { return !j["io_running"].get<bool>(); });
  BOOST_TEST(!j["io_running"].get<bool>(), j.dump(2));
  BOOST_TEST(j["io_state"].get<std::string>() == "No");
  BOOST_TEST(!j["ok"].get<bool>());
  BOOST_TEST(any_warning_contains(j, "IO thread"), j.dump(2));
  auto text = distctl({"replica", "status"});
  BOOST_TEST(text.status == 1);
  BOOST_TEST(text.out.find("WARNING: replication IO thread") != std::string::npos, text.out);

  env->pair.replica_exec("START SLAVE IO_THREAD;\n");
  j = wait_status([](const json& j) { return j["ok"].get<bool>(); });
  BOOST_TEST(j["ok"].get<bool>(), j.dump(2));
}

BOOST_AUTO_TEST_CASE(broken_sql_thread_is_reported) {
  // A row written at the center where HQ then inserts the same key: a real conflict.
  env->pair.replica_exec("INSERT INTO moodle.mdl_course (id, fullname, shortname, summary) VALUES (50, 'local', 'LOC', '');\n");
  env->pair.primary_exec("INSERT INTO moodle.mdl_course (id, fullname, shortname, summary) VALUES (50, 'from HQ', 'HQ50', '');\n");
  auto j = wait_status([](const json& j) { return !j["sql_running"].get<bool>(); });
  BOOST_TEST_REQUIRE(!j["sql_running"].get<bool>(), j.dump(2));
  BOOST_TEST(j["last_sql_errno"].get<int>() == 1062, j.dump(2));
  BOOST_TEST(j["last_sql_error"].get<std::string>().find("Duplicate") != std::string::npos, j.dump(2));
  BOOST_TEST(any_warning_contains(j, "SQL thread is stopped"), j.dump(2));

  // Repair as an operator would: drop the local row, resume.
  env->pair.replica_exec("DELETE FROM moodle.mdl_course WHERE id = 50;\nSTART SLAVE SQL_THREAD;\n");
  BOOST_TEST_REQUIRE(env->pair.wait_replicated());
  BOOST_TEST(env->pair.replica().root()->scalar("SELECT shortname FROM moodle.mdl_course WHERE id = 50").value_or("") == "HQ50");
  j = wait_status([](const json& j) { return j["ok"].get<bool>(); });
  BOOST_TEST(j["ok"].get<bool>(), j.dump(2));
}

BOOST_AUTO_TEST_CASE(lag_is_reported) {
  // Hold a row lock at the center so the SQL thread waits on an event HQ wrote two hours "ago".
  auto blocker = env->pair.replica().root("moodle");
  blocker->exec("BEGIN");
  blocker->query("SELECT * FROM mdl_course WHERE id = 2 FOR UPDATE");
  env->pair.primary_exec("SET timestamp = UNIX_TIMESTAMP() - 7200;\nUPDATE moodle.mdl_course SET fullname = 'Agronomy 102' WHERE id = 2;\n");
  auto j = wait_status([](const json& j) { return j["seconds_behind"].is_number() && j["seconds_behind"].get<int64_t>() > 60; });
  BOOST_TEST_REQUIRE(j["seconds_behind"].is_number(), j.dump(2));
  BOOST_TEST(j["seconds_behind"].get<int64_t>() > 3600, j.dump(2));
  BOOST_TEST(any_warning_contains(j, "lags"), j.dump(2));
  blocker->exec("ROLLBACK");
  BOOST_TEST_REQUIRE(env->pair.wait_replicated());
  j = wait_status([](const json& j) { return j["ok"].get<bool>(); });
  BOOST_TEST(j["ok"].get<bool>(), j.dump(2));
}

BOOST_AUTO_TEST_CASE(files_referenced_but_missing_until_they_arrive) {
  const std::string alpha = "alpha: lecture notes\n", bravo = "bravo: a forum attachment, somewhat longer\n";
  const std::string ha = sha1_of(alpha), hb = sha1_of(bravo), hx = sha1_of("external alias content");
  const std::string empty_dir = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
  auto row = [](int id, const std::string& hash, const std::string& path, const std::string& comp, const std::string& area,
                const std::string& name, size_t size, const std::string& ref) {
    return "INSERT INTO moodle.mdl_files (id, contenthash, pathnamehash, contextid, component, filearea, itemid, filepath, "
           "filename, filesize, timecreated, timemodified, referencefileid) VALUES (" +
           std::to_string(id) + ", '" + hash + "', SHA1('" + path + "'), 5, '" + comp + "', '" + area + "', 0, '/', '" + name +
           "', " + std::to_string(size) + ", 1700000000, 1700000000, " + ref + ");\n";
  };
  env->pair.primary_exec(row(1, ha, "/5/mod_resource/content/0/notes.txt", "mod_resource", "content", "notes.txt", alpha.size(), "NULL") +
                         row(2, empty_dir, "/5/mod_resource/content/0/.", "mod_resource", "content", ".", 0, "NULL") +
                         row(3, hb, "/5/mod_forum/attachment/2/photo.jpg", "mod_forum", "attachment", "photo.jpg", bravo.size(), "NULL") +
                         row(4, hb, "/5/mod_forum/attachment/2/copy.jpg", "mod_forum", "attachment", "copy.jpg", bravo.size(), "NULL") +
                         row(5, hx, "/5/mod_url/content/0/alias.pdf", "mod_url", "content", "alias.pdf", 22, "1"));
  BOOST_TEST_REQUIRE(env->pair.wait_replicated());

  auto r = distctl({"replica", "check-files", "--json"});
  BOOST_TEST_REQUIRE(r.status == 1, r.out << r.err);
  auto j = json::parse(r.out);
  BOOST_TEST(j["referenced"].get<int>() == 2, j.dump(2));
  BOOST_TEST(j["missing_count"].get<int>() == 2);
  BOOST_TEST(j["missing_bytes"].get<uint64_t>() == alpha.size() + bravo.size());
  BOOST_TEST(j["missing"][0]["sha1"].get<std::string>() == ha);  // smallest first
  BOOST_TEST(j["missing"][1]["sha1"].get<std::string>() == hb);
  BOOST_TEST(j["missing"][1]["references"].get<int>() == 2);
  BOOST_TEST(j["missing"][1]["component"].get<std::string>() == "mod_forum");

  // The library call the sync engine uses sees the same.
  auto missing = replica::referenced_missing_files(load_config(env->config));
  BOOST_TEST_REQUIRE(missing.size() == 2u);
  BOOST_TEST(missing[0].sha1 == ha);
  BOOST_TEST(missing[0].size == alpha.size());

  // Sync brings the first blob, then the second.
  write_file(blob_path(ha), alpha);
  j = json::parse(distctl({"replica", "check-files", "--json"}).out);
  BOOST_TEST(j["missing_count"].get<int>() == 1);
  BOOST_TEST(j["present"].get<int>() == 1);
  write_file(blob_path(hb), bravo);
  auto clean = distctl({"replica", "check-files"});
  BOOST_TEST(clean.status == 0, clean.out << clean.err);
  BOOST_TEST(clean.out.find("missing:     0 files, 0 bytes") != std::string::npos, clean.out);
  BOOST_TEST(distctl({"replica", "check-files", "--verify"}).status == 0);

  // A blob with the wrong content passes the presence check but not --verify.
  write_file(blob_path(hb), "bravo: tampered\n");
  BOOST_TEST(distctl({"replica", "check-files"}).status == 0);
  auto v = distctl({"replica", "check-files", "--verify", "--json"});
  BOOST_TEST(v.status == 1, v.out << v.err);
  auto vj = json::parse(v.out);
  BOOST_TEST_REQUIRE(vj["corrupt_count"].get<int>() == 1, vj.dump(2));
  BOOST_TEST(vj["corrupt"][0]["sha1"].get<std::string>() == hb);
  BOOST_TEST(vj["corrupt"][0]["actual_sha1"].get<std::string>() == sha1_of("bravo: tampered\n"));
}
