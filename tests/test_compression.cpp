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

// HQ set to send raw batches (batch_compression_level = 0) and store no forms
// (compression_level = 0) is still understood.
BOOST_AUTO_TEST_CASE(an_hq_that_sends_raw_batches_still_serves_the_center) {
  SyncSite s;
  const uint64_t content = text_files(s.src(), 300);
  std::string cfg = distd::test::read_file(s.hq_cfg);
  cfg.insert(cfg.find("[[channel]]"), "batch_compression_level = 0\ncompression_level = 0\n\n");
  write_file(s.hq_cfg, cfg);
  s.publish();
  size_t forms = 0;
  for (const auto& e : fs::recursive_directory_iterator(s.public_dir() + "/objects")) forms += e.path().extension() == ".zst";
  BOOST_TEST(forms == 0u);
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
  std::string text = xml_text(1, 1 << 20);
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

// A large compressible object is stored at HQ with its zstd form beside it (<hex>.zst), made once
// at publish; the center fetches that form, resuming it by Range after each cut, and installs
// the decoded bytes once they match the signed digest. A photo-like (random) object gets no form.
BOOST_AUTO_TEST_CASE(a_large_object_travels_as_its_stored_zstd_form_and_resumes_after_cuts) {
  SyncSite s;
  const std::string text = xml_text(7, 2 << 20);
  write_file(s.src() + "/course/backup.xml", text);
  write_file(s.src() + "/course/photo.jpg", random_bytes(300'000, 8));
  RunResult pub = run({"distctl", "publish", "--channel", s.channel, "--config", s.hq_cfg, "--json"}, {}, {}, 300);
  BOOST_REQUIRE_EQUAL(pub.status, 0);
  auto pj = nlohmann::json::parse(pub.out);
  BOOST_TEST(pj["objects"]["zstd_forms"].get<uint64_t>() == 1u);
  const std::string obj = s.object(digest_hex(digest_bytes(text)));
  BOOST_REQUIRE(fs::exists(obj + ".zst"));
  const uint64_t zsize = fs::file_size(obj + ".zst");
  BOOST_TEST(pj["objects"]["zstd_form_bytes"].get<uint64_t>() == zsize);
  BOOST_TEST(zsize < text.size() / 3);
  BOOST_TEST(!fs::exists(s.object(digest_hex(digest_bytes(random_bytes(300'000, 8)))) + ".zst"));
  s.start_hq();
  FlakyLink& link = s.start_link({.seed = 3, .cut_every = static_cast<int64_t>(zsize / 4)});
  auto r = s.sync_ok();
  s.check_converged(1);
  FlakyStats st = link.stats();
  BOOST_TEST_MESSAGE("object " << text.size() << " B, stored form " << zsize << " B; through the link "
                               << st.bytes_down << " B, " << st.cuts << " cuts");
  BOOST_TEST(st.cuts >= 2);
  BOOST_TEST(r["full"].get<uint64_t>() == 2u);
  // The form once, plus the photo, manifest and headers: no restart from byte 0 after a cut.
  BOOST_TEST(static_cast<uint64_t>(st.bytes_down) < zsize + 300'000 + 150'000);
}

// A damaged stored form (HQ's disk, a proxy) is caught by the signed digest of what it decodes
// to: the center counts it rejected, fetches the object itself and converges in the same run.
BOOST_AUTO_TEST_CASE(a_damaged_stored_form_is_rejected_and_the_object_fetched_whole) {
  SyncSite s;
  const std::string text = xml_text(9, 2 << 20);  // over 1 MiB: fetched alone, not in a batch
  write_file(s.src() + "/big.xml", text);
  s.publish();
  const std::string form = s.object(digest_hex(digest_bytes(text))) + ".zst";
  BOOST_REQUIRE(fs::exists(form));
  // Another valid zstd stream of other bytes, of the same size class: decodes, but wrongly.
  std::string other = text;
  other[1000] = 'X';
  fs::permissions(form, fs::perms::owner_write, fs::perm_options::add);
  write_file(form, zstd_compress(other, 3));
  s.start_hq();
  auto r = s.sync_ok();
  s.check_converged(1);
  BOOST_TEST(r["rejected"].get<uint64_t>() >= 1u);
  BOOST_TEST(distd::test::read_file(s.dst() + "/big.xml") == text);
}

// Retention removes a stored form with its object.
BOOST_AUTO_TEST_CASE(retention_removes_the_stored_form_with_its_object) {
  SyncSite s;
  std::string cfg = distd::test::read_file(s.hq_cfg);
  cfg.insert(cfg.find("[[channel]]"), "keep_versions = 1\n\n");
  write_file(s.hq_cfg, cfg);
  const std::string text = xml_text(11, 256 << 10);
  write_file(s.src() + "/big.xml", text);
  s.publish();
  const std::string obj = s.object(digest_hex(digest_bytes(text)));
  BOOST_REQUIRE(fs::exists(obj + ".zst"));
  fs::remove(s.src() + "/big.xml");
  write_file(s.src() + "/other", "x");
  s.publish();
  BOOST_TEST(!fs::exists(obj));
  BOOST_TEST(!fs::exists(obj + ".zst"));
}

namespace {

// text with `edits` lines changed, spread evenly.
std::string edited(std::string text, int edits) {
  for (int k = 1; k <= edits; ++k) {
    size_t at = text.find('\n', text.size() * k / (edits + 1));
    text.insert(at + 1, "  <edited n=\"" + std::to_string(k) + "\">changed by a teacher</edited>\n");
  }
  return text;
}

size_t files_in(const std::string& dir) {
  size_t n = 0;
  if (fs::exists(dir))
    for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

}  // namespace

// A delta HQ computes is stored with its zstd form (<id>.zst); the center fetches that form,
// decodes it (at most the delta size cap) and patches. What crosses the link is the compressed
// delta, far less than the raw delta.
BOOST_AUTO_TEST_CASE(a_delta_travels_as_its_stored_zstd_form) {
  SyncSite s;
  const std::string v1 = xml_text(21, 1 << 20);
  write_file(s.src() + "/course.xml", v1);
  s.publish();
  s.start_hq();
  FlakyLink& link = s.start_link();
  s.sync_ok();
  const std::string v2 = edited(v1, 40);
  write_file(s.src() + "/course.xml", v2);
  uint64_t v = s.publish();
  const int64_t before = link.stats().bytes_down;
  auto r = s.sync_ok();
  s.check_converged(v);
  const int64_t down = link.stats().bytes_down - before;
  uint64_t raw = 0, zst = 0;
  for (const auto& e : fs::directory_iterator(s.public_dir() + "/deltas"))
    (e.path().extension() == ".zst" ? zst : raw) += fs::file_size(e.path());
  BOOST_TEST_MESSAGE("delta " << raw << " B, its stored form " << zst << " B; second sync " << down << " B down");
  BOOST_TEST(r["delta"].get<uint64_t>() == 1u);
  BOOST_REQUIRE(zst > 0u);
  BOOST_TEST(zst * 2 < raw);
  BOOST_TEST(static_cast<uint64_t>(down) < raw);  // the form and the manifest delta, not the raw delta
  BOOST_TEST(distd::test::read_file(s.dst() + "/course.xml") == v2);
}

// A delta that would not be clearly smaller than the object (or its stored form: what a whole
// download costs) is declined by HQ: nothing is stored, and the center fetches the object.
BOOST_AUTO_TEST_CASE(a_delta_that_cannot_pay_is_declined_and_not_stored) {
  SyncSite s;
  const std::string v1 = xml_text(23, 1 << 20);
  write_file(s.src() + "/all.xml", v1);
  s.publish();
  s.start_hq();
  s.sync_ok();
  const std::string v2 = edited(v1, 400);  // a change every 2.6 KB: every librsync block differs
  write_file(s.src() + "/all.xml", v2);
  uint64_t v = s.publish();
  auto r = s.sync_ok();
  s.check_converged(v);
  BOOST_TEST(r["delta"].get<uint64_t>() == 0u);
  BOOST_TEST(r["full"].get<uint64_t>() == 1u);
  BOOST_TEST(r["delta_fallbacks"].get<uint64_t>() == 1u);
  BOOST_TEST(files_in(s.public_dir() + "/deltas") == 0u);
  BOOST_TEST(distd::test::read_file(s.dst() + "/all.xml") == v2);
}

// The first sync of a channel GETs the whole manifest; it comes as zstd (HQ compresses each
// version once): 3,000 entry lines of 64-hex digests and paths shrink by more than half.
BOOST_AUTO_TEST_CASE(the_first_manifest_comes_compressed) {
  SyncSite s;
  for (int i = 0; i < 3000; ++i) write_file(s.src() + "/filedir/" + std::to_string(i % 40) + "/f" + std::to_string(i), "same");
  s.publish();
  s.start_hq();
  FlakyLink& link = s.start_link();
  auto r = s.sync_ok();
  s.check_converged(1);
  const uint64_t manifest = fs::file_size(s.manifest_file(1));
  const auto down = static_cast<uint64_t>(link.stats().bytes_down);
  BOOST_TEST_MESSAGE("manifest " << manifest << " B; first sync " << down << " B down");
  BOOST_TEST(down < manifest / 2);
}

// A course update interleaves, by size, changed files that go as deltas and new small files that
// go whole: the small ones share one batch around the deltas (one zstd stream), and each file is
// fetched once (a batch that installed files ahead of their turn made the download loop fetch
// them again, counting them twice).
BOOST_AUTO_TEST_CASE(small_files_around_deltas_share_one_batch_and_come_once) {
  SyncSite s;
  for (int i = 0; i < 20; ++i) write_file(s.src() + "/xml/d" + std::to_string(i), xml_text(100 + i, 20'000 + i * 2'000));
  s.publish();
  s.start_hq();
  FlakyLink& link = s.start_link();
  s.sync_ok();
  for (int i = 0; i < 20; ++i)
    write_file(s.src() + "/xml/d" + std::to_string(i), edited(xml_text(100 + i, 20'000 + i * 2'000), 1));
  for (int i = 0; i < 50; ++i) write_file(s.src() + "/new/n" + std::to_string(i), xml_text(200 + i, 18'000 + i * 1'000));
  uint64_t v = s.publish();
  const int before = link.stats().connections;
  auto batches = [&] {  // HQ's access log: one line per request
    const std::string log = s.hqd->log();
    size_t n = 0;
    for (size_t at = log.find("\"POST /objects\" 200"); at != std::string::npos; at = log.find("\"POST /objects\" 200", at + 1)) ++n;
    return n;
  };
  const size_t batches_before = batches();
  auto r = s.sync_ok();
  s.check_converged(v);
  BOOST_TEST(batches() - batches_before == 1u);  // the 50 new files in one batch around the 20 deltas
  BOOST_TEST(r["full"].get<uint64_t>() + r["delta"].get<uint64_t>() == 70u);
  BOOST_TEST(r["delta"].get<uint64_t>() + r["delta_fallbacks"].get<uint64_t>() == 20u);
  BOOST_TEST_MESSAGE("second sync: " << r["full"] << " whole, " << r["delta"] << " by delta, "
                                     << link.stats().connections - before << " connections");
}
