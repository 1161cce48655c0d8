// HQ's public/ directory served by a real nginx (no distd in front): full downloads and Range
// resume over a cutting link work, and deltas fall back to whole objects (POST answers 405).
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/support/nginx_server.h"
#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;
namespace fs = std::filesystem;

BOOST_AUTO_TEST_CASE(nginx_full_downloads_resume_and_delta_fallback) {
  if (!exists("/usr/sbin/nginx")) {
    BOOST_TEST_MESSAGE("skipped: /usr/sbin/nginx is not installed");
    return;
  }
  SyncSite s;
  std::string big = random_bytes(2'500'000, 3);
  write_file(s.src() + "/big.bin", big);
  uint64_t content = big.size();
  for (int i = 0; i < 10; ++i) {
    std::string d = random_bytes(30'000 + i, 50 + i);
    write_file(s.src() + "/small/" + std::to_string(i), d);
    content += d.size();
  }
  s.publish();
  NginxServer web(s.public_dir());
  FlakyLink link(web.port(), {.seed = 5, .cut_every = 400'000});
  s.set_hq_url(link.url());

  auto r1 = s.sync_ok();
  s.check_converged(1);
  FlakyStats st = link.stats();
  BOOST_TEST_MESSAGE("nginx: content " << content << " B, through the link " << st.bytes_down << " B, " << st.cuts
                                       << " cuts");
  BOOST_TEST(st.cuts >= 3);
  BOOST_TEST(static_cast<uint64_t>(st.bytes_down) < content + content / 20 + 50'000);

  // An edit in the big file: nginx cannot compute deltas, the whole object comes instead.
  fs::remove(s.src() + "/big.bin");
  write_file(s.src() + "/big.bin", mutate(big, 1'000'000, "edited at HQ"));
  s.publish();
  auto r2 = s.sync_ok();
  s.check_converged(2);
  BOOST_TEST(r2["delta_fallbacks"].get<uint64_t>() == 1u);
  BOOST_TEST(r2["full"].get<uint64_t>() == 1u);
  BOOST_TEST(r2["delta"].get<uint64_t>() == 0u);
  BOOST_TEST(web.access_log().find("POST /deltas") != std::string::npos);
}
