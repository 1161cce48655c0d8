// What crosses the link: the manifest comes as a zstd patch once the center has one, small objects
// come many per request (POST /objects) and a cut batch keeps what completed, the object batch
// answer is the objects' bytes in the asked order (404 naming a missing one).
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "manifest/digest.h"
#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

uint64_t small_files(const std::string& root, int n, int seed) {
  uint64_t total = 0;
  for (int i = 0; i < n; ++i) {
    std::string data = random_bytes(1000 + (i * 37) % 9000, seed * 100000 + i);
    write_file(root + "/d" + std::to_string(i % 7) + "/f" + std::to_string(i), data);
    total += data.size();
  }
  return total;
}

}  // namespace

BOOST_AUTO_TEST_CASE(manifest_comes_as_a_small_delta_after_the_first_sync) {
  SyncSite s;
  small_files(s.src(), 2000, 1);
  s.publish();
  s.start_hq();
  FlakyLink& link = s.start_link();
  s.sync_ok();
  s.check_converged(1);
  write_file(s.src() + "/d3/f3", random_bytes(4321, 99));  // one file changes
  uint64_t v = s.publish();
  uint64_t manifest_size = fs::file_size(s.manifest_file(v));
  int64_t before = link.stats().bytes_down;
  auto r = s.sync_ok();
  s.check_converged(v);
  int64_t down = link.stats().bytes_down - before;
  BOOST_TEST_MESSAGE("manifest " << manifest_size << " B; second sync " << down << " B down");
  BOOST_TEST(r["full"].get<uint64_t>() == 1u);
  BOOST_TEST(static_cast<uint64_t>(down) < manifest_size / 5);  // the whole list would not fit
}

// sync --json bytes_received is bytes on the wire: the manifest delta (gzip) counts compressed.
// 1,500 renamed files make a large, compressible manifest delta and no object transfer.
BOOST_AUTO_TEST_CASE(bytes_received_counts_the_compressed_manifest_delta) {
  SyncSite s;
  small_files(s.src(), 1500, 3);
  s.publish();
  s.start_hq();
  FlakyLink& link = s.start_link();
  s.sync_ok();
  fs::rename(s.src() + "/d1", s.src() + "/renamed-directory-with-a-long-name-d1");
  fs::rename(s.src() + "/d2", s.src() + "/renamed-directory-with-a-long-name-d2");
  uint64_t v = s.publish();
  FlakyStats before = link.stats();
  auto r = s.sync_ok();
  s.check_converged(v);
  const int64_t down = link.stats().bytes_down - before.bytes_down;
  const auto received = r["bytes_received"].get<uint64_t>();
  BOOST_TEST_MESSAGE("second sync: " << received << " B received by --json, " << down << " B through the link");
  BOOST_TEST(r["full"].get<uint64_t>() == 0u);
  BOOST_TEST(received <= static_cast<uint64_t>(down));  // bodies only; the link also carries headers
  BOOST_TEST(received * 2 >= static_cast<uint64_t>(down));
}

// POST latest.manifest with "distd-basis <version> <digest>": the latest as a zstd frame against
// the center's copy of that version as its prefix (what `zstd -d --patch-from` decodes), a few
// hundred bytes for one changed file of 2,000; for a copy HQ does not have, the whole manifest
// as one zstd frame.
BOOST_AUTO_TEST_CASE(the_manifest_comes_as_a_zstd_patch_against_the_centers_copy) {
  SyncSite s;
  small_files(s.src(), 2000, 4);
  s.publish();
  write_file(s.src() + "/d3/f3", random_bytes(4321, 98));
  s.publish();
  s.start_hq();
  const std::string v1 = s.manifest_file(1), v2 = s.manifest_file(2);
  auto ask = [&](const std::string& body, const std::string& out) {
    write_file(s.tmp / "basis", body);
    RunResult r = run({"curl", "-s", "-f", "-D", s.tmp / "headers", "-H", s.auth_header("POST", "/channels/c/latest.manifest", body),
                       "-H", "Accept-Encoding: distd-patch, zstd", "--data-binary", "@" + (s.tmp / "basis"), "-o", out,
                       s.hq_url() + "/channels/c/latest.manifest"});
    BOOST_REQUIRE_EQUAL(r.status, 0);
    return distd::test::read_file(s.tmp / "headers");
  };
  std::string h = ask("distd-basis 1 " + file_digest_hex(v1) + "\n", s.tmp / "patch");
  BOOST_TEST(h.find("Content-Encoding: distd-patch") != std::string::npos, h);
  const uint64_t patch = fs::file_size(s.tmp / "patch");
  BOOST_TEST_MESSAGE("manifest " << fs::file_size(v2) << " B; its patch from version 1: " << patch << " B");
  BOOST_TEST(patch < 1000u);
  RunResult d = run({"zstd", "-q", "-d", "--patch-from=" + v1, s.tmp / "patch", "-o", s.tmp / "rebuilt"});
  BOOST_REQUIRE_EQUAL(d.status, 0);
  BOOST_TEST((distd::test::read_file(s.tmp / "rebuilt") == distd::test::read_file(v2)));
  // A copy that is not HQ's version 1: the whole manifest, compressed.
  h = ask("distd-basis 1 " + std::string(64, 'a') + "\n", s.tmp / "whole");
  BOOST_TEST(h.find("Content-Encoding: zstd") != std::string::npos, h);
  BOOST_TEST(fs::file_size(s.tmp / "whole") > patch * 10);
}

BOOST_AUTO_TEST_CASE(a_cut_batch_keeps_what_completed_and_converges_in_one_run) {
  SyncSite s;
  uint64_t content = small_files(s.src(), 600, 2);
  s.publish();
  s.start_hq();
  FlakyLink& link = s.start_link({.seed = 5, .cut_every = 400'000});
  auto r = s.sync_ok();
  s.check_converged(1);
  FlakyStats st = link.stats();
  BOOST_TEST_MESSAGE("content " << content << " B, through the link " << st.bytes_down << " B, " << st.cuts
                                << " cuts, " << st.connections << " connections");
  BOOST_TEST(st.cuts >= 5);
  BOOST_TEST(r["full"].get<uint64_t>() == 600u);
  // No batch starts over: the link carries the content plus a little.
  BOOST_TEST(static_cast<uint64_t>(st.bytes_down) < content + content / 20 + 50'000);
  // Far fewer requests than files.
  BOOST_TEST(st.connections < 60);
}

BOOST_AUTO_TEST_CASE(post_objects_answers_the_bytes_in_order_or_404) {
  SyncSite s;
  write_file(s.src() + "/a", "alpha");
  write_file(s.src() + "/b", "");
  write_file(s.src() + "/c", random_bytes(300'000, 3));
  s.publish();
  s.start_hq();
  auto raw = [](const std::string& bytes) {
    Digest d = digest_bytes(bytes);
    return std::string(reinterpret_cast<const char*>(d.data()), d.size());
  };
  std::string c = random_bytes(300'000, 3);
  write_file(s.tmp / "req", raw(c) + raw("") + raw("alpha"));
  auto auth = [&](const std::string& file) { return s.auth_header("POST", "/objects", distd::test::read_file(s.tmp / file)); };
  RunResult r = run({"curl", "-s", "-f", "-H", auth("req"), "--data-binary", "@" + (s.tmp / "req"), "-o", s.tmp / "out",
                     s.hq_url() + "/objects"});
  BOOST_REQUIRE_EQUAL(r.status, 0);
  BOOST_TEST((distd::test::read_file(s.tmp / "out") == c + "alpha"));
  // One digest twice is refused (4,096 times would be an answer 4,096 objects long).
  write_file(s.tmp / "dup", raw(c) + raw("alpha") + raw(c));
  r = run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", auth("dup"), "--data-binary", "@" + (s.tmp / "dup"),
           s.hq_url() + "/objects"});
  BOOST_TEST(r.out == "400");

  write_file(s.tmp / "req2", raw("alpha") + raw("not published"));
  r = run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", auth("req2"), "--data-binary", "@" + (s.tmp / "req2"),
           s.hq_url() + "/objects"});
  BOOST_TEST(r.out == "404");
  write_file(s.tmp / "req3", "short");
  r = run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", auth("req3"), "--data-binary", "@" + (s.tmp / "req3"),
           s.hq_url() + "/objects"});
  BOOST_TEST(r.out == "400");
}

// HQ lacks one object of a batch (404): the center bisects instead of asking again, batch after
// batch, for every object behind the missing one (which cost a failing POST per object and sent
// the remaining digests up each time).
BOOST_AUTO_TEST_CASE(an_object_hq_lacks_is_found_by_bisection) {
  SyncSite s;
  small_files(s.src(), 300, 4);
  s.publish();
  // The largest file is fetched last (small first): its object vanishes from HQ's store.
  std::string biggest;
  uint64_t size = 0;
  for (auto& e : fs::recursive_directory_iterator(s.src()))
    if (e.is_regular_file() && e.file_size() > size) {
      size = e.file_size();
      biggest = e.path().string();
    }
  fs::remove(s.object(file_digest_hex(biggest)));
  s.start_hq();
  FlakyLink& link = s.start_link();
  RunResult r = s.sync();
  BOOST_TEST(r.status != 0, r.out + r.err);
  auto ch = nlohmann::json::parse(r.out)["channels"][0];
  BOOST_TEST(ch["full"].get<uint64_t>() == 299u, r.out);
  BOOST_TEST(ch["failed_files"].get<uint64_t>() == 1u, r.out);
  FlakyStats st = link.stats();
  BOOST_TEST_MESSAGE("bytes up " << st.bytes_up << ", down " << st.bytes_down);
  // 300 digests are 9,600 B: a few rounds of them, not 300 (about 1.4 MB).
  BOOST_TEST(st.bytes_up < 150'000);
}
