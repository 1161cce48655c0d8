// Regional sync end to end (real distctl publish, distd role hq, distctl sync): a tree with
// small and large files converges; renames become local copies; an edit in a large file moves
// a delta; deletions follow the install; a replayed older manifest and corrupted objects are
// refused; status reports it all.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

void make_tree(const std::string& root) {
  for (int i = 0; i < 40; ++i)
    write_file(root + "/filedir/" + std::to_string(i % 7) + "/small" + std::to_string(i), random_bytes(100 + i * 97, i));
  write_file(root + "/big/one.bin", random_bytes(3 << 20, 100));
  write_file(root + "/big/two.bin", random_bytes(1 << 20, 101));
  write_file(root + "/empty", "");
  write_file(root + "/courses/a/same.mbz", random_bytes(300000, 102));
  write_file(root + "/courses/b/same.mbz", random_bytes(300000, 102));  // the same file in two courses
  fs::permissions(root + "/filedir/0/small0", fs::perms(0600));
}

}  // namespace

BOOST_AUTO_TEST_CASE(converge_rename_delta_delete_and_refusals) {
  SyncSite s;
  make_tree(s.src());
  BOOST_REQUIRE_EQUAL(s.publish(), 1u);
  s.start_hq();

  // 1. First sync: everything arrives, the duplicate is fetched once.
  auto r1 = s.sync_ok();
  s.check_converged(1);
  BOOST_TEST(r1["converged"].get<bool>());
  BOOST_TEST(r1["to_version"].get<uint64_t>() == 1u);
  BOOST_TEST(r1["copied"].get<uint64_t>() == 1u);  // courses/b/same.mbz from courses/a/same.mbz
  uint64_t content = 0;
  for (auto& e : s.manifest(1).manifest.entries) content += e.size;
  uint64_t recv1 = r1["bytes_received"].get<uint64_t>();
  BOOST_TEST(recv1 < content);  // the duplicate did not travel twice
  BOOST_TEST(recv1 > content - 300000 - 1000);

  // 2. Unchanged: up to date, nothing but the manifest moves.
  auto r2 = s.sync_ok();
  BOOST_TEST(r2["up_to_date"].get<bool>());
  BOOST_TEST(r2["bytes_received"].get<uint64_t>() < 20000u);

  // 3. Version 2: a rename, an edit inside the big file, a deletion, a new file.
  fs::rename(s.src() + "/big/two.bin", s.src() + "/big/renamed.bin");
  std::string big = read_file(s.src() + "/big/one.bin");
  fs::remove(s.src() + "/big/one.bin");  // the store may hard-link the old version
  write_file(s.src() + "/big/one.bin", mutate(big, 1500000, "an edit in the middle of a large file"));
  fs::remove(s.src() + "/filedir/3/small3");
  write_file(s.src() + "/filedir/new", "brand new");
  BOOST_REQUIRE_EQUAL(s.publish(), 2u);
  auto r3 = s.sync_ok();
  s.check_converged(2);
  BOOST_TEST(r3["copied"].get<uint64_t>() == 1u);  // the rename: zero bytes fetched for it
  BOOST_TEST(r3["delta"].get<uint64_t>() == 1u);
  BOOST_TEST(r3["deleted"].get<uint64_t>() == 2u);  // small3 and the old name of two.bin
  uint64_t recv3 = r3["bytes_received"].get<uint64_t>();
  BOOST_TEST_MESSAGE("edit in a 3 MiB file + rename + new file: " << recv3 << " bytes received, "
                                                                  << r3["bytes_sent"].get<uint64_t>() << " sent");
  BOOST_TEST(recv3 < 200000u);  // far fewer than the 3 MiB file (or the renamed 1 MiB one)
  BOOST_TEST(!exists(s.dst() + "/big/two.bin"));

  // 4. A replayed older manifest is refused; nothing changes.
  std::string latest = s.public_dir() + "/channels/c/latest.manifest";
  std::string v2 = read_file(latest);
  fs::remove(latest);
  fs::copy_file(s.manifest_file(1), latest);
  RunResult rb = s.sync();
  BOOST_TEST(rb.status == 8);  // rollback
  BOOST_TEST(rb.err.find("refusing to go back") != std::string::npos, rb.err);
  s.check_converged(2);
  fs::remove(latest);
  write_file(latest, v2);

  // 5. A corrupted object at HQ: rejected, never installed, a clear error; fine once repaired.
  std::string payload = random_bytes(200000, 555);
  write_file(s.src() + "/filedir/corrupt-me", payload);
  BOOST_REQUIRE_EQUAL(s.publish(), 3u);
  std::string hex = file_digest_hex(s.src() + "/filedir/corrupt-me");
  s.corrupt_object(hex, mutate(payload, 1000, "XXXX"));
  RunResult rc = s.sync();
  BOOST_TEST(rc.status == 10);  // mismatch
  BOOST_TEST(rc.err.find("do not match the signed digest") != std::string::npos, rc.err);
  BOOST_TEST(!exists(s.dst() + "/filedir/corrupt-me"));
  s.check_only_signed({2, 3});
  s.corrupt_object(hex, payload);
  s.sync_ok();
  s.check_converged(3);

  // 6. Status tells the story.
  RunResult st = run({"distctl", "status", "--config", s.reg_cfg, "--json"});
  BOOST_REQUIRE_EQUAL(st.status, 0);
  auto js = nlohmann::json::parse(st.out);
  BOOST_TEST(js["channels"][0]["installed_version"].get<uint64_t>() == 3u);
  BOOST_TEST(js["channels"][0]["latest_known_version"].get<uint64_t>() == 3u);
  BOOST_TEST(js["channels"][0]["pending_files"].get<uint64_t>() == 0u);
  BOOST_TEST(!js["channels"][0]["last_success"].is_null());
  BOOST_TEST(js["link"].size() >= 1u);
  RunResult txt = run({"distctl", "status", "--config", s.reg_cfg});
  BOOST_TEST(txt.out.find("installed version   3") != std::string::npos, txt.out);
}

BOOST_AUTO_TEST_CASE(bad_key_and_unreachable_hq_are_clear_failures) {
  SyncSite s;
  write_file(s.src() + "/a", "a");
  s.publish();
  s.start_hq();
  // A different pinned key: bad signature, nothing installed.
  write_keypair(generate_keypair(), s.tmp / "other.key", s.tmp / "other.pub");
  std::string cfg = read_file(s.reg_cfg);
  std::string other = cfg;
  other.replace(other.find(s.pub), s.pub.size(), s.tmp / "other.pub");
  write_file(s.reg_cfg, other);
  RunResult r = s.sync();
  BOOST_TEST(r.status == 6, r.err);
  BOOST_TEST(!exists(s.dst() + "/a"));
  // HQ not listening: a network error naming the URL.
  s.set_hq_url("http://127.0.0.1:" + std::to_string(free_port()));
  RunResult n = s.sync();
  BOOST_TEST(n.status == 12, n.err);
  BOOST_TEST(n.err.find("127.0.0.1") != std::string::npos, n.err);
  RunResult st = run({"distctl", "status", "--config", s.reg_cfg, "--json"});
  auto js = nlohmann::json::parse(st.out);
  BOOST_TEST(!js["channels"][0]["last_error"].is_null());
  BOOST_TEST(js["link"][0]["up"].get<bool>() == false);
}

BOOST_AUTO_TEST_CASE(priority_files_and_big_files_window) {
  // A window that is never open now: big files wait, small and priority files come.
  SyncSite s("big_files_window = \"00:00-00:01\"\nbig_file_threshold = 100000");
  write_file(s.src() + "/small", "small");
  write_file(s.src() + "/filedir/aa/bb/aabbccddeeff00112233445566778899aabbccdd", random_bytes(400000, 1));
  write_file(s.src() + "/huge", random_bytes(500000, 2));
  s.publish();
  s.start_hq();
  std::string prio = s.tmp / "prio.txt";
  write_file(prio, "aabbccddeeff00112233445566778899aabbccdd\n");
  RunResult r = s.sync({"--priority-file", prio});
  // 00:00-00:01 could be open right now; then everything converges, which is fine too.
  if (r.status == 75) {
    BOOST_TEST(exists(s.dst() + "/small"));
    BOOST_TEST(exists(s.dst() + "/filedir/aa/bb/aabbccddeeff00112233445566778899aabbccdd"));
    BOOST_TEST(!exists(s.dst() + "/huge"));
    BOOST_TEST(r.err.find("big-files window") != std::string::npos, r.err);
    s.sync_ok({"--now"});
  } else {
    BOOST_TEST(r.status == 0, r.err);
  }
  s.check_converged(1);
}

BOOST_AUTO_TEST_CASE(systemd_units_verify) {
  if (::system("command -v systemd-analyze >/dev/null 2>&1") != 0) return;
  std::string svc = source_path("systemd/distd-sync.service"), timer = source_path("systemd/distd-sync.timer");
  BOOST_REQUIRE(exists(svc) && exists(timer));
  TempDir t("units");
  // systemd-analyze checks ExecStart binaries: point them at the built distctl.
  std::string s = read_file(svc);
  auto pos = s.find("/usr/bin/distctl");
  BOOST_REQUIRE(pos != std::string::npos);
  s.replace(pos, std::string("/usr/bin/distctl").size(), bin("distctl"));
  write_file(t / "distd-sync.service", s);
  write_file(t / "distd-sync.timer", read_file(timer));
  RunResult r = run({"systemd-analyze", "verify", t / "distd-sync.timer", t / "distd-sync.service"});
  BOOST_TEST(r.status == 0, r.err);
}
