// HQ's key rotation by USB stick (docs/sneakernet.md, docs/formats/keys.md): an export carries
// HQ's key records as distd-keys/<N>.keys; an import follows them (storing each under
// <state_dir>/trust/) before it verifies the index, so a center that never reaches the link
// follows one rotation or several. A tampered or forged record refuses the import as a whole;
// a stick made before the rotation is refused at a center that follows the new key; older
// manifests signed before the rotation still link the installed version to the newest.
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "distd/bundle/hooks.h"
#include "distd/bundle/importer.h"
#include "distd/regional/channel_install.h"
#include "manifest/key_record.h"
#include "tests/support/bundle_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

// A BundleSite whose center pins its own copy of HQ's first public key (HQ's public key file is
// replaced at each rotation), and whose HQ rotates by hand: record N in public/keys/, the new pair
// at HQ's key paths (as tests/test_key_rotation.cpp's RotationSite does over the link).
struct StickRotation : BundleSite {
  std::vector<KeyPair> keys;  // keys[k]: HQ's key version k + 1

  StickRotation() {
    pin_own_key_copy();
    KeyPair first;
    first.sec = load_secret_key(tmp / "hq.key");
    first.pub = first.sec.public_key();
    keys.push_back(first);
  }

  std::string hq_record(uint64_t v) const { return public_dir() + "/keys/" + std::to_string(v) + ".keys"; }
  static std::string stick_record(const std::string& dir, uint64_t v) {
    return dir + "/distd-keys/" + std::to_string(v) + ".keys";
  }
  std::string trust(uint64_t v) const { return reg_state + "/trust/" + std::to_string(v) + ".keys"; }

  // HQ's next rotation: record N published, the new pair installed.
  void rotate() {
    KeyPair next = generate_keypair();
    uint64_t n = keys.size() + 1;
    write_file(hq_record(n), signed_key_record(n, keys.back().sec, next.sec));
    fs::remove(tmp / "hq.key");
    fs::remove(pub);
    write_keypair(next, tmp / "hq.key", pub);
    keys.push_back(next);
  }
  // a.txt = text, published; returns the version.
  uint64_t publish_text(const std::string& text) {
    write_file(src() + "/a.txt", text);
    return publish();
  }
  // An export of everything into tmp/<name>.
  std::string export_to(const std::string& name) {
    std::string d = tmp / name;
    fs::create_directories(d);
    last_export = export_ok({}, d);
    return d;
  }
  nlohmann::json last_export;

  std::vector<std::string> trust_files() const {
    std::vector<std::string> out;
    if (!fs::exists(reg_state + "/trust")) return out;
    for (auto& e : fs::directory_iterator(reg_state + "/trust")) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  std::string installed_text() const { return exists(dst() + "/a.txt") ? read_file(dst() + "/a.txt") : "<none>"; }
};

std::string copy_dir(const std::string& from, const std::string& to) {
  fs::remove_all(to);
  fs::copy(from, to, fs::copy_options::recursive);
  return to;
}

std::string following_line(const KeyPair& k, uint64_t n) {
  return "HQ's signing key is now " + k.pub.short_id() + " (key record " + std::to_string(n) + ", from the stick)";
}

}  // namespace

BOOST_AUTO_TEST_CASE(center_that_never_synced_follows_one_and_two_rotations_by_stick) {
  StickRotation s;
  BOOST_REQUIRE_EQUAL(s.publish_text("one"), 1u);
  std::string before = s.export_to("stick-0");
  BOOST_TEST(!fs::exists(before + "/distd-keys"));  // no rotation yet: no records on the stick

  s.rotate();
  BOOST_REQUIRE_EQUAL(s.publish_text("two"), 2u);  // signed with key 2
  std::string one = s.export_to("stick-1");
  BOOST_TEST(read_file(StickRotation::stick_record(one, 2)) == read_file(s.hq_record(2)));
  BOOST_TEST(!fs::exists(StickRotation::stick_record(one, 3)));
  BOOST_TEST(s.last_export["warnings"].empty());

  s.rotate();
  BOOST_REQUIRE_EQUAL(s.publish_text("three"), 3u);  // signed with key 3
  std::string two = s.export_to("stick-2");
  BOOST_TEST(read_file(StickRotation::stick_record(two, 2)) == read_file(s.hq_record(2)));
  BOOST_TEST(read_file(StickRotation::stick_record(two, 3)) == read_file(s.hq_record(3)));

  // One rotation: the center (pinning key 1 only) follows record 2 and installs version 2.
  RunResult r = s.import_(one);
  BOOST_TEST_INFO("import stderr: " << r.err);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(s.installed_text() == "two");
  BOOST_TEST(s.trust_files() == std::vector<std::string>{"2.keys"});
  BOOST_TEST(read_file(s.trust(2)) == read_file(s.hq_record(2)));
  BOOST_TEST(r.err.find(following_line(s.keys[1], 2)) != std::string::npos);

  // Two rotations, at a center that never synced nor imported.
  s.reset_center();
  r = s.import_(two);
  BOOST_TEST_INFO("import stderr: " << r.err);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(s.installed_text() == "three");
  BOOST_TEST((s.trust_files() == std::vector<std::string>{"2.keys", "3.keys"}));
  BOOST_TEST(read_file(s.trust(3)) == read_file(s.hq_record(3)));
  BOOST_TEST(r.err.find(following_line(s.keys[1], 2)) != std::string::npos);
  BOOST_TEST(r.err.find(following_line(s.keys[2], 3)) != std::string::npos);

  // The stick service's auto-import follows them the same way.
  s.reset_center();
  r = run({"distctl", "bundle", "auto-import", "--config", s.reg_cfg, "--from", copy_dir(two, s.tmp / "stick-auto")});
  BOOST_TEST_INFO("auto-import stderr: " << r.err);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(s.installed_text() == "three");
  BOOST_TEST((s.trust_files() == std::vector<std::string>{"2.keys", "3.keys"}));
  BOOST_TEST(r.err.find(following_line(s.keys[2], 3)) != std::string::npos);

  // A later import of the same stick: the records are followed already (trust/), nothing new.
  r = s.import_(two);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.err.find("HQ's signing key is now") == std::string::npos);

  // Re-exporting into a directory replaces its records (HQ's chain is what goes).
  copy_dir(two, s.tmp / "stick-re");
  write_file(StickRotation::stick_record(s.tmp / "stick-re", 4), "stale");
  s.export_to("stick-re");
  BOOST_TEST(!fs::exists(StickRotation::stick_record(s.tmp / "stick-re", 4)));
  BOOST_TEST(fs::exists(StickRotation::stick_record(s.tmp / "stick-re", 3)));
}

BOOST_AUTO_TEST_CASE(tampered_and_forged_records_refuse_the_import_and_store_nothing) {
  StickRotation s;
  BOOST_REQUIRE_EQUAL(s.publish_text("one"), 1u);
  s.rotate();
  BOOST_REQUIRE_EQUAL(s.publish_text("two"), 2u);
  std::string good = s.export_to("stick-good");
  const std::string rec = read_file(StickRotation::stick_record(good, 2));

  KeyPair wrong = generate_keypair();
  std::string flipped = rec;
  size_t at = flipped.find("\nkey ") + 5;
  flipped[at] = flipped[at] == '0' ? '1' : '0';  // another new key: the old key's signature fails
  struct Case {
    std::string what, bytes;
    int status;
    std::string text;
  };
  const std::vector<Case> cases = {
      {"a byte flipped", flipped, 6, "does not verify"},
      {"signed by a random key", signed_key_record(2, wrong.sec, s.keys[1].sec), 6, "is signed by key"},
      {"random key for both", signed_key_record(2, wrong.sec, wrong.sec), 6, "is signed by key"},
      {"truncated", rec.substr(0, rec.size() - 20), 5, "malformed"},
      {"version skipped", signed_key_record(3, s.keys[0].sec, s.keys[1].sec), 8, "has version 3, expected 2"},
      {"over 64 KiB", rec + std::string(64 * 1024, '#'), 5, "key record"},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.what) {
      s.reset_center();
      std::string d = copy_dir(good, s.tmp / "stick-bad");
      write_file(StickRotation::stick_record(d, 2), c.bytes);
      RunResult r = s.import_(d);
      BOOST_TEST_INFO("import stderr: " << r.err);
      BOOST_TEST(r.status == c.status);
      BOOST_TEST(r.err.find(StickRotation::stick_record(d, 2)) != std::string::npos);
      BOOST_TEST(r.err.find(c.text) != std::string::npos);
      BOOST_TEST(s.installed_text() == "<none>");
      BOOST_TEST(s.trust_files().empty());
    }
  }

  // A genuine record 2 and a forged 3: record 2 is followed and stays, 3 is refused, nothing is
  // installed; at a center that follows record 2 already, the forged 3 changes nothing either.
  s.reset_center();
  std::string d = copy_dir(good, s.tmp / "stick-bad");
  write_file(StickRotation::stick_record(d, 3), signed_key_record(3, wrong.sec, wrong.sec));
  for (int round = 0; round < 2; ++round) {
    RunResult r = s.import_(d);
    BOOST_TEST_INFO("import stderr: " << r.err);
    BOOST_TEST(r.status == 6);
    BOOST_TEST(r.err.find(StickRotation::stick_record(d, 3)) != std::string::npos);
    BOOST_TEST(s.installed_text() == "<none>");
    BOOST_TEST(s.trust_files() == std::vector<std::string>{"2.keys"});
    BOOST_TEST(read_file(s.trust(2)) == rec);
  }
  BOOST_REQUIRE_EQUAL(s.import_(good).status, 0);
  BOOST_TEST(s.installed_text() == "two");
}

BOOST_AUTO_TEST_CASE(stick_made_before_the_rotation_is_refused_where_the_new_key_is_followed) {
  StickRotation s;
  BOOST_REQUIRE_EQUAL(s.publish_text("one"), 1u);
  std::string old_stick = s.export_to("stick-old");
  s.rotate();
  BOOST_REQUIRE_EQUAL(s.publish_text("two"), 2u);
  std::string new_stick = s.export_to("stick-new");

  // Where the center still trusts key 1, the old stick imports (the rotation is not known here).
  BOOST_REQUIRE_EQUAL(s.import_(old_stick).status, 0);
  BOOST_TEST(s.installed_text() == "one");

  // It follows record 2 from the new stick; the old stick is refused from then on.
  BOOST_REQUIRE_EQUAL(s.import_(new_stick).status, 0);
  BOOST_TEST(s.installed_text() == "two");
  RunResult r = s.import_(old_stick);
  BOOST_TEST_INFO("import stderr: " << r.err);
  BOOST_TEST(r.status == 6);
  BOOST_TEST(r.err.find("is signed by HQ's old key " + s.keys[0].pub.short_id() + ", which key record 2 replaced") !=
             std::string::npos);
  BOOST_TEST(r.err.find("export a new bundle at HQ") != std::string::npos);
  BOOST_TEST(s.installed_text() == "two");
  BOOST_TEST(s.trust_files() == std::vector<std::string>{"2.keys"});
}

BOOST_AUTO_TEST_CASE(export_warns_when_the_newest_record_is_not_the_signing_key) {
  StickRotation s;
  BOOST_REQUIRE_EQUAL(s.publish_text("one"), 1u);
  // Record 2 published, the new pair not installed yet: HQ still signs with key 1.
  KeyPair next = generate_keypair();
  write_file(s.hq_record(2), signed_key_record(2, s.keys[0].sec, next.sec));
  std::string d = s.export_to("stick");
  BOOST_TEST(fs::exists(StickRotation::stick_record(d, 2)));
  BOOST_TEST(s.last_export["warnings"].dump().find("names another key than the one signing this bundle") !=
             std::string::npos);
  // The center follows record 2 and then refuses the index signed by key 1.
  RunResult r = s.import_(d);
  BOOST_TEST_INFO("import stderr: " << r.err);
  BOOST_TEST(r.status == 6);
  BOOST_TEST(s.installed_text() == "<none>");
}

BOOST_AUTO_TEST_CASE(export_bounds_the_records_on_the_stick) {
  StickRotation s;
  BOOST_REQUIRE_EQUAL(s.publish_text("one"), 1u);
  // 65 records (the exporter copies them as they are; the center verifies them): 64 go.
  for (uint64_t v = 2; v <= 66; ++v) write_file(s.hq_record(v), "record " + std::to_string(v) + "\n");
  std::string d = s.export_to("stick-many");
  BOOST_TEST(fs::exists(StickRotation::stick_record(d, 65)));
  BOOST_TEST(!fs::exists(StickRotation::stick_record(d, 66)));
  BOOST_TEST(s.last_export["warnings"].dump().find("more than 64 key records") != std::string::npos);

  // A record over 64 KiB ends the list there.
  write_file(s.hq_record(3), std::string(64 * 1024 + 1, 'x'));
  d = s.export_to("stick-big");
  BOOST_TEST(fs::exists(StickRotation::stick_record(d, 2)));
  BOOST_TEST(!fs::exists(StickRotation::stick_record(d, 3)));
  BOOST_TEST(!fs::exists(StickRotation::stick_record(d, 4)));
  BOOST_TEST(s.last_export["warnings"].dump().find("left off the stick") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(request_spanning_the_rotation_carries_manifests_of_both_keys) {
  StickRotation s;
  BOOST_REQUIRE_EQUAL(s.publish_text("one"), 1u);
  s.export_to("stick-1");
  BOOST_REQUIRE_EQUAL(s.import_(s.tmp / "stick-1").status, 0);
  BOOST_REQUIRE_EQUAL(s.publish_text("two"), 2u);  // still key 1
  s.rotate();
  BOOST_REQUIRE_EQUAL(s.publish_text("three"), 3u);  // key 2
  // The center's request (it has version 1) brings versions 2 (signed by key 1) and 3 (key 2):
  // version 2 links the installed version to version 3, whose key the center follows first.
  s.round();
  BOOST_REQUIRE(fs::exists(StickRotation::stick_record(s.stick, 2)));
  RunResult r = s.import_();
  BOOST_TEST_INFO("import stderr: " << r.err << "\nstdout: " << r.out);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(s.installed_text() == "three");
  BOOST_TEST(s.trust_files() == std::vector<std::string>{"2.keys"});
}

BOOST_AUTO_TEST_CASE(newest_manifest_signed_by_the_revoked_key_is_refused) {
  StickRotation s;
  BOOST_REQUIRE_EQUAL(s.publish_text("one"), 1u);
  s.rotate();  // and no publish: the latest manifest is still signed by key 1, the index by key 2
  std::string d = s.export_to("stick");
  RunResult r = s.import_(d);
  BOOST_TEST_INFO("import stderr: " << r.err);
  BOOST_TEST(r.status == 6);
  BOOST_TEST(r.err.find("which HQ revoked in key record 2") != std::string::npos);
  BOOST_TEST(s.installed_text() == "<none>");
  BOOST_TEST(s.trust_files() == std::vector<std::string>{"2.keys"});
}

// The plug-ins' contents on a stick (HQ's answers to forum posts) are signed by HQ's key of the
// moment: an import follows the stick's key records before it runs the plug-ins' import hooks.
BOOST_AUTO_TEST_CASE(plugins_run_after_the_stick_key_records_are_followed) {
  StickRotation s;
  BOOST_REQUIRE_EQUAL(s.publish_text("one"), 1u);
  s.rotate();
  BOOST_REQUIRE_EQUAL(s.publish_text("two"), 2u);
  std::string stick = s.export_to("stick");

  std::vector<std::string> seen;  // the key ids the hook sees as HQ's
  bundle::import_hooks().push_back([&](const Config& cfg, const std::string&, const bundle::HookLogFn&) {
    seen.push_back(regional_hq_key(cfg).short_id());
    return std::vector<std::string>{};
  });
  bundle::ImportResult r = bundle::import_bundle(load_config(s.reg_cfg), stick);
  bundle::import_hooks().pop_back();
  BOOST_TEST(seen == std::vector<std::string>{s.keys[1].pub.short_id()});
  BOOST_TEST(s.installed_text() == "two");
  BOOST_TEST(r.channels.size() == 1u);
}
