// What crosses the link compressed (docs/formats/compression.md): a batch of small text objects
// goes as one zstd stream (one context for all), sync --json counts it as it crossed the link,
// a cut stream keeps what completed, and the center's decoder refuses a window over 8 MiB.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "distd/io/zstd_stream.h"
#include "manifest/error.h"
#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

// Moodle-backup-like XML: small files of one vocabulary, each different.
std::string xml_text(int i, size_t size) {
  static const char* words[] = {"activity", "section", "course", "forum", "grade", "user", "module", "files",
                                "inforef", "questions", "calendar", "roles", "filters", "comments"};
  std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<activity id=\"" + std::to_string(i) + "\">\n";
  uint64_t x = 88172645463325252ull + static_cast<uint64_t>(i);
  while (s.size() < size) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    const char* w = words[x % 14];
    s += "  <" + std::string(w) + " id=\"" + std::to_string(x % 100000) + "\">" + std::to_string(x % 977) + "</" + w +
         ">\n";
  }
  s.resize(size);
  return s;
}

uint64_t text_files(const std::string& root, int n) {
  uint64_t total = 0;
  for (int i = 0; i < n; ++i) {
    std::string data = xml_text(i, 600 + (i * 53) % 6000);
    write_file(root + "/activities/a" + std::to_string(i) + "/module.xml", data);
    total += data.size();
  }
  return total;
}

}  // namespace

BOOST_AUTO_TEST_CASE(small_text_objects_cross_the_link_as_one_zstd_stream) {
  SyncSite s;
  const uint64_t content = text_files(s.src(), 800);
  s.publish();
  s.start_hq();
  FlakyLink& link = s.start_link();
  auto r = s.sync_ok();
  s.check_converged(1);
  const auto down = static_cast<uint64_t>(link.stats().bytes_down);
  const auto received = r["bytes_received"].get<uint64_t>();
  BOOST_TEST_MESSAGE("content " << content << " B; through the link " << down << " B; --json bytes_received "
                                << received << ", content_bytes " << r["content_bytes"]);
  BOOST_TEST(r["full"].get<uint64_t>() == 800u);
  BOOST_TEST(r["content_bytes"].get<uint64_t>() == content);
  // Raw, the objects alone are `content`; compressed together they are a small part of it (the
  // manifest, 800 lines of 64-hex digests, is most of what remains).
  BOOST_TEST(down < content / 4);
  BOOST_TEST(received <= down);
  BOOST_TEST(received * 10 >= down * 8);  // bodies only: the link also carries headers
}

BOOST_AUTO_TEST_CASE(a_cut_zstd_batch_keeps_what_completed_and_converges_in_one_run) {
  SyncSite s;
  text_files(s.src(), 1500);
  s.publish();
  s.start_hq();
  FlakyLink& link = s.start_link({.seed = 7, .cut_every = 200'000});
  auto r = s.sync_ok();
  s.check_converged(1);
  FlakyStats st = link.stats();
  BOOST_TEST_MESSAGE("through the link " << st.bytes_down << " B, " << st.cuts << " cuts, " << st.connections
                                          << " connections");
  BOOST_TEST(st.cuts >= 2);
  BOOST_TEST(r["full"].get<uint64_t>() == 1500u);
}

// HQ set to send raw batches (batch_compression_level = 0) is still understood.
BOOST_AUTO_TEST_CASE(an_hq_that_sends_raw_batches_still_serves_the_center) {
  SyncSite s;
  const uint64_t content = text_files(s.src(), 300);
  std::string cfg = distd::test::read_file(s.hq_cfg);
  cfg.insert(cfg.find("[[channel]]"), "batch_compression_level = 0\n\n");
  write_file(s.hq_cfg, cfg);
  s.publish();
  s.start_hq();
  FlakyLink& link = s.start_link();
  auto r = s.sync_ok();
  s.check_converged(1);
  BOOST_TEST(static_cast<uint64_t>(link.stats().bytes_down) > content);
  BOOST_TEST(r["full"].get<uint64_t>() == 300u);
}

BOOST_AUTO_TEST_CASE(the_decoder_refuses_a_window_over_8_mib_and_damaged_streams) {
  TempDir tmp("zstd");
  // 24 MiB whose repeats are 12 MiB apart: only a window over 8 MiB finds them.
  std::string half = random_bytes(12 << 20, 5);
  write_file(tmp / "big", half + half);
  RunResult z = run({"zstd", "-q", "-3", "--long=25", "-o", tmp / "big.zst", tmp / "big"});
  BOOST_REQUIRE_EQUAL(z.status, 0);
  std::string wide = distd::test::read_file(tmp / "big.zst");
  try {
    zstd_decompress(wide, 32 << 20, "the test stream");
    BOOST_FAIL("a 32 MiB window was accepted");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Errc::mismatch));
    BOOST_TEST(std::string(e.what()).find("window over 8 MiB") != std::string::npos, e.what());
  }
  // What HQ makes decodes within the cap.
  std::string text = xml_text(1, 3 << 20);
  std::string ours = zstd_compress(text, kZstdDefaultLevel);
  BOOST_TEST(ours.size() < text.size() / 4);
  BOOST_TEST((zstd_decompress(ours, text.size(), "ours") == text));
  // Cut, flipped or not zstd at all: a mismatch, never a crash or a short success.
  BOOST_CHECK_THROW(zstd_decompress(ours.substr(0, ours.size() / 2), text.size(), "cut"), Error);
  std::string flipped = ours;
  flipped[flipped.size() / 2] ^= 0x55;
  try {
    BOOST_TEST((zstd_decompress(flipped, text.size(), "flipped") != text));
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Errc::mismatch));
  }
  BOOST_CHECK_THROW(zstd_decompress("plain text", 100, "plain"), Error);
  BOOST_CHECK_THROW(zstd_decompress(ours, text.size() - 1, "too long"), Error);
}
