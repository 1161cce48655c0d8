// publish-course hashes each new member once: while it streams out of the archive. The
// publisher's scan trusts those digests (channel.hashed_files in --json counts what the scan
// hashed: only course.json), and the hard links into the object store do not make the next
// scan hash the course again. A member changed behind distd's back is still seen.
#include <boost/test/unit_test.hpp>
#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>

#include "tests/support/course_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

nlohmann::json publish_channel(CourseSite& s) {
  RunResult r = run({bin("distctl"), "publish", "--channel", "courses", "--config", s.hq_cfg, "--json"});
  BOOST_REQUIRE_MESSAGE(r.status == 0, "distctl publish failed: " + r.err);
  return nlohmann::json::parse(r.out);
}

// Every file member of the archive is in the HQ tree with its bytes, and the signed manifest
// lists it with the same digest.
void check_tree_and_manifest(CourseSite& s, const std::string& mbz) {
  const std::string manifest = read_file(s.latest_manifest());
  for (auto& [name, type, size, digest] : list_archive(mbz)) {
    if (type != 'f') continue;
    BOOST_TEST(file_digest_hex(s.hq_tree() + "/BIO101/members/" + name) == digest, name);
    BOOST_TEST(manifest.find(digest + " " + std::to_string(size) + " ") != std::string::npos,
               name << " is not in the manifest with its digest and size");
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(new_members_are_hashed_once) {
  CourseSite s;
  std::string v1 = make_mbz(s.tmp / "v1.mbz", {"--files", "30", "--file-size", "20000"});
  std::string v2 = make_mbz(s.tmp / "v2.mbz", {"--files", "30", "--file-size", "20000", "--version", "2"});

  auto r1 = s.publish(v1);
  BOOST_TEST(r1["new"]["files"].get<int>() > 30);
  // The scan hashed course.json only (written just now); every member was hashed while unpacking.
  BOOST_TEST(r1["channel"]["hashed_files"] == 1, r1.dump());
  BOOST_TEST(r1["channel"]["hashed_bytes"].get<uint64_t>() == fs::file_size(s.hq_tree() + "/BIO101/course.json"));
  check_tree_and_manifest(s, v1);
  // Member files carry the archive's mtime (make_mbz.py: 2024), not the time of the publish.
  struct stat st {};
  BOOST_REQUIRE(::stat((s.hq_tree() + "/BIO101/members/moodle_backup.xml").c_str(), &st) == 0);
  BOOST_TEST(st.st_mtime < ::time(nullptr) - 86400);

  // The same backup again, forced: the members were hard-linked into the object store since
  // (a new ctime), and still nothing but course.json is hashed.
  RunResult again = s.publish_raw({v1, "--json", "--force"});
  BOOST_REQUIRE_MESSAGE(again.status == 0, again.err);
  auto r2 = nlohmann::json::parse(again.out);
  BOOST_TEST(r2["channel"]["changed"].get<bool>());
  BOOST_TEST(r2["channel"]["hashed_files"] == 1, r2.dump());

  // Version 2: the new member and the rewritten XML files are hashed once, while unpacking.
  auto r3 = s.publish(v2);
  BOOST_TEST(r3["new"]["files"] == 1);
  BOOST_TEST(r3["channel"]["hashed_files"] == 1, r3.dump());
  check_tree_and_manifest(s, v2);
  // A plain rescan: nothing, or course.json again when it was written within the racy window.
  auto r4 = publish_channel(s);
  const uint64_t record_size = fs::file_size(s.hq_tree() + "/BIO101/course.json");
  const uint64_t h4 = r4["hashed_bytes"].get<uint64_t>();
  BOOST_TEST((h4 == 0 || h4 == record_size), r4.dump());
}

BOOST_AUTO_TEST_CASE(member_changed_after_publish_is_rehashed) {
  CourseSite s;
  std::string v1 = make_mbz(s.tmp / "v1.mbz", {"--files", "10", "--file-size", "20000"});
  s.publish(v1);
  // Someone edits a member in place: same size, and the archive's mtime put back. Only its ctime
  // differs from what publish-course recorded, and that is enough for the scan.
  std::string victim;
  for (auto& [name, type, size, digest] : list_archive(v1))
    if (type == 'f' && name.rfind("files/", 0) == 0) victim = s.hq_tree() + "/BIO101/members/" + name;
  BOOST_REQUIRE(!victim.empty());
  struct stat st {};
  BOOST_REQUIRE(::stat(victim.c_str(), &st) == 0);
  std::string bytes = read_file(victim);
  bytes[bytes.size() / 2] ^= 0x55;
  {
    // In place (same inode), as an editor that does not replace the file would.
    int fd = ::open(victim.c_str(), O_WRONLY | O_CLOEXEC);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(::pwrite(fd, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }
  struct timespec ts[2] = {st.st_mtim, st.st_mtim};
  BOOST_REQUIRE(::utimensat(AT_FDCWD, victim.c_str(), ts, 0) == 0);

  // Hashed: the victim (and course.json, should it still be within the racy window).
  auto r = publish_channel(s);
  const uint64_t record_size = fs::file_size(s.hq_tree() + "/BIO101/course.json");
  const uint64_t h = r["hashed_bytes"].get<uint64_t>();
  BOOST_TEST((h == bytes.size() || h == bytes.size() + record_size), r.dump());
  BOOST_TEST(r["changed"].get<bool>());
  BOOST_TEST(read_file(s.latest_manifest()).find(file_digest_hex(victim)) != std::string::npos);
}
