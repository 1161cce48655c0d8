// distd with role regional: probes HQ with backoff while the link is down, syncs as soon as it
// answers, records link down/up in the journal, stops cleanly on SIGTERM. And the bandwidth cap.
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;

BOOST_AUTO_TEST_CASE(daemon_waits_for_the_link_then_converges) {
  SyncSite s("probe_min_seconds = 1\nprobe_max_seconds = 2");
  for (int i = 0; i < 5; ++i) write_file(s.src() + "/f" + std::to_string(i), random_bytes(50'000 + i, i));
  s.publish();
  s.start_hq();
  FlakyLink& link = s.start_link({.seed = 3, .down = true});
  Process daemon({"distd", "--config", s.reg_cfg}, s.tmp / "regional.log");
  std::this_thread::sleep_for(std::chrono::seconds(3));
  BOOST_TEST(!exists(s.dst() + "/f0"));
  link.up();
  bool done = false;
  for (int i = 0; i < 150 && !done; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    done = exists(s.dst() + "/f4") && s.dst_files().size() == 5;
  }
  BOOST_TEST_INFO("daemon log: " << daemon.log());
  BOOST_REQUIRE(done);
  // Wait for the install to be recorded, then stop.
  nlohmann::json js;
  for (int i = 0; i < 50; ++i) {
    js = nlohmann::json::parse(run({"distctl", "status", "--config", s.reg_cfg, "--json"}).out);
    if (js["channels"][0]["installed_version"].get<uint64_t>() == 1u) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  BOOST_TEST(daemon.stop(15, 10) == 0);
  s.check_converged(1);
  BOOST_TEST(js["channels"][0]["installed_version"].get<uint64_t>() == 1u);
  // Link history, newest first: up after down.
  BOOST_REQUIRE(js["link"].size() >= 2u);
  BOOST_TEST(js["link"][0]["up"].get<bool>() == true);
  BOOST_TEST(js["link"][1]["up"].get<bool>() == false);
  BOOST_TEST(daemon.log().find("unreachable") != std::string::npos, daemon.log());
}

BOOST_AUTO_TEST_CASE(bandwidth_limit_is_honoured) {
  SyncSite s("bandwidth_limit = 250000");
  write_file(s.src() + "/big", random_bytes(1'000'000, 1));
  s.publish();
  s.start_hq();
  auto t0 = std::chrono::steady_clock::now();
  s.sync_ok();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  BOOST_TEST_MESSAGE("1 MB at 250 kB/s took " << secs << " s");
  BOOST_TEST(secs > 3.0);
  s.check_converged(1);
}
