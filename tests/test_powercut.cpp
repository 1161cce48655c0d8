// Simulated power cuts (DISTD_FAULT=powercut:NAME:N, manifest/powercut.h): at the chosen point the
// process forgets every write, rename, unlink and mkdir it had not made durable, then dies. Run
// over a sync, a bundle import, a course rebuild and an HQ publish; after each cut only signed
// bytes are at final paths, nothing installed is lost, what the journal and installed.manifest
// say is installed is on disk, and a rerun converges. The first case shows the mode sees what
// kill -9 cannot: bytes written without fsync are gone after a cut.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "distd/regional/journal.h"
#include "manifest/digest.h"
#include "manifest/fault.h"
#include "manifest/fs.h"
#include "manifest/keys.h"
#include "manifest/manifest.h"
#include "tests/support/bundle_site.h"
#include "tests/support/course_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

// ---- The self-test's child: this binary re-executed with DISTD_POWERCUT_CHILD=<dir>. ----

int child_main(const std::string& d) {
  try {
    write_file_atomic(d + "/durable", "renamed in and its directory synced");
    make_dirs(d + "/kept/deeper");  // make_dirs syncs the parent of each directory it creates
    write_file_atomic(d + "/kept/deeper/inside", "durable all the way");
    UniqueFd u(::open((d + "/unsynced").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    write_all(u.get(), "written, never fsynced", d + "/unsynced");
    UniqueFd s(::open((d + "/synced").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    write_all(s.get(), "fsynced", d + "/synced");
    sync_file(s.get(), d + "/synced");
    write_all(s.get(), " and a tail that was not", d + "/synced");
    // A rename over an existing file, its directory never synced: the old file returns.
    UniqueFd t(::open((d + "/new.tmp").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    write_all(t.get(), "new content", d + "/new.tmp");
    sync_file(t.get(), d + "/new.tmp");
    rename_file(d + "/new.tmp", d + "/replaced", "cannot rename", d + "/replaced");
    if (try_remove_file(d + "/removed") != 0) return 97;  // an unlink never made durable
    UniqueFd dir(::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (try_make_dir_at(dir.get(), "made") != 0) return 96;  // its parent is never synced
    write_file_atomic(d + "/made/inside", "in a directory whose creation was not synced");

    fault_point("selftest");
    return 0;  // not reached with kill:selftest:1 or powercut:selftest:1
  } catch (...) {
    return 98;
  }
}

const int child_hook = [] {
  if (const char* d = std::getenv("DISTD_POWERCUT_CHILD")) ::_exit(child_main(d));
  return 0;
}();

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

uint64_t size_of(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : UINT64_MAX;
}

// ---- Bookkeeping of the runs. ----

struct Tally {
  int cuts = 0, completed = 0, forgot = 0;  // cut runs; runs that finished first; cuts that undid something
  std::set<std::string> points;             // named points cut at
};

// The environment for one run with spec, logging what the cut undid to log.
std::vector<std::string> cut_env(const std::string& spec, const std::string& tmp, const std::string& log) {
  return {"DISTD_FAULT=" + spec, "DISTD_POWERCUT_DIR=" + tmp, "DISTD_POWERCUT_LOG=" + log};
}

// Counts a finished run (status 137: cut) and whether its cut forgot anything.
void count(Tally& t, const std::string& spec, const RunResult& r, const std::string& log) {
  if (r.status != 137) {
    ++t.completed;
    return;
  }
  ++t.cuts;
  if (spec.find(":*:") == std::string::npos) t.points.insert(spec);
  std::string text = exists(log) ? read_file(log) : "";
  if (text.find("\nundo ") != std::string::npos || text.find("\ncut ") != std::string::npos ||
      text.find("\nrestore ") != std::string::npos)
    ++t.forgot;
  fs::remove(log);
}

void report(const char* what, const Tally& t, std::chrono::steady_clock::time_point start) {
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  BOOST_TEST_MESSAGE(what << ": " << t.cuts << " power cuts (" << t.points.size() << " named points, "
                          << t.forgot << " of them forgot writes), " << t.completed << " runs finished first, "
                          << s << " s");
}

// ---- Checks at the center. ----

std::map<std::string, std::string> entries_of(const SignedManifest& sm) {
  std::map<std::string, std::string> out;
  for (const auto& e : sm.manifest.entries) out[e.path] = digest_hex(e.digest);
  return out;
}

// Nothing installed lost: a path both versions sign is still there (old or new bytes).
void check_nothing_lost(const SyncSite& s, uint64_t v, uint64_t nv) {
  auto now = s.dst_files();
  auto a = entries_of(s.manifest(v)), b = entries_of(s.manifest(nv));
  for (const auto& [path, hex] : a) {
    if (!b.count(path)) continue;
    BOOST_TEST_INFO("installed file lost: " << path);
    BOOST_TEST(now.count(path) == 1u);
  }
}

// The journal and installed.manifest never ahead of the disk: every item the journal calls
// installed is at its final path with its digest, and when either records the new version nv as
// installed, nv is on disk whole.
void check_records_not_ahead(const SyncSite& s, uint64_t nv) {
  auto now = s.dst_files();
  auto whole = [&](const SignedManifest& sm, const std::string& who) {
    for (const auto& e : sm.manifest.entries) {
      BOOST_TEST_INFO(who << " says version " << sm.manifest.version << " is installed; " << e.path);
      auto it = now.find(e.path);
      BOOST_TEST((it != now.end() && it->second == digest_hex(e.digest)));
    }
  };
  Journal j(s.reg_state + "/journal.sqlite");
  for (const auto& it : j.items(s.channel)) {
    if (it.state != ItemState::installed) continue;
    BOOST_TEST_INFO("journal says installed: " << it.path);
    auto f = now.find(it.path);
    BOOST_TEST((f != now.end() && f->second == digest_hex(it.digest)));
  }
  ChannelRecord rec = j.channel_record(s.channel);
  if (rec.installed_version == nv) whole(s.manifest(nv), "the journal");
  const std::string im = s.reg_state + "/manifests/" + s.channel + "/installed.manifest";
  if (!exists(im)) return;
  SignedManifest installed = parse_manifest(read_file(im), im);
  if (installed.manifest.version == nv) whole(installed, "installed.manifest");
}

void check_center(const SyncSite& s, uint64_t v, uint64_t nv) {
  s.check_only_signed({v, nv});
  check_nothing_lost(s, v, nv);
  check_records_not_ahead(s, nv);
}

// One version's worth of changes: new files (some in a new directory), an edit of the big file
// (a delta), a rename (a local copy), a duplicate, a deletion.
void change(const std::string& root, int k, std::mt19937_64& rng) {
  for (int i = 0; i < 6; ++i)
    write_file(root + "/v" + std::to_string(k) + "/s" + std::to_string(i), random_bytes(100 + rng() % 30000, rng()));
  write_file(root + "/base/new" + std::to_string(k), random_bytes(2000 + rng() % 60000, rng()));
  std::string dup = random_bytes(40'000, rng());
  write_file(root + "/dup/a" + std::to_string(k), dup);
  write_file(root + "/dup/b" + std::to_string(k), dup);
  std::string big = read_file(root + "/big.bin");
  fs::remove(root + "/big.bin");
  write_file(root + "/big.bin", mutate(big, rng() % (big.size() - 100), "edit " + std::to_string(k)));
  fs::rename(root + "/base/f" + std::to_string(k), root + "/base/renamed" + std::to_string(k));
  fs::remove(root + "/base/f" + std::to_string(k + 12));
}

void seed_tree(const std::string& root) {
  for (int i = 0; i < 26; ++i) write_file(root + "/base/f" + std::to_string(i), random_bytes(300 + i * 250, i));
  write_file(root + "/big.bin", random_bytes(600'000, 77));
}

// The specs of one scenario: each named point once, then seeded cuts at any point.
std::string next_spec(const std::vector<std::string>& named, size_t* i, std::mt19937_64& rng, int any) {
  if (*i < named.size()) return "powercut:" + named[(*i)++] + ":1";
  return "powercut:*:" + std::to_string(1 + rng() % any);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_power_cut_forgets_what_kill_9_keeps) {
  auto prepare = [](const std::string& d) {
    fs::create_directories(d);
    write_file(d + "/replaced", "old content");
    write_file(d + "/removed", "still here after the cut");
  };
  TempDir t("powercut-self");
  const std::string pc = t / "powercut", k = t / "kill";
  prepare(pc);
  prepare(k);
  RunResult a = run({self_exe()}, {}, {"DISTD_POWERCUT_CHILD=" + pc, "DISTD_FAULT=powercut:selftest:1",
                                       "DISTD_POWERCUT_DIR=" + t.path()});
  BOOST_TEST(a.status == 137, a.err);
  BOOST_TEST(read_file(pc + "/durable") == "renamed in and its directory synced");
  BOOST_TEST(size_of(pc + "/unsynced") == 0u);  // the name came through open(), the bytes never synced
  BOOST_TEST(read_file(pc + "/synced") == "fsynced");
  BOOST_TEST(read_file(pc + "/replaced") == "old content");
  BOOST_TEST(exists(pc + "/new.tmp"));  // the rename went back
  BOOST_TEST(read_file(pc + "/removed") == "still here after the cut");
  BOOST_TEST(!exists(pc + "/made"));
  BOOST_TEST(read_file(pc + "/kept/deeper/inside") == "durable all the way");
  for (auto& e : fs::directory_iterator(t.path())) BOOST_TEST(e.path().filename().string().rfind("keep.", 0) != 0);

  // kill -9 at the same point: the page cache keeps all of it, so a kill test cannot tell.
  RunResult b = run({self_exe()}, {}, {"DISTD_POWERCUT_CHILD=" + k, "DISTD_FAULT=kill:selftest:1"});
  BOOST_TEST(b.status == 137, b.err);
  BOOST_TEST(read_file(k + "/unsynced") == "written, never fsynced");
  BOOST_TEST(read_file(k + "/synced") == "fsynced and a tail that was not");
  BOOST_TEST(read_file(k + "/replaced") == "new content");
  BOOST_TEST(!exists(k + "/removed"));
  BOOST_TEST(exists(k + "/made/inside"));
}

BOOST_AUTO_TEST_CASE(power_cuts_during_sync) {
  auto start = std::chrono::steady_clock::now();
  SyncSite s;
  std::mt19937_64 rng(20261202);
  seed_tree(s.src());
  uint64_t v = s.publish();
  s.start_hq();
  Tally t;
  const std::string log = s.tmp / "powercut.log";
  // The first sync too: the tree and the state directories are created on the way.
  for (const char* spec : {"powercut:after_install_rename:5", "powercut:after_record_manifest:1", "powercut:*:20"}) {
    RunResult r = s.sync({}, cut_env(spec, s.tmp.path(), log), 120);
    BOOST_TEST((r.status == 0 || r.status == 137), r.err);
    count(t, spec, r, log);
    BOOST_TEST_CONTEXT("first sync, after " << spec) {
      s.check_only_signed({v});
      check_records_not_ahead(s, v);
    }
  }
  s.sync_ok();
  s.check_converged(v);
  const std::vector<std::string> named = {"after_plan",          "chunk_written",       "after_verify",
                                          "before_install_rename", "after_install_rename", "after_delta_request",
                                          "after_patch",         "before_deletions",    "after_record_manifest",
                                          "write",               "before_rename"};
  size_t i = 0;
  for (int k = 2; k < 14 && (t.cuts < 45 || i < named.size()); ++k) {
    change(s.src(), k, rng);
    uint64_t nv = s.publish();
    for (int attempt = 0; attempt < 12; ++attempt) {
      std::string spec = next_spec(named, &i, rng, 60);
      RunResult r = s.sync({}, cut_env(spec, s.tmp.path(), log), 120);
      BOOST_TEST_INFO("version " << nv << ", " << spec << ": " << r.err);
      BOOST_TEST((r.status == 0 || r.status == 137));
      count(t, spec, r, log);
      BOOST_TEST_CONTEXT("after " << spec << " (version " << v << " -> " << nv << ")") check_center(s, v, nv);
      if (r.status == 0) break;
    }
    s.sync_ok();  // a rerun without faults converges, exactly to the new version
    s.check_converged(nv);
    v = nv;
  }
  report("sync", t, start);
  BOOST_TEST(t.cuts >= 40);
}

BOOST_AUTO_TEST_CASE(power_cuts_during_bundle_import) {
  auto start = std::chrono::steady_clock::now();
  BundleSite s;
  std::mt19937_64 rng(20261203);
  seed_tree(s.src());
  uint64_t v = s.publish();
  s.export_ok({});
  Tally t;
  const std::string log = s.tmp / "powercut.log";
  const std::vector<std::string> import = {"distctl", "bundle", "import", "--config", s.reg_cfg, "--from", s.stick,
                                           "--json"};
  for (const char* spec : {"powercut:after_batch_commit:1", "powercut:after_record_manifest:1", "powercut:*:15"}) {
    RunResult r = run(import, {}, cut_env(spec, s.tmp.path(), log), 120);  // the first import, cut
    BOOST_TEST((r.status == 0 || r.status == 137), r.err);
    count(t, spec, r, log);
    BOOST_TEST_CONTEXT("first import, after " << spec) {
      s.check_only_signed({v});
      check_records_not_ahead(s, v);
    }
  }
  RunResult first = s.import_();
  BOOST_REQUIRE_MESSAGE(first.status == 0, first.err);
  s.check_converged(v);
  const std::vector<std::string> named = {"after_plan",          "after_verify",       "before_install_rename",
                                          "after_install_rename", "before_batch_commit", "after_batch_commit",
                                          "before_deletions",    "after_record_manifest", "write", "before_rename"};
  size_t i = 0;
  for (int k = 2; k < 14 && (t.cuts < 40 || i < named.size()); ++k) {
    change(s.src(), k, rng);
    uint64_t nv = s.publish();
    fs::remove_all(s.stick);
    s.export_ok({"--since", std::to_string(v)});
    for (int attempt = 0; attempt < 12; ++attempt) {
      std::string spec = next_spec(named, &i, rng, 40);
      RunResult r = run(import, {}, cut_env(spec, s.tmp.path(), log), 120);
      BOOST_TEST_INFO("version " << nv << ", " << spec << ": " << r.err);
      BOOST_TEST((r.status == 0 || r.status == 137));
      count(t, spec, r, log);
      BOOST_TEST_CONTEXT("after " << spec << " (version " << v << " -> " << nv << ")") check_center(s, v, nv);
      if (r.status == 0) break;
    }
    RunResult again = s.import_();  // the same stick again, without faults
    BOOST_TEST(again.status == 0, again.err);
    s.check_converged(nv);
    v = nv;
  }
  report("bundle import", t, start);
  BOOST_TEST(t.cuts >= 35);
}

namespace {

// HQ after a cut: latest.manifest verifies, is its version's file, and has every object, whole;
// every object in the store is the bytes its name says (a temporary may be left).
uint64_t check_hq(const SyncSite& s, uint64_t at_least) {
  const std::string latest = s.public_dir() + "/channels/" + s.channel + "/latest.manifest";
  SignedManifest sm = verify_manifest(read_file(latest), load_public_key(s.pub), VerifyOptions{}, latest);
  BOOST_TEST(sm.manifest.version >= at_least);  // never back to an older version
  BOOST_TEST(read_file(s.manifest_file(sm.manifest.version)) == read_file(latest));
  for (const auto& e : sm.manifest.entries) {
    BOOST_TEST_INFO("entry " << e.path);
    BOOST_TEST(file_digest_hex(s.object(digest_hex(e.digest))) == digest_hex(e.digest));
  }
  for (auto& f : fs::recursive_directory_iterator(s.public_dir() + "/objects")) {
    std::string name = f.path().filename();
    if (!f.is_regular_file() || name[0] == '.') continue;
    BOOST_TEST(file_digest_hex(f.path()) == name, f.path());
  }
  return sm.manifest.version;
}

}  // namespace

BOOST_AUTO_TEST_CASE(power_cuts_during_hq_publish) {
  auto start = std::chrono::steady_clock::now();
  SyncSite s;
  std::mt19937_64 rng(20261204);
  seed_tree(s.src());
  Tally t;
  const std::string log = s.tmp / "powercut.log";
  // The first publish too: the state directories are created on the way.
  for (const char* spec : {"powercut:publish_after_latest:1", "powercut:publish_before_gc:1"}) {
    RunResult r = run({"distctl", "publish", "--channel", s.channel, "--config", s.hq_cfg, "--json"}, {},
                      cut_env(spec, s.tmp.path(), log), 120);
    BOOST_TEST((r.status == 0 || r.status == 137), r.err);  // 0: nothing left to publish
    count(t, spec, r, log);
    const std::string latest = s.public_dir() + "/channels/" + s.channel + "/latest.manifest";
    BOOST_TEST_INFO("first publish, after " << spec << ": the published version 1 is gone");
    BOOST_TEST(exists(latest));
    if (exists(latest)) check_hq(s, 1);
  }
  uint64_t v = s.publish();
  const std::vector<std::string> named = {"publish_after_scan",    "object_before_rename",    "publish_object",
                                          "publish_after_objects", "publish_before_manifest", "before_rename",
                                          "publish_before_latest", "publish_after_latest",    "publish_before_gc",
                                          "write"};
  size_t i = 0;
  for (int k = 2; k < 14 && (t.cuts < 30 || i < named.size()); ++k) {
    change(s.src(), k, rng);
    for (int attempt = 0; attempt < 4; ++attempt) {
      std::string spec = next_spec(named, &i, rng, 30);
      RunResult r = run({"distctl", "publish", "--channel", s.channel, "--config", s.hq_cfg, "--json"}, {},
                        cut_env(spec, s.tmp.path(), log), 120);
      BOOST_TEST_INFO("after version " << v << ", " << spec << ": " << r.err);
      BOOST_TEST((r.status == 0 || r.status == 137));
      count(t, spec, r, log);
      check_hq(s, v);
      if (r.status == 0) break;
    }
    uint64_t nv = s.publish();  // the next run completes the job
    BOOST_TEST(check_hq(s, v + 1) == nv);
    BOOST_TEST(s.manifest(nv).manifest.find("v" + std::to_string(k) + "/s0") != nullptr);
    v = nv;
  }
  report("hq publish", t, start);
  BOOST_TEST(t.cuts >= 25);
}

BOOST_AUTO_TEST_CASE(power_cuts_during_course_rebuild) {
  auto start = std::chrono::steady_clock::now();
  CourseSite s;
  std::mt19937_64 rng(20261205);
  auto mbz = [&](int n) {
    return make_mbz(s.tmp / ("v" + std::to_string(n) + ".mbz"),
                    {"--files", "10", "--file-size", "15000", "--version", std::to_string(n)});
  };
  auto members = [](const std::string& archive) { return list_archive(archive); };
  auto built = [&] {  // the version course-state.json says the archive was rebuilt for
    auto j = nlohmann::json::parse(read_file(s.reg_state + "/course-state.json"));
    return j["BIO101"].value("built", "");
  };
  std::string old = mbz(1);
  s.publish(old);
  s.start_hq();
  Tally t;
  const std::string log = s.tmp / "powercut.log";
  for (const char* spec : {"powercut:course_before_archive_rename:1", "powercut:*:12"}) {
    RunResult r = run({bin("distctl"), "sync", "--config", s.reg_cfg, "--json"}, {}, cut_env(spec, s.tmp.path(), log),
                      120);  // the first sync and rebuild, cut
    BOOST_TEST((r.status == 0 || r.status == 137), r.err);
    count(t, spec, r, log);
    BOOST_TEST((!exists(s.rebuilt("BIO101")) || members(s.rebuilt("BIO101")) == members(old)), spec);
  }
  s.sync();
  BOOST_REQUIRE(members(s.rebuilt("BIO101")) == members(old));
  const std::vector<std::string> named = {"course_before_archive_rename", "after_install_rename", "before_rename",
                                          "after_record_manifest", "write"};
  size_t i = 0;
  for (int k = 2; k < 16 && (t.cuts < 25 || i < named.size()); ++k) {
    std::string before = read_file(s.latest_manifest());
    const std::string built_before = built();
    std::string now = mbz(k);
    s.publish(now);
    const std::string after = read_file(s.latest_manifest());
    std::set<std::string> allowed;  // path + digest signed by the previous or the new version
    for (const std::string* bytes : std::vector<const std::string*>{&before, &after})
      for (const auto& e : parse_manifest(*bytes, "manifest").manifest.entries)
        allowed.insert(e.path + " " + digest_hex(e.digest));
    for (int attempt = 0; attempt < 6; ++attempt) {
      std::string spec = next_spec(named, &i, rng, 14);
      RunResult r = run({bin("distctl"), "sync", "--config", s.reg_cfg, "--json"}, {},
                        cut_env(spec, s.tmp.path(), log), 120);
      BOOST_TEST_INFO("course version " << k << ", " << spec << ": " << r.err);
      BOOST_TEST((r.status == 0 || r.status == 137));
      count(t, spec, r, log);
      // The rebuilt archive is the previous one or the new one, whole; never a part.
      auto m = members(s.rebuilt("BIO101"));
      BOOST_TEST((m == members(old) || m == members(now)));
      if (built() != built_before) BOOST_TEST((m == members(now)), "course-state.json is ahead of the archive");
      for (auto& f : fs::recursive_directory_iterator(s.center_tree())) {
        if (!f.is_regular_file()) continue;
        std::string rel = fs::relative(f.path(), s.center_tree()).string();
        if (rel.rfind(".distd-staging/", 0) == 0) continue;  // the default staging: no final path
        BOOST_TEST(allowed.count(rel + " " + file_digest_hex(f.path())) == 1u, rel);
      }
      if (r.status == 0) break;
    }
    s.sync();  // a rerun without faults rebuilds the new version
    BOOST_TEST((members(s.rebuilt("BIO101")) == members(now)));
    old = now;
  }
  report("course rebuild", t, start);
  BOOST_TEST(t.cuts >= 20);
}
