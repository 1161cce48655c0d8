// HQ signing-key rotation (docs/formats/keys.md): a center follows a key record served at
// /keys/<N>.keys before it fetches manifests, then trusts the new key (also in a later process,
// from <state_dir>/trust/) and refuses manifests of the revoked key; forged, skipped and
// truncated records are refused and the old key stays.
#include <boost/test/unit_test.hpp>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "manifest/error.h"
#include "manifest/key_record.h"
#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

// A SyncSite whose center pins its own copy of HQ's first public key (the fixture's center reads
// HQ's public key file, which a rotation replaces).
struct RotationSite : SyncSite {
  KeyPair old_kp, new_kp;

  RotationSite() {
    pin_own_key_copy();
    old_kp.sec = load_secret_key(tmp / "hq.key");
    old_kp.pub = old_kp.sec.public_key();
    new_kp = generate_keypair();
  }

  std::string record_file(uint64_t v) const { return public_dir() + "/keys/" + std::to_string(v) + ".keys"; }

  // HQ rotates by hand: record 2 published, the new pair installed at HQ's key paths.
  void rotate() {
    write_file(record_file(2), signed_key_record(2, old_kp.sec, new_kp.sec));
    fs::remove(tmp / "hq.key");
    fs::remove(pub);
    write_keypair(new_kp, tmp / "hq.key", pub);
  }
  uint64_t installed() {
    auto j = sync_ok();
    return j["to_version"].get<uint64_t>();
  }
  // a.txt = "one" published as version 1, HQ serving, the center synced to it.
  void start_at_version_1() {
    write_file(src() + "/a.txt", "one");
    BOOST_REQUIRE_EQUAL(publish(), 1u);
    start_hq();
    BOOST_TEST(installed() == 1u);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(center_follows_rotation_over_the_link_and_refuses_the_revoked_key) {
  RotationSite s;
  s.start_at_version_1();

  s.rotate();
  write_file(s.src() + "/a.txt", "two");
  BOOST_REQUIRE_EQUAL(s.publish(), 2u);  // signed with the new key
  BOOST_TEST(s.installed() == 2u);
  s.check_converged(2);
  BOOST_TEST(fs::exists(s.reg_state + "/trust/2.keys"));

  // A later process trusts the new key from state_dir/trust alone (HQ no longer serves the record).
  fs::remove(s.record_file(2));
  write_file(s.src() + "/a.txt", "three");
  BOOST_REQUIRE_EQUAL(s.publish(), 3u);
  BOOST_TEST(s.installed() == 3u);
  s.check_converged(3);

  // A manifest signed by the retired key is refused; nothing is installed.
  SignedManifest v3 = s.manifest(3);
  Manifest m = v3.manifest;
  m.version = 4;
  write_file(s.src() + "/a.txt", "four");
  write_file(s.public_dir() + "/channels/c/latest.manifest", sign_manifest(m, s.old_kp.sec));
  RunResult r = s.sync();
  BOOST_TEST_INFO("stdout: " << r.out << "\nstderr: " << r.err);
  BOOST_TEST(r.status != 0);
  BOOST_TEST(r.out.find("bad_signature") != std::string::npos);
  BOOST_TEST(read_file(s.dst() + "/a.txt") == "three");
}

BOOST_AUTO_TEST_CASE(forged_skipped_and_truncated_records_are_refused_and_the_old_key_stays) {
  RotationSite s;
  s.start_at_version_1();

  KeyPair wrong = generate_keypair();
  std::string good = signed_key_record(2, s.old_kp.sec, s.new_kp.sec);
  const std::vector<std::pair<std::string, std::string>> forged = {
      {"signed only by the new key", signed_key_record(2, s.new_kp.sec, s.new_kp.sec)},
      {"signed by a wrong key", signed_key_record(2, wrong.sec, s.new_kp.sec)},
      {"version skipped", signed_key_record(3, s.old_kp.sec, s.new_kp.sec)},
      {"truncated", good.substr(0, good.size() - 20)},
  };
  for (const auto& [what, bytes] : forged) {
    BOOST_TEST_CONTEXT(what) {
      BOOST_CHECK_THROW((void)verify_key_record(bytes, s.old_kp.pub, 2, what), Error);
      write_file(s.record_file(2), bytes);
      RunResult r = s.sync();
      BOOST_TEST(r.status != 0);
      BOOST_TEST(!fs::exists(s.reg_state + "/trust/2.keys"));
    }
  }
  // With no record at all the old key still verifies HQ's manifests.
  fs::remove(s.record_file(2));
  BOOST_TEST(s.installed() == 1u);
  // The genuine record verifies.
  BOOST_TEST(verify_key_record(good, s.old_kp.pub, 2, "good").key.key_id() == s.new_kp.pub.key_id());
}
