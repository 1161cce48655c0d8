// Sticks as lean as the link (docs/formats/compression.md, formats/bundle.md): an object HQ keeps
// a zstd form of travels as that form (a zobject item), is decoded at the center (window capped)
// and installed only when it decodes to the signed object; a form that decodes to other bytes
// is refused and installs nothing. Small objects share one zstd stream (a zpack item), and each
// of them is checked on its own.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "distd/bundle/manifest_delta.h"
#include "distd/delta/rsync.h"
#include "distd/hq/delta_service.h"
#include "distd/io/zstd_stream.h"
#include "manifest/digest.h"
#include "manifest/error.h"
#include "tests/support/bundle_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

std::string text(int i, size_t size) {
  std::string s;
  uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(i + 1);
  while (s.size() < size) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    s += "<file id=\"" + std::to_string(x % 5000) + "\"><contenthash>" + std::to_string(x % 99991) +
         "</contenthash><component>mod_forum</component></file>\n";
  }
  s.resize(size);
  return s;
}

// Words drawn at random: text that compresses about 3:1 but not across files by much.
std::string random_text(size_t size, int seed) {
  static const char* words[] = {"forum", "post", "course", "<p>", "</p>", "student", "teacher", "quiz", "grade",
                                "the", "of", "and", "module", "section", "file", "reply", "\n"};
  std::string s;
  uint64_t x = 0x2545F4914F6CDD1Dull * static_cast<uint64_t>(seed + 7);
  while (s.size() < size) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    s += words[x % (sizeof words / sizeof *words)];
    s += ' ';
  }
  s.resize(size);
  return s;
}

uint64_t dir_bytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(compressible_objects_travel_as_their_stored_form_on_a_stick) {
  BundleSite s;
  uint64_t content = 0;
  for (int i = 0; i < 4; ++i) {
    std::string t = text(i, 530'000 + i * 3000);  // over kPackObjectMax: each goes alone
    write_file(s.src() + "/backup/f" + std::to_string(i) + ".xml", t);
    content += t.size();
  }
  write_file(s.src() + "/photo.jpg", random_bytes(50'000, 3));  // no form: goes as it is
  BOOST_REQUIRE_EQUAL(s.publish(), 1u);
  auto e = s.round();
  BOOST_TEST(e["zstd_objects"].get<uint64_t>() == 4u);
  BOOST_TEST(e["zstd_object_content_bytes"].get<uint64_t>() == content);
  BOOST_TEST(e["objects"].get<uint64_t>() == 5u);
  const uint64_t stick = dir_bytes(s.stick);
  BOOST_TEST_MESSAGE("content " << content + 50'000 << " B; stick " << stick << " B");
  BOOST_TEST(stick < content / 3 + 50'000 + 60'000);
  BOOST_TEST(read_file(s.index()).find("\nzobject ") != std::string::npos);
  RunResult i = s.import_();
  BOOST_TEST_INFO(i.err);
  BOOST_REQUIRE_EQUAL(i.status, 0);
  s.check_converged(1);
}

// 300 small XML files of a course backup: one stream compresses them like one file, where each
// alone (its own zstd frame, tar member and index lines) costs several times that.
BOOST_AUTO_TEST_CASE(small_objects_share_one_zstd_stream_on_a_stick) {
  BundleSite s;
  std::string all;
  for (int i = 0; i < 300; ++i) {
    std::string t = text(i % 40, 600 + (i * 37) % 6000);
    t.insert(0, "<activity id=\"" + std::to_string(i) + "\">\n");
    write_file(s.src() + "/backup/activities/a" + std::to_string(i) + "/module.xml", t);
    all += t;
  }
  BOOST_REQUIRE_EQUAL(s.publish(), 1u);
  auto e = s.round();
  BOOST_TEST(e["packs"].get<uint64_t>() == 1u);
  BOOST_TEST(e["packed_objects"].get<uint64_t>() == 300u);
  BOOST_TEST(e["packed_content_bytes"].get<uint64_t>() == all.size());
  BOOST_TEST(e["objects"].get<uint64_t>() == 300u);
  const std::string idx = read_file(s.index());
  BOOST_TEST(idx.find("\nzpack 300 ") != std::string::npos);
  const uint64_t pack = find_member(read_file(s.vol(1)), "p/").size;
  const uint64_t one = zstd_compress(all, 19).size();
  BOOST_TEST_MESSAGE("content " << all.size() << " B, zstd -19 of it as one file " << one << " B; the pack "
                                << pack << " B (index " << fs::file_size(s.index()) << " B)");
  // The stream is within 10% of one file's (the index lists each object in about 80 bytes).
  BOOST_TEST(pack < one * 11 / 10);
  RunResult i = s.import_();
  BOOST_TEST_INFO(i.err);
  BOOST_REQUIRE_EQUAL(i.status, 0);
  s.check_converged(1);
}

// On small volumes a pack holds at most a quarter of one, so none is split across volumes (a stick
// pulled during the export loses at most the pack being written).
BOOST_AUTO_TEST_CASE(packs_fit_a_volume_whole) {
  BundleSite s;
  for (int i = 0; i < 200; ++i)
    write_file(s.src() + "/x/" + std::to_string(i) + ".xml", random_text(3000, i));
  BOOST_REQUIRE_EQUAL(s.publish(), 1u);
  auto e = s.round({"--volume-size", "64k"});
  BOOST_TEST(e["packs"].get<uint64_t>() >= 2u);
  BOOST_TEST(e["packed_objects"].get<uint64_t>() == 200u);
  const std::string idx = read_file(s.index());
  BOOST_TEST(idx.find("\nzpack ") != std::string::npos);
  for (size_t at = idx.find("\npiece "); at != std::string::npos; at = idx.find("\npiece ", at + 1)) {
    const std::string line = idx.substr(at + 1, idx.find('\n', at + 1) - at - 1);
    if (line.find(" p/") != std::string::npos) BOOST_TEST(line.find(".1") == std::string::npos, line);
  }
  RunResult i = s.import_();
  BOOST_TEST_INFO(i.err);
  BOOST_REQUIRE_EQUAL(i.status, 0);
  s.check_converged(1);
}

// A packed object whose bytes at HQ are not the signed ones (a damaged store) is refused on its
// own: the others of its pack are installed, and it is reported missing.
BOOST_AUTO_TEST_CASE(a_packed_object_that_decodes_to_other_bytes_is_refused_alone) {
  BundleSite s;
  std::vector<std::string> texts;
  for (int i = 0; i < 5; ++i) {
    texts.push_back(text(i, 2000 + i * 100));
    write_file(s.src() + "/m" + std::to_string(i) + ".xml", texts.back());
  }
  BOOST_REQUIRE_EQUAL(s.publish(), 1u);
  const std::string hex = digest_hex(digest_bytes(texts[2]));
  const std::string obj = s.hq_state + "/public/objects/" + hex.substr(0, 2) + "/" + hex;
  std::string other = texts[2];
  other[10] = '#';
  fs::permissions(obj, fs::perms::owner_write, fs::perm_options::add);
  write_file(obj, other);
  auto e = s.round();
  BOOST_REQUIRE_EQUAL(e["packs"].get<uint64_t>(), 1u);
  RunResult i = s.import_();
  BOOST_TEST(i.status != 0);
  BOOST_TEST(i.err.find("does not decode to its signed bytes") != std::string::npos, i.err);
  for (int k = 0; k < 5; ++k)
    BOOST_TEST(fs::exists(s.dst() + "/m" + std::to_string(k) + ".xml") == (k != 2), k);
  BOOST_TEST(read_file(s.dst() + "/m4.xml") == texts[4]);
}

BOOST_AUTO_TEST_CASE(a_form_that_decodes_to_other_bytes_is_refused_and_installs_nothing) {
  BundleSite s;
  const std::string good = text(7, 40'000);
  write_file(s.src() + "/a.xml", good);
  BOOST_REQUIRE_EQUAL(s.publish(), 1u);
  // HQ's stored form replaced by a valid zstd stream of other bytes (a damaged disk, a bug): the
  // index signs what is on the stick, so only the decoded digest can catch it.
  const std::string hex = digest_hex(digest_bytes(good));
  const std::string form = s.hq_state + "/public/objects/" + hex.substr(0, 2) + "/" + hex + ".zst";
  BOOST_REQUIRE(fs::exists(form));
  std::string other = good;
  other[100] = '#';
  fs::permissions(form, fs::perms::owner_write, fs::perm_options::add);
  write_file(form, zstd_compress(other, 3));
  s.round();
  RunResult i = s.import_();
  BOOST_TEST(i.status != 0);
  BOOST_TEST(i.err.find("does not decode to its signed object") != std::string::npos, i.err);
  BOOST_TEST(!fs::exists(s.dst() + "/a.xml"));
}

// The manifest goes as a delta against the version the site's request says it holds (and each
// later version against the one before it): a few new lines instead of the whole list.
BOOST_AUTO_TEST_CASE(manifests_travel_as_deltas_from_the_version_the_center_holds) {
  BundleSite s;
  for (int i = 0; i < 3000; ++i)
    write_file(s.src() + "/filedir/" + std::to_string(i % 50) + "/f" + std::to_string(i), random_bytes(100, i));
  BOOST_REQUIRE_EQUAL(s.publish(), 1u);
  s.round();
  BOOST_REQUIRE_EQUAL(s.import_().status, 0);
  s.check_converged(1);
  write_file(s.src() + "/filedir/new-in-2", "two");
  BOOST_REQUIRE_EQUAL(s.publish(), 2u);
  write_file(s.src() + "/filedir/new-in-3", "three");
  fs::remove(s.src() + "/filedir/7/f7");
  BOOST_REQUIRE_EQUAL(s.publish(), 3u);
  auto e = s.round();
  BOOST_TEST(e["manifests"].get<uint64_t>() == 2u);
  BOOST_TEST(e["manifest_deltas"].get<uint64_t>() == 2u);
  const std::string idx = read_file(s.index());
  BOOST_TEST(idx.find("\nmpatch c 2 ") != std::string::npos);
  BOOST_TEST(idx.find("\nmpatch c 3 ") != std::string::npos);
  const uint64_t manifest_size = fs::file_size(s.hq_state + "/public/channels/c/manifests/3.manifest");
  uint64_t stick = fs::file_size(s.index());  // the bundle: its index and volume (not the request)
  for (const auto& f : fs::directory_iterator(s.stick))
    if (f.path().filename().string().rfind("distd-bundle-", 0) == 0) stick += f.file_size();
  BOOST_TEST_MESSAGE("manifest " << manifest_size << " B; bundle for two versions " << stick << " B");
  BOOST_TEST(stick < manifest_size / 4);
  RunResult i = s.import_();
  BOOST_TEST_INFO(i.err);
  BOOST_REQUIRE_EQUAL(i.status, 0);
  s.check_converged(3);
}

// A center that does not hold the version a manifest delta starts from (here: its installed
// manifest file is not the one the bundle's delta was made against) refuses the channel with
// the reason, and installs nothing of it.
BOOST_AUTO_TEST_CASE(a_manifest_delta_that_does_not_rebuild_the_signed_file_is_refused) {
  BundleSite s;
  for (int i = 0; i < 500; ++i) write_file(s.src() + "/f" + std::to_string(i), random_bytes(100, i));
  BOOST_REQUIRE_EQUAL(s.publish(), 1u);
  s.round();
  BOOST_REQUIRE_EQUAL(s.import_().status, 0);
  write_file(s.src() + "/new", "x");
  BOOST_REQUIRE_EQUAL(s.publish(), 2u);
  s.round();
  // The stick itself is signed piece by piece; what can differ is the basis: the center's
  // installed manifest file, altered here (a byte of an entry's digest).
  std::string inst = s.reg_state + "/manifests/c/installed.manifest";
  BOOST_REQUIRE(fs::exists(inst));
  std::string bytes = read_file(inst);
  size_t at = bytes.find('\n', bytes.size() / 2) + 1;  // the digest of an entry the delta copies
  bytes[at] = bytes[at] == 'a' ? 'b' : 'a';
  write_file(inst, bytes);
  RunResult i = s.import_();
  BOOST_TEST(i.status != 0);
  BOOST_TEST(i.err.find("does not rebuild the signed manifest") != std::string::npos, i.err);
  BOOST_TEST(!fs::exists(s.dst() + "/new"));
}

// A delta HQ keeps a zstd form of travels on the stick as that form (a zdelta item).
BOOST_AUTO_TEST_CASE(a_delta_travels_on_a_stick_as_its_stored_form) {
  BundleSite s;
  const std::string v1 = text(3, 2 << 20);
  write_file(s.src() + "/backup.xml", v1);
  BOOST_REQUIRE_EQUAL(s.publish(), 1u);
  s.round();
  BOOST_REQUIRE_EQUAL(s.import_().status, 0);
  std::string v2 = v1;
  for (int k = 1; k <= 5; ++k) v2.insert(v2.size() * k / 6, "<changed by=\"teacher\"/>\n");
  write_file(s.src() + "/backup.xml", v2);
  BOOST_REQUIRE_EQUAL(s.publish(), 2u);
  auto e = s.round();
  BOOST_TEST(e["deltas"].get<uint64_t>() == 1u);
  BOOST_TEST(read_file(s.index()).find("\nzdelta ") != std::string::npos);
  BOOST_TEST_MESSAGE("delta on the stick: " << e["delta_bytes"] << " B for a " << v2.size() << "-byte file");
  RunResult i = s.import_();
  BOOST_TEST_INFO(i.err);
  BOOST_REQUIRE_EQUAL(i.status, 0);
  s.check_converged(2);
}

// A manifest patch (mpatch) is a zstd frame against the basis file: a few changed lines of a
// 3,000-line manifest cost about what they hold. The mdelta items older HQs wrote (zstd of a
// librsync delta) still apply; a patch against another basis is refused.
BOOST_AUTO_TEST_CASE(manifest_patches_and_older_manifest_deltas_rebuild_the_file) {
  std::string basis, target;
  for (int i = 0; i < 3000; ++i) {
    const std::string line = "f " + std::to_string(i) + " " + digest_hex(digest_bytes(std::to_string(i))) + " 100\n";
    basis += line;
    target += i % 300 == 7 ? "f " + std::to_string(i) + " " + digest_hex(digest_bytes("new" + std::to_string(i))) + " 101\n"
                           : line;
  }
  const auto patch = distd::bundle::manifest_delta_bytes(basis, target);
  BOOST_REQUIRE(patch.has_value());
  BOOST_TEST_MESSAGE("manifest " << target.size() << " B; its patch for 10 changed lines " << patch->size() << " B");
  BOOST_TEST(patch->size() < 1000u);
  BOOST_TEST(distd::bundle::apply_manifest_delta(basis, *patch, true, target.size(), "patch") == target);
  const std::string old = zstd_compress(hq::delta_of_bytes(signature_of_bytes(basis), target), 19);
  BOOST_TEST(distd::bundle::apply_manifest_delta(basis, old, false, target.size(), "mdelta") == target);
  std::string other = basis;
  other[40] = other[40] == 'a' ? 'b' : 'a';
  std::string got;
  try {
    got = distd::bundle::apply_manifest_delta(other, *patch, true, target.size(), "patch");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == Errc::mismatch));
  }
  BOOST_TEST(got != target);  // refused, or other bytes (which the importer's digest check refuses)
}
