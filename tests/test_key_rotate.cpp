// `distctl key rotate` (docs/hq.md "Rotating the signing key"): HQ publishes key record N signed
// by the old and the new key, installs the new pair, keeps the old secret, re-signs every channel;
// a center that pins only the first key follows over the link. A crash or a simulated power cut
// at any point of a rotation is finished by running it again, with exactly one new record.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "manifest/error.h"
#include "manifest/key_record.h"
#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

struct RotateSite : SyncSite {
  RotateSite() {
    pin_own_key_copy();
    write_file(src() + "/a.txt", "one");
    BOOST_REQUIRE_EQUAL(publish(), 1u);
    start_hq();
  }
  std::string key_file() const { return tmp / "hq.key"; }
  std::string record_file(uint64_t v) const { return public_dir() + "/keys/" + std::to_string(v) + ".keys"; }
  RunResult rotate(const std::vector<std::string>& env = {}) {
    return run({"distctl", "key", "rotate", "--config", hq_cfg, "--json"}, {}, env, 120);
  }
  nlohmann::json rotate_ok() {
    RunResult r = rotate();
    BOOST_TEST_INFO("rotate stdout: " << r.out << "\nstderr: " << r.err);
    BOOST_REQUIRE_EQUAL(r.status, 0);
    return nlohmann::json::parse(r.out);
  }
  uint64_t newest_record() const {
    uint64_t v = 1;
    while (fs::exists(record_file(v + 1))) ++v;
    return v;
  }
  PublicKey installed_key() const { return load_secret_key(key_file()).public_key(); }
  uint64_t synced_version() { return sync_ok()["to_version"].get<uint64_t>(); }
};

unsigned mode_of(const std::string& path) {
  struct stat st {};
  BOOST_REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// HQ's own files after a complete rotation to record v: the record brings the installed key and is
// signed by `previous`; public_key matches; no rotation is left pending.
void check_rotated(const RotateSite& s, uint64_t v, const PublicKey& previous) {
  KeyRecord rec = verify_key_record(read_file(s.record_file(v)), previous, v, s.record_file(v));
  BOOST_TEST(rec.key.key_id() == s.installed_key().key_id());
  BOOST_TEST(load_public_key(s.pub).key_id() == rec.key.key_id());
  BOOST_TEST(!fs::exists(s.key_file() + ".next"));
  BOOST_TEST(mode_of(s.key_file()) == 0600u);
  BOOST_TEST(s.newest_record() == v);
}

}  // namespace

BOOST_AUTO_TEST_CASE(rotate_publishes_a_record_installs_the_pair_and_the_center_follows) {
  RotateSite s;
  BOOST_TEST(s.synced_version() == 1u);
  const PublicKey first = s.installed_key();

  nlohmann::json j = s.rotate_ok();
  BOOST_TEST(j["record_version"] == 2);
  BOOST_TEST(j["resumed"] == false);
  BOOST_TEST(j["old_key_id"] == first.short_id());
  BOOST_TEST(j["new_key_id"] == s.installed_key().short_id());
  BOOST_REQUIRE_EQUAL(j["channels"].size(), 1u);
  BOOST_TEST(j["channels"][0]["reason"] == "re-signed");
  BOOST_TEST(j["channels"][0]["version"] == 2);
  check_rotated(s, 2, first);
  // The old secret is kept, private, and is the first key.
  const std::string retired = j["retired_secret_key"].get<std::string>();
  BOOST_TEST(mode_of(retired) == 0600u);
  BOOST_TEST(load_secret_key(retired).public_key().key_id() == first.key_id());
  BOOST_TEST(s.manifest(2).key_id == s.installed_key().key_id());

  // The center, which pins only the first key, follows record 2 and installs the re-signed version.
  BOOST_TEST(s.synced_version() == 2u);
  BOOST_TEST(fs::exists(s.reg_state + "/trust/2.keys"));
  s.check_converged(2);
  write_file(s.src() + "/a.txt", "two");
  BOOST_REQUIRE_EQUAL(s.publish(), 3u);
  BOOST_TEST(s.synced_version() == 3u);

  // A second rotation chains on: record 3 is signed by the second key.
  const PublicKey second = s.installed_key();
  j = s.rotate_ok();
  BOOST_TEST(j["record_version"] == 3);
  check_rotated(s, 3, second);
  BOOST_TEST(s.synced_version() == 4u);
  BOOST_TEST(fs::exists(s.reg_state + "/trust/3.keys"));
  s.check_converged(4);
  BOOST_TEST(read_file(s.dst() + "/a.txt") == "two");

  // An unchanged publish with the key that signed the newest version is a no-op again.
  RunResult r = run({"distctl", "publish", "--channel", s.channel, "--config", s.hq_cfg, "--json"});
  BOOST_REQUIRE_EQUAL(r.status, 0);
  BOOST_TEST(nlohmann::json::parse(r.out)["version"] == 4);
}

BOOST_AUTO_TEST_CASE(rotate_refuses_a_key_the_newest_record_does_not_name) {
  RotateSite s;
  const std::string first_secret = read_file(s.key_file()), first_public = read_file(s.pub);
  nlohmann::json j = s.rotate_ok();
  // An admin puts the first pair back by hand: a rotation from it would fork the chain.
  write_file(s.key_file(), first_secret);
  write_file(s.pub, first_public);
  RunResult r = s.rotate();
  BOOST_TEST_INFO("stderr: " << r.err);
  BOOST_TEST(r.status == 5);
  BOOST_TEST(r.err.find("does not name [hq] secret_key's key") != std::string::npos);
  BOOST_TEST(s.newest_record() == 2u);
}

// Run as root, the new secret key goes to the owner of HQ's state directory (the user distd runs
// as), who must be able to read it.
BOOST_AUTO_TEST_CASE(run_as_root_the_new_secret_belongs_to_the_state_dirs_owner) {
  if (::geteuid() != 0) return;  // only root can give files away
  RotateSite s;
  const uid_t nobody = 65534;
  BOOST_REQUIRE_EQUAL(::chown(s.hq_state.c_str(), nobody, nobody), 0);
  nlohmann::json j = s.rotate_ok();
  for (const std::string& p : {s.key_file(), j["retired_secret_key"].get<std::string>()}) {
    struct stat st {};
    BOOST_REQUIRE(::stat(p.c_str(), &st) == 0);
    BOOST_TEST(st.st_uid == nobody, p);
    BOOST_TEST((st.st_mode & 07777) == 0600u, p);
  }
}

BOOST_AUTO_TEST_CASE(rotate_waits_for_no_publish_and_changes_nothing_while_one_runs) {
  RotateSite s;
  const std::string secret = read_file(s.key_file());
  int fd = ::open((s.hq_state + "/publish.lock").c_str(), O_RDWR);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE_EQUAL(::flock(fd, LOCK_EX), 0);
  RunResult r = s.rotate();
  ::close(fd);
  BOOST_TEST(r.status == 16);  // busy
  BOOST_TEST(r.err.find("another publish is running") != std::string::npos);
  BOOST_TEST(read_file(s.key_file()) == secret);
  BOOST_TEST(s.newest_record() == 1u);
  BOOST_TEST(!fs::exists(s.key_file() + ".next"));
}

// Kills and simulated power cuts at each durable step of a rotation (and of its re-signing
// publish): after each, running the rotation again completes it with exactly one new record, and
// the center follows and converges.
BOOST_AUTO_TEST_CASE(a_rotation_cut_at_any_point_is_finished_by_running_it_again) {
  RotateSite s;
  BOOST_TEST(s.synced_version() == 1u);
  int cuts = 0;
  for (const std::string mode : {"kill", "powercut"}) {
    for (int n = 1;; ++n) {
      BOOST_TEST_CONTEXT(mode << " at point hit " << n) {
        const uint64_t before = s.newest_record();
        const PublicKey key_before = s.installed_key();
        RunResult cut = s.rotate({"DISTD_FAULT=" + mode + ":*:" + std::to_string(n),
                                  "DISTD_POWERCUT_DIR=" + s.tmp.path()});
        if (cut.status == 0) {  // fewer than n points: the rotation ran to its end
          check_rotated(s, before + 1, key_before);
          break;
        }
        ++cuts;
        BOOST_TEST(cut.status == 128 + 9);
        BOOST_TEST(s.newest_record() <= before + 1);
        nlohmann::json j = s.rotate_ok();
        BOOST_TEST(j["record_version"] == before + 1);
        check_rotated(s, before + 1, key_before);
        const uint64_t v = s.synced_version();
        s.check_converged(v);
        BOOST_TEST(s.manifest(v).key_id == s.installed_key().key_id());
        BOOST_TEST(fs::exists(s.reg_state + "/trust/" + std::to_string(before + 1) + ".keys"));
      }
    }
  }
  BOOST_TEST_MESSAGE("rotation: " << cuts << " kills and power cuts, " << s.newest_record() << " key records");
  BOOST_TEST(cuts >= 10);
}

// A manifest signed by the key a rotation retired (HQ publishing with an old copy of the key, or
// an attacker holding it) is refused with a message that names the key and the record.
BOOST_AUTO_TEST_CASE(a_manifest_signed_by_the_revoked_key_is_refused_and_named) {
  RotateSite s;
  BOOST_TEST(s.synced_version() == 1u);
  const SecretKey first = load_secret_key(s.key_file());
  (void)s.rotate_ok();
  BOOST_TEST(s.synced_version() == 2u);

  Manifest m = s.manifest(2).manifest;
  m.version = 3;
  write_file(s.public_dir() + "/channels/c/latest.manifest", sign_manifest(m, first));
  RunResult r = s.sync();
  BOOST_TEST_INFO("stdout: " << r.out << "\nstderr: " << r.err);
  BOOST_TEST(r.status == 6);
  BOOST_TEST(r.err.find("is signed by HQ's key " + first.public_key().short_id() +
                        ", which HQ revoked in key record 2") != std::string::npos);
  BOOST_TEST(r.err.find("nothing was installed") != std::string::npos);
  BOOST_TEST(s.manifest(2).key_id != first.public_key().key_id());
  s.check_converged(2);
}

// distctl manifest verify --keys follows HQ's key records from the pinned key, as a center does:
// after two rotations the newest manifest verifies with the first key and the records, not without.
BOOST_AUTO_TEST_CASE(manifest_verify_follows_key_records) {
  RotateSite s;
  const std::string first_pub = s.tmp / "first.pub";
  fs::copy_file(s.pub, first_pub);
  (void)s.rotate_ok();
  (void)s.rotate_ok();
  const std::string latest = s.public_dir() + "/channels/c/latest.manifest";
  RunResult plain = run({"distctl", "manifest", "verify", latest, "--pubkey", first_pub});
  BOOST_TEST(plain.status == 6);
  RunResult r = run({"distctl", "manifest", "verify", latest, "--pubkey", first_pub, "--keys", s.public_dir() + "/keys",
                     "--json"});
  BOOST_TEST_INFO("stderr: " << r.err);
  BOOST_REQUIRE_EQUAL(r.status, 0);
  BOOST_TEST(nlohmann::json::parse(r.out)["key_version"] == 3);
  // A damaged record stops the chain with its error.
  std::string rec = read_file(s.record_file(2));
  rec[rec.find("version 2") + 8] = '7';
  write_file(s.record_file(2), rec);
  r = run({"distctl", "manifest", "verify", latest, "--pubkey", first_pub, "--keys", s.public_dir() + "/keys"});
  BOOST_TEST(r.status != 0);
  BOOST_TEST(r.err.find("2.keys") != std::string::npos, r.err);
}
