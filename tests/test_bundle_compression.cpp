// Sticks as lean as the link (docs/formats/compression.md, formats/bundle.md): an object HQ keeps
// a zstd form of travels as that form (a zobject item), is decoded at the center (window capped)
// and installed only when it decodes to the signed object; a form that decodes to other bytes
// is refused and installs nothing.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "distd/io/zstd_stream.h"
#include "manifest/digest.h"
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
  for (int i = 0; i < 20; ++i) {
    std::string t = text(i, 8000 + i * 3000);
    write_file(s.src() + "/backup/f" + std::to_string(i) + ".xml", t);
    content += t.size();
  }
  write_file(s.src() + "/photo.jpg", random_bytes(50'000, 3));  // no form: goes as it is
  BOOST_REQUIRE_EQUAL(s.publish(), 1u);
  auto e = s.round();
  BOOST_TEST(e["zstd_objects"].get<uint64_t>() == 20u);
  BOOST_TEST(e["zstd_object_content_bytes"].get<uint64_t>() == content);
  BOOST_TEST(e["objects"].get<uint64_t>() == 21u);
  const uint64_t stick = dir_bytes(s.stick);
  BOOST_TEST_MESSAGE("content " << content + 50'000 << " B; stick " << stick << " B");
  BOOST_TEST(stick < content / 3 + 50'000 + 60'000);
  BOOST_TEST(read_file(s.index()).find("\nzobject ") != std::string::npos);
  RunResult i = s.import_();
  BOOST_TEST_INFO(i.err);
  BOOST_REQUIRE_EQUAL(i.status, 0);
  s.check_converged(1);
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
  BOOST_TEST(idx.find("\nmdelta c 2 ") != std::string::npos);
  BOOST_TEST(idx.find("\nmdelta c 3 ") != std::string::npos);
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
