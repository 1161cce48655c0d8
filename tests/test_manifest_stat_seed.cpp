// Seeding the stat cache from outside the scan (stat_record_of + StatCache::update), as code
// that wrote a file and knows its digest does: the next scan trusts a seeded row exactly when it
// would trust its own, and still notices any later change to the file.
#include <boost/test/unit_test.hpp>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

#include "manifest/scan.h"
#include "manifest/stat_cache.h"
#include "tests/support/test_support.h"

using namespace distd;
using namespace distd::test;

namespace {

void set_mtime(const std::string& path, int64_t sec) {
  struct timespec ts[2] = {{static_cast<time_t>(sec), 0}, {static_cast<time_t>(sec), 0}};
  BOOST_REQUIRE(::utimensat(AT_FDCWD, path.c_str(), ts, 0) == 0);
}

int64_t now_ns() { return static_cast<int64_t>(::time(nullptr)) * 1'000'000'000; }

StatRecord seed_of(const std::string& path, const Digest& d) {
  struct stat st {};
  BOOST_REQUIRE(::lstat(path.c_str(), &st) == 0);
  StatRecord r = stat_record_of(st);
  r.digest = d;
  r.hashed_at_ns = now_ns();
  return r;
}

void seed(const std::string& cache, const std::string& root, const std::string& rel, const StatRecord& r) {
  StatCache c(cache, root);
  c.update({{&rel, &r}}, {});
}

}  // namespace

BOOST_AUTO_TEST_CASE(stat_record_of_matches_what_the_scan_records) {
  TempDir t("seed");
  std::string root = t / "tree";
  write_file(root + "/a/one", random_bytes(5000, 1));
  write_file(root + "/two", random_bytes(70, 2));
  ScanOptions o;
  o.stat_cache_path = t / "cache.sqlite";
  scan_tree(root, o);
  size_t rows = 0;
  StatCache(o.stat_cache_path, root).for_each_sorted([&](std::string_view rel, const StatRecord& cached) {
    ++rows;
    struct stat st {};
    BOOST_REQUIRE(::lstat((root + "/" + std::string(rel)).c_str(), &st) == 0);
    StatRecord mine = stat_record_of(st);
    BOOST_TEST(mine.same_stat(cached), rel);
    BOOST_TEST(mine.size == static_cast<uint64_t>(st.st_size));
    BOOST_TEST(mine.ino == st.st_ino);
    BOOST_TEST(mine.mtime_ns == int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec);
    BOOST_TEST(mine.ctime_ns == int64_t(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec);
    BOOST_TEST(mine.hashed_at_ns == 0);
  });
  BOOST_TEST(rows == 2u);
}

BOOST_AUTO_TEST_CASE(seeded_rows_are_trusted_and_changes_still_seen) {
  TempDir t("seed");
  std::string root = t / "tree";
  std::string cache = t / "cache.sqlite";
  std::string f = root + "/members/files/ab/abcdef";
  const std::string v1 = random_bytes(4096, 7);
  write_file(f, v1);
  const int64_t old = ::time(nullptr) - 3600;
  set_mtime(f, old);
  seed(cache, root, "members/files/ab/abcdef", seed_of(f, digest_bytes(v1)));

  ScanOptions o;
  o.stat_cache_path = cache;
  ScanStats s1;
  auto e1 = scan_tree(root, o, &s1);
  BOOST_TEST(s1.hashed_files == 0u);  // the seed vouches for it
  BOOST_REQUIRE(e1.size() == 1u);
  BOOST_TEST((e1[0].digest == digest_bytes(v1)));

  // Same size, mtime put back: only ctime tells, and it is enough.
  const std::string v2 = random_bytes(4096, 8);
  write_file(f, v2);
  set_mtime(f, old);
  ScanStats s2;
  auto e2 = scan_tree(root, o, &s2);
  BOOST_TEST(s2.hashed_files == 1u);
  BOOST_TEST((e2[0].digest == digest_bytes(v2)));

  // A touch alone (new mtime and ctime): hashed again, same digest.
  seed(cache, root, "members/files/ab/abcdef", seed_of(f, digest_bytes(v2)));
  set_mtime(f, old + 1);
  ScanStats s3;
  auto e3 = scan_tree(root, o, &s3);
  BOOST_TEST(s3.hashed_files == 1u);
  BOOST_TEST((e3[0].digest == digest_bytes(v2)));
}

BOOST_AUTO_TEST_CASE(seed_of_a_file_modified_just_now_is_not_trusted) {
  TempDir t("seed");
  std::string root = t / "tree";
  std::string cache = t / "cache.sqlite";
  std::string f = root + "/fresh";
  write_file(f, "fresh bytes");
  // Even a wrong digest in the seed is harmless here: mtime is within kRacyWindowNs of hashed_at.
  seed(cache, root, "fresh", seed_of(f, digest_bytes("something else")));
  ScanOptions o;
  o.stat_cache_path = cache;
  ScanStats s;
  auto e = scan_tree(root, o, &s);
  BOOST_TEST(s.hashed_files == 1u);
  BOOST_TEST((e[0].digest == digest_bytes("fresh bytes")));
}
