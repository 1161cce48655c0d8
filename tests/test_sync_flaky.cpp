// Regional sync over a flaky link (tests/tools/flaky_proxy between distctl sync and distd):
// cuts every few hundred KB resume without starting over; a link that stays dead longer than
// the client's timeouts fails clearly and the next run resumes; a damaged delta from HQ is
// rejected and replaced by the whole object.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

namespace {

uint64_t make_tree(const std::string& root) {
  uint64_t total = 0;
  for (int i = 0; i < 30; ++i) {
    std::string data = random_bytes(2000 + i * 500, i);
    write_file(root + "/small/" + std::to_string(i), data);
    total += data.size();
  }
  for (int i = 0; i < 5; ++i) {
    std::string data = random_bytes((1 << 20) + i * 77777, 1000 + i);
    write_file(root + "/big/" + std::to_string(i) + ".bin", data);
    total += data.size();
  }
  return total;
}

}  // namespace

BOOST_AUTO_TEST_CASE(cuts_every_few_hundred_kb_resume_in_one_run) {
  SyncSite s;
  uint64_t content = make_tree(s.src());
  s.publish();
  s.start_hq();
  FlakyLink& link = s.start_link({.seed = 42, .cut_every = 300'000});
  auto r = s.sync_ok();
  s.check_converged(1);
  FlakyStats st = link.stats();
  BOOST_TEST_MESSAGE("content " << content << " B, through the link " << st.bytes_down << " B, " << st.cuts
                                << " cuts");
  BOOST_TEST(st.cuts >= 10);
  // Resume works: what crossed the link is the content plus headers and the manifest, not
  // a restart per cut.
  BOOST_TEST(static_cast<uint64_t>(st.bytes_down) < content + content / 20 + 100'000);
  BOOST_TEST(r["bytes_received"].get<uint64_t>() < content + content / 50 + 20'000);
}

BOOST_AUTO_TEST_CASE(dead_link_fails_clearly_then_next_run_resumes) {
  SyncSite s;
  uint64_t content = make_tree(s.src());
  s.publish();
  s.start_hq();
  // After 2.5 MB the link forwards nothing for a minute: longer than connect/low-speed timeouts
  // (3 s) times the attempts.
  FlakyLink& link = s.start_link({.seed = 7, .blackhole_after = 2'500'000, .blackhole_secs = 60});
  RunResult r = s.sync({}, {}, 90);
  BOOST_TEST_MESSAGE("dead link run said: " << r.err);
  BOOST_TEST(r.status == 12, r.err);  // network
  BOOST_TEST(r.err.find("stalled") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("resumes") != std::string::npos, r.err);
  s.check_only_signed({1});
  link.blackhole(0);  // the link comes back
  RunResult st = run({"distctl", "status", "--config", s.reg_cfg, "--json"});
  auto js = nlohmann::json::parse(st.out);
  BOOST_TEST(js["channels"][0]["pending_files"].get<uint64_t>() > 0u);
  BOOST_TEST(!js["channels"][0]["last_error"].is_null());
  // The text shows how far the cut download got, and its attempts.
  RunResult txt = run({"distctl", "status", "--config", s.reg_cfg});
  BOOST_TEST(std::regex_search(txt.out, std::regex(R"(\(\S+ \S+, at \S+ \S+, [0-9]+ attempts?\): )")), txt.out);

  auto r2 = s.sync_ok();
  s.check_converged(1);
  FlakyStats fs_ = link.stats();
  BOOST_TEST_MESSAGE("content " << content << " B, through the link over two runs " << fs_.bytes_down << " B");
  BOOST_TEST(static_cast<uint64_t>(fs_.bytes_down) < content + content / 20 + 100'000);
}

BOOST_AUTO_TEST_CASE(damaged_delta_is_rejected_and_whole_object_fetched) {
  SyncSite s;
  std::string big = random_bytes(2 << 20, 9);
  write_file(s.src() + "/big.bin", big);
  write_file(s.src() + "/small", "x");
  s.publish();
  s.start_hq();
  s.sync_ok();
  // Keep the center's v1 state to replay the same delta request later.
  fs::copy(s.tmp / "center", s.tmp / "center-v1", fs::copy_options::recursive);
  fs::copy(s.reg_state, s.tmp / "state-v1", fs::copy_options::recursive);

  fs::remove(s.src() + "/big.bin");
  write_file(s.src() + "/big.bin", mutate(big, 1 << 20, "edited"));
  s.publish();
  auto r1 = s.sync_ok();
  BOOST_TEST(r1["delta"].get<uint64_t>() == 1u);
  s.check_converged(2);

  // Back to v1 at the center; damage the delta HQ keeps (same request -> same id).
  fs::remove_all(s.tmp / "center");
  fs::remove_all(s.reg_state);
  fs::copy(s.tmp / "center-v1", s.tmp / "center", fs::copy_options::recursive);
  fs::copy(s.tmp / "state-v1", s.reg_state, fs::copy_options::recursive);
  int damaged = 0;
  for (auto& f : fs::directory_iterator(s.public_dir() + "/deltas")) {
    std::string d = read_file(f.path());
    for (size_t i = d.size() / 2; i < d.size() && i < d.size() / 2 + 64; ++i) d[i] = static_cast<char>(d[i] ^ 0x5a);
    fs::remove(f.path());
    write_file(f.path(), d);
    ++damaged;
  }
  BOOST_REQUIRE(damaged >= 1);
  auto r2 = s.sync_ok();
  s.check_converged(2);
  BOOST_TEST(r2["delta_fallbacks"].get<uint64_t>() == 1u);
  BOOST_TEST(r2["full"].get<uint64_t>() == 1u);
}
