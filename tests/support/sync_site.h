// An HQ and a regional center on loopback, for end-to-end sync tests: real `distctl publish`,
// real `distd` (role hq), real `distctl sync`, optionally through the flaky-link proxy or with
// nginx serving HQ's public/ directory. Header-only (used by tests/test_sync_*.cpp).
#pragma once

#include <sys/stat.h>

#include <ctime>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "manifest/digest.h"
#include "manifest/fs.h"
#include "manifest/key_record.h"
#include "manifest/keys.h"
#include "manifest/manifest.h"
#include "manifest/request_auth.h"
#include "distd/regional/installer.h"
#include "tests/support/flaky_link.h"
#include "tests/support/test_support.h"

namespace distd::test {

// HQ's key record `version` (docs/formats/keys.md): `next` replaces `prev`, signed by both.
inline std::string signed_key_record(uint64_t version, const SecretKey& prev, const SecretKey& next) {
  KeyRecord rec;
  rec.version = version;
  rec.key = next.public_key();
  rec.revokes = {prev.public_key().key_id()};
  rec.created = ::time(nullptr);
  return sign_key_record(rec, prev, next);
}

class SyncSite {
 public:
  TempDir tmp{"sync"};
  std::string hq_cfg = tmp / "hq.toml";
  std::string reg_cfg = tmp / "center.toml";
  std::string hq_state = tmp / "hq-state";
  std::string reg_state = tmp / "center-state";
  std::string pub = tmp / "hq.pub";
  std::string channel = "c";
  int hq_port = 0;
  std::unique_ptr<Process> hqd;
  std::unique_ptr<FlakyLink> link;

  // extra_regional: lines added to the [regional] section.
  explicit SyncSite(const std::string& extra_regional = "") : extra_regional_(extra_regional) {
    write_keypair(generate_keypair(), tmp / "hq.key", pub);
    hq_port = free_port();
    write_file(hq_cfg, "role = \"hq\"\nsite = \"hq\"\nstate_dir = \"" + hq_state + "\"\n[hq]\nsecret_key = \"" +
                           (tmp / "hq.key") + "\"\npublic_key = \"" + pub + "\"\nlisten = \"127.0.0.1:" +
                           std::to_string(hq_port) + "\"\n\n[[channel]]\nname = \"" + channel + "\"\npath = \"" +
                           src() + "\"\n");
    std::filesystem::create_directories(src());
    set_hq_url(hq_url());
  }

  std::string src() const { return tmp / "hq-src"; }
  std::string dst() const { return tmp / "center/moodle"; }
  std::string hq_url() const { return "http://127.0.0.1:" + std::to_string(hq_port); }
  std::string public_dir() const { return hq_state + "/public"; }
  std::string object(const std::string& hex) const { return public_dir() + "/objects/" + hex.substr(0, 2) + "/" + hex; }
  std::string manifest_file(uint64_t v) const {
    return public_dir() + "/channels/" + channel + "/manifests/" + std::to_string(v) + ".manifest";
  }

  // (Re)writes the regional config pointing at url.
  void set_hq_url(const std::string& url, const std::string& more = "") {
    write_file(reg_cfg, "role = \"regional\"\nsite = \"center-1\"\nstate_dir = \"" + reg_state +
                            "\"\n[regional]\nhq_url = \"" + url + "\"\nhq_public_key = \"" + pub +
                            "\"\nconnect_timeout = 3\nlow_speed_limit = 1000\nlow_speed_time = 3\nmax_attempts = 3\n" +
                            extra_regional_ + "\n" + more + "\n\n[[channel]]\nname = \"" + channel + "\"\npath = \"" +
                            dst() + "\"\n");
  }

  // Makes the center pin its own copy of HQ's current public key (by default it reads HQ's
  // public key file, which a key rotation replaces). Returns the copy's path.
  std::string pin_own_key_copy() {
    const std::string pin = tmp / "center-pin.pub";
    std::filesystem::copy_file(pub, pin, std::filesystem::copy_options::overwrite_existing);
    std::string cfg = read_file(reg_cfg);
    const std::string from = "hq_public_key = \"" + pub + "\"";
    cfg.replace(cfg.find(from), from.size(), "hq_public_key = \"" + pin + "\"");
    write_file(reg_cfg, cfg);
    return pin;
  }

  void start_hq() {
    hqd = std::make_unique<Process>(std::vector<std::string>{"distd", "--config", hq_cfg}, tmp / "hqd.log");
    if (!wait_for_port(hq_port, 15)) BOOST_FAIL("distd (hq) did not start: " + hqd->log());
  }
  // Routes the center through a flaky proxy in front of HQ.
  FlakyLink& start_link(const FlakyOptions& o = {}) {
    link = std::make_unique<FlakyLink>(hq_port, o);
    set_hq_url(link->url());
    return *link;
  }

  uint64_t publish() {
    RunResult r = run({"distctl", "publish", "--channel", channel, "--config", hq_cfg, "--json"}, {}, {}, 120);
    BOOST_TEST_INFO("publish stderr: " << r.err);
    BOOST_REQUIRE_EQUAL(r.status, 0);
    return nlohmann::json::parse(r.out)["version"].get<uint64_t>();
  }

  // The center's site key (reg_state/site.key, made when missing), enrolled at HQ as center-1:
  // HQ's smart endpoints (deltas, batches, manifest deltas) answer only enrolled sites.
  void enroll_center() {
    if (!std::filesystem::exists(reg_state + "/site.key")) {
      std::filesystem::create_directories(reg_state);
      write_keypair(generate_keypair(), reg_state + "/site.key", reg_state + "/site.pub");
    }
    std::filesystem::create_directories(hq_state + "/sites");
    std::filesystem::copy_file(reg_state + "/site.pub", hq_state + "/sites/center-1.pub",
                               std::filesystem::copy_options::overwrite_existing);
  }
  // The Authorization header (with its name) of a request signed by the enrolled center.
  std::string auth_header(const std::string& method, const std::string& target, const std::string& body) {
    enroll_center();
    return "Authorization: " + sign_request("center-1", load_secret_key(reg_state + "/site.key"),
                                            static_cast<int64_t>(::time(nullptr)), method, target, body);
  }

  // sync() enrolls the center first unless auto_enroll is false (BundleSite: a stick's center
  // enrolls through its request).
  bool auto_enroll = true;

  RunResult sync(const std::vector<std::string>& extra = {}, const std::vector<std::string>& env = {},
                 int timeout_s = 150) {
    if (auto_enroll) enroll_center();
    std::vector<std::string> argv = {"distctl", "sync", "--config", reg_cfg, "--json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv, {}, env, timeout_s);
  }
  nlohmann::json sync_ok(const std::vector<std::string>& extra = {}) {
    RunResult r = sync(extra);
    BOOST_TEST_INFO("sync stderr: " << r.err << "\nstdout: " << r.out);
    BOOST_REQUIRE_EQUAL(r.status, 0);
    return nlohmann::json::parse(r.out)["channels"][0];
  }

  SignedManifest manifest(uint64_t v) const {
    return verify_manifest(read_file(manifest_file(v)), load_public_key(pub), VerifyOptions{}, manifest_file(v));
  }

  // The files under dst (relative path -> digest hex), staging excluded.
  std::map<std::string, std::string> dst_files() const {
    std::map<std::string, std::string> out;
    if (!std::filesystem::exists(dst())) return out;
    for (auto& f : std::filesystem::recursive_directory_iterator(dst())) {
      if (!f.is_regular_file()) continue;
      std::string rel = std::filesystem::relative(f.path(), dst()).string();
      if (rel.rfind(".distd-staging/", 0) == 0) continue;  // the default staging: no final path
      out[rel] = file_digest_hex(f.path());
    }
    return out;
  }

  // The tree at dst is exactly version v: same paths, digests and modes.
  void check_converged(uint64_t v) const {
    SignedManifest sm = manifest(v);
    auto files = dst_files();
    BOOST_TEST(files.size() == sm.manifest.entries.size());
    for (const auto& e : sm.manifest.entries) {
      BOOST_TEST_INFO("entry " << e.path);
      auto it = files.find(e.path);
      BOOST_REQUIRE(it != files.end());
      BOOST_TEST(it->second == digest_hex(e.digest));
      struct stat st {};
      ::stat((dst() + "/" + e.path).c_str(), &st);
      BOOST_TEST((st.st_mode & 07777) == installed_mode(e.mode, FileModes::safe));  // [regional] file_modes
    }
  }

  // Every file at a final path has a digest signed for that path by one of the versions.
  void check_only_signed(const std::vector<uint64_t>& versions) const {
    std::map<std::string, std::vector<std::string>> allowed;
    for (uint64_t v : versions)
      for (const auto& e : manifest(v).manifest.entries) allowed[e.path].push_back(digest_hex(e.digest));
    for (const auto& [path, hex] : dst_files()) {
      BOOST_TEST_INFO("file " << path);
      auto it = allowed.find(path);
      BOOST_REQUIRE(it != allowed.end());
      BOOST_TEST((std::find(it->second.begin(), it->second.end(), hex) != it->second.end()));
    }
  }

  // Replaces an object in HQ's store with other bytes (breaking any hard link to the source).
  void corrupt_object(const std::string& hex, const std::string& bytes) const {
    std::filesystem::remove(object(hex));
    write_file(object(hex), bytes);
  }

 private:
  std::string extra_regional_;
};

inline std::string mutate(std::string s, size_t at, const std::string& with) {
  s.replace(at, with.size(), with);
  return s;
}

}  // namespace distd::test
