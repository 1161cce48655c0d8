// Scanning trees: excludes, links and special files, the stat cache (including the racy case),
// and constant memory on a sparse file over 4 GiB.
#include <boost/test/unit_test.hpp>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/error.h"
#include "manifest/path.h"
#include "manifest/scan.h"
#include "tests/support/test_support.h"

using namespace distd;
using namespace distd::test;

namespace {

void set_mtime(const std::string& path, int64_t sec, long nsec = 0) {
  struct timespec ts[2] = {{static_cast<time_t>(sec), nsec}, {static_cast<time_t>(sec), nsec}};
  BOOST_REQUIRE(::utimensat(AT_FDCWD, path.c_str(), ts, 0) == 0);
}

std::vector<std::string> paths(const std::vector<Entry>& es) {
  std::vector<std::string> v;
  for (auto& e : es) v.push_back(e.path);
  return v;
}

}  // namespace

BOOST_AUTO_TEST_CASE(moodledata_preset_keeps_only_content) {
  TempDir t("scan");
  std::string root = t / "moodledata";
  for (std::string p : {"filedir/ab/cd/abcd", "filedir/warning.txt", "temp/x", "cache/y", "localcache/z",
                        "sessions/sess_1", "trashdir/ab/cd/abcd", "lock/l", "backuptempdir/b", "filedir/ab/cd/abce.tmp"})
    write_file(root + "/" + p, p);
  ScanOptions o;
  o.excludes = moodledata_excludes();
  ScanStats st;
  auto es = scan_tree(root, o, &st);
  BOOST_TEST(paths(es) == (std::vector<std::string>{"filedir/ab/cd/abcd", "filedir/warning.txt"}),
             boost::test_tools::per_element());
  BOOST_TEST(st.excluded == 8u);
  BOOST_TEST((es[0].digest == digest_bytes("filedir/ab/cd/abcd")));
  BOOST_TEST(es[0].size == 18u);
}

// A center's default staging, <path>/.distd-staging (docs/regional.md), is distd's own: a scan
// skips it (never published, never an extra file) and no manifest may name a path in it. Only
// at the top: a deeper directory of that name is content like any other.
BOOST_AUTO_TEST_CASE(the_center_staging_directory_is_skipped_and_unsafe) {
  TempDir t("scan");
  std::string root = t / "tree";
  for (std::string p : {"a.txt", ".distd-staging/0123.part", "sub/.distd-staging/b"}) write_file(root + "/" + p, p);
  ScanStats st;
  auto es = scan_tree(root, ScanOptions{}, &st);
  BOOST_TEST(paths(es) == (std::vector<std::string>{"a.txt", "sub/.distd-staging/b"}), boost::test_tools::per_element());
  BOOST_TEST(st.excluded == 1u);
  BOOST_TEST(!unsafe_path_reason(".distd-staging/0123.part").empty());
  BOOST_TEST(unsafe_path_reason("sub/.distd-staging/b").empty());
}

BOOST_AUTO_TEST_CASE(exclude_patterns_anchor_and_glob) {
  BOOST_TEST(is_excluded("a/temp/b", false, {"temp/"}));
  BOOST_TEST(!is_excluded("a/temp", false, {"temp/"}));  // a file named temp is not a directory
  BOOST_TEST(is_excluded("x/y.tmp", false, {"*.tmp"}));
  BOOST_TEST(is_excluded("filedir/jackpot/z", false, {"filedir/jackpot/"}));
  BOOST_TEST(!is_excluded("other/filedir/jackpot/z", false, {"filedir/jackpot/"}));
}

BOOST_AUTO_TEST_CASE(links_and_special_files_are_never_followed) {
  TempDir t("scan");
  std::string root = t / "tree";
  write_file(root + "/real/file", "data");
  write_file(t / "outside/secret", "secret");
  BOOST_REQUIRE(::symlink((t / "outside").c_str(), (root + "/dirlink").c_str()) == 0);
  BOOST_REQUIRE(::symlink("/etc/passwd", (root + "/filelink").c_str()) == 0);
  BOOST_REQUIRE(::mkfifo((root + "/fifo").c_str(), 0600) == 0);
  std::vector<std::string> warnings;
  ScanOptions o;
  o.warn = [&](const std::string& w) { warnings.push_back(w); };
  ScanStats st;
  auto es = scan_tree(root, o, &st);
  BOOST_TEST(paths(es) == std::vector<std::string>{"real/file"}, boost::test_tools::per_element());
  BOOST_TEST(st.skipped == 3u);
  BOOST_TEST(warnings.size() == 3u);
  o.special = SpecialFiles::refuse;
  try {
    scan_tree(root, o);
    BOOST_FAIL("special file accepted");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Errc::unsupported));
    BOOST_TEST(std::string(e.what()).find("only regular files") != std::string::npos, e.what());
  }
}

BOOST_AUTO_TEST_CASE(missing_root_says_so) {
  try {
    scan_tree("/nonexistent/distd/tree", {});
    BOOST_FAIL("no error");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Errc::not_found));
    BOOST_TEST(std::string(e.what()).find("does not exist") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(stat_cache_rescan_of_unchanged_tree_hashes_nothing) {
  TempDir t("scan");
  std::string root = t / "tree";
  int64_t old = ::time(nullptr) - 3600;
  for (int i = 0; i < 200; ++i) {
    std::string p = root + "/d" + std::to_string(i % 7) + "/f" + std::to_string(i);
    write_file(p, random_bytes(100 + i, i));
    set_mtime(p, old);
  }
  ScanOptions o;
  o.stat_cache_path = t / "cache.sqlite";
  ScanStats s1, s2, s3;
  auto e1 = scan_tree(root, o, &s1);
  BOOST_TEST(s1.hashed_files == 200u);
  auto e2 = scan_tree(root, o, &s2);
  BOOST_TEST(s2.hashed_files == 0u);
  BOOST_TEST(s2.files == 200u);
  BOOST_TEST((paths(e1) == paths(e2)));
  for (size_t i = 0; i < e1.size(); ++i) BOOST_TEST((e1[i].digest == e2[i].digest));
  // One file changes: exactly that one is hashed again.
  std::string victim = root + "/d3/f10";
  write_file(victim, "changed");
  set_mtime(victim, old);
  auto e3 = scan_tree(root, o, &s3);
  BOOST_TEST(s3.hashed_files == 1u);
  BOOST_TEST((e3[0].digest == e1[0].digest));
  bool found = false;
  for (auto& e : e3)
    if (e.path == "d3/f10") {
      found = true;
      BOOST_TEST((e.digest == digest_bytes("changed")));
    }
  BOOST_TEST(found);
}

BOOST_AUTO_TEST_CASE(racy_same_second_edit_is_detected) {
  TempDir t("scan");
  std::string root = t / "tree";
  std::string f = root + "/racy";
  write_file(f, "AAAA");
  struct stat st {};
  BOOST_REQUIRE(::stat(f.c_str(), &st) == 0);
  ScanOptions o;
  o.stat_cache_path = t / "cache.sqlite";
  ScanStats s1, s2;
  auto e1 = scan_tree(root, o, &s1);
  BOOST_TEST((e1[0].digest == digest_bytes("AAAA")));
  // Same size, and the exact same mtime as before: only the racy rule (and ctime) can tell.
  write_file(f, "BBBB");
  set_mtime(f, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  auto e2 = scan_tree(root, o, &s2);
  BOOST_TEST((e2[0].digest == digest_bytes("BBBB")));
  // An untouched file hashed in its own modification tick is not trusted either: hashed again.
  ScanStats s3;
  scan_tree(root, o, &s3);
  BOOST_TEST(s3.hashed_files == 1u);
  // Once it is old enough relative to its hashing, the cache vouches for it.
  set_mtime(f, ::time(nullptr) - 60);
  ScanStats s4, s5;
  scan_tree(root, o, &s4);
  scan_tree(root, o, &s5);
  BOOST_TEST(s4.hashed_files == 1u);
  BOOST_TEST(s5.hashed_files == 0u);
}

BOOST_AUTO_TEST_CASE(damaged_stat_cache_is_rebuilt_not_fatal) {
  TempDir t("scan");
  write_file(t / "tree/a", "a");
  write_file(t / "cache.sqlite", std::string(5000, 'x'));
  ScanOptions o;
  o.stat_cache_path = t / "cache.sqlite";
  ScanStats s;
  auto es = scan_tree(t / "tree", o, &s);
  BOOST_TEST(es.size() == 1u);
}

BOOST_AUTO_TEST_CASE(sparse_file_over_4GiB_hashes_in_constant_memory) {
  TempDir t("scan");
  std::string f = t / "tree/big.bin";
  write_file(f, "");
  const off_t size = (off_t(4) << 30) + 12345;
  {
    int fd = ::open(f.c_str(), O_WRONLY);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(::ftruncate(fd, size) == 0);
    BOOST_REQUIRE(::pwrite(fd, "tail", 4, size - 4) == 4);
    BOOST_REQUIRE(::pwrite(fd, "head", 4, 0) == 4);
    ::close(fd);
  }
  // Through the real CLI, so the child's peak RSS can be measured.
  RunResult k = run({"distctl", "keygen", "--secret", t / "k.sec", "--public", t / "k.pub"});
  BOOST_REQUIRE_EQUAL(k.status, 0);
  RunResult r = run({"distctl", "manifest", "build", t / "tree", "--channel", "big", "--version", "1", "--key",
                     t / "k.sec", "-o", t / "big.manifest", "--json", "--threads", "1"});
  BOOST_REQUIRE_MESSAGE(r.status == 0, r.err);
  struct rusage ru {};
  ::getrusage(RUSAGE_CHILDREN, &ru);
  BOOST_TEST(ru.ru_maxrss < 32 * 1024, "peak RSS " << ru.ru_maxrss << " KiB");
  BOOST_TEST(r.out.find("\"bytes\": 4294979641") != std::string::npos, r.out);
  // An independent implementation agrees: coreutils b2sum with a 256-bit digest.
  RunResult b = run({"/usr/bin/b2sum", "-l", "256", f});
  BOOST_REQUIRE_EQUAL(b.status, 0);
  RunResult show = run({"distctl", "manifest", "show", t / "big.manifest", "--json"});
  BOOST_TEST(show.out.find(b.out.substr(0, 64)) != std::string::npos, show.out << " vs " << b.out);
}
