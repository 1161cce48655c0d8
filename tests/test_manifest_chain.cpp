// Version chains (manifest/chain.h), the pure check a bundle import makes before installing.
#include <boost/test/unit_test.hpp>

#include "manifest/chain.h"

using namespace distd;

namespace {

SignedManifest m(uint64_t version, std::optional<Digest> previous, uint8_t body) {
  SignedManifest s;
  s.manifest.channel = "c";
  s.manifest.version = version;
  s.manifest.previous = previous;
  s.body_digest.fill(body);
  return s;
}

Digest d(uint8_t b) {
  Digest x{};
  x.fill(b);
  return x;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_run_that_continues_the_installed_version) {
  auto v3 = m(3, d(2), 3), v4 = m(4, d(3), 4), v5 = m(5, d(4), 5);
  BOOST_TEST(!check_chain({&v3, &v4, &v5}, 2, d(2)));
  BOOST_TEST(!check_chain({&v3, &v4, &v5}, 0, std::nullopt));  // nothing installed yet
}

BOOST_AUTO_TEST_CASE(a_broken_link_inside_the_run) {
  auto v3 = m(3, d(2), 3), v4 = m(4, d(9), 4);
  auto br = check_chain({&v3, &v4}, 2, d(2));
  BOOST_REQUIRE(br);
  BOOST_TEST(br->version == 4u);
  BOOST_TEST(br->follows == 3u);
  BOOST_TEST(!br->of_installed);
  auto none = m(4, std::nullopt, 4);  // no "previous" at all breaks it too
  BOOST_TEST(check_chain({&v3, &none}, 2, d(2)).has_value());
}

BOOST_AUTO_TEST_CASE(a_run_from_another_history) {
  auto v3 = m(3, d(7), 3);
  auto br = check_chain({&v3}, 2, d(2));
  BOOST_REQUIRE(br);
  BOOST_TEST(br->of_installed);
  BOOST_TEST(br->follows == 2u);
}

BOOST_AUTO_TEST_CASE(gaps_are_not_links) {
  auto v3 = m(3, d(2), 3), v6 = m(6, d(5), 6);  // 4 and 5 not in the run: nothing to compare
  BOOST_TEST(!check_chain({&v3, &v6}, 2, d(2)));
  BOOST_TEST(!check_chain({&v6}, 2, d(2)));  // does not follow the installed one directly
}
