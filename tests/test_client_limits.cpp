// Unit-level checks of the center's HTTP client and delta client, each for a bug fixed:
// an answer read into memory past its cap is Error{corrupt} in distd's own words (not a
// "signed size" mismatch a manifest does not have), and a delta is never applied to a basis that
// is a symbolic link (the same rule make_signature follows).
#include <fcntl.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>

#include "distd/net/http_client.h"
#include "distd/delta/rsync.h"
#include "manifest/error.h"
#include "tests/support/nginx_server.h"
#include "tests/support/test_support.h"

using namespace distd;
using namespace distd::test;

BOOST_AUTO_TEST_CASE(memory_answer_over_its_cap_is_corrupt_not_a_signed_size) {
  TempDir root("www");
  write_file(root / "channels/c/latest.manifest", std::string(10'000, 'x'));
  NginxServer web(root.path());
  HttpClient http(web.url(), HttpOptions{});
  auto ok = http.get("/channels/c/latest.manifest", 20'000);
  BOOST_TEST(ok.status == 200);
  BOOST_TEST(ok.body.size() == 10'000u);
  try {
    http.get("/channels/c/latest.manifest", 1'000);
    BOOST_FAIL("expected an error past the cap");
  } catch (const Error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == static_cast<int>(Errc::corrupt));
    std::string m = e.what();
    BOOST_TEST(m.find("is larger than 1000 bytes, the most distd accepts for it") != std::string::npos, m);
    BOOST_TEST(m.find("signed size") == std::string::npos, m);
  }
}

BOOST_AUTO_TEST_CASE(delta_basis_behind_a_link_is_refused) {
  TempDir d("delta");
  write_file(d / "real", random_bytes(50'000, 1));
  std::filesystem::create_symlink(d / "real", d / "basis");
  write_file(d / "delta", "not even a delta");
  int out = ::open((d / "out").c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  BOOST_REQUIRE(out >= 0);
  uint64_t written = 0;
  try {
    apply_delta(d / "basis", d / "delta", out, d / "out", 50'000, &written);
    BOOST_FAIL("expected the link to be refused");
  } catch (const Error& e) {
    std::string m = e.what();
    BOOST_TEST(m.find("cannot open the delta basis") != std::string::npos, m);
  }
  ::close(out);
  BOOST_CHECK_THROW(make_signature(d / "basis"), Error);  // the rule it now shares
}

namespace {
std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
}  // namespace

// HQ checks a signature before librsync loads it (check_signature, reported by the fuzzer
// fuzz_rsync_signature): blocks that share a weak sum but differ cost quadratic time.
BOOST_AUTO_TEST_CASE(signature_of_colliding_blocks_is_refused_real_ones_pass) {
  std::string sig = be32(0x72730147) + be32(1024) + be32(4);  // RS_RK_BLAKE2_SIG_MAGIC
  for (uint32_t i = 0; i < kMaxWeakCollisions + 1; ++i) sig += be32(0x12345678) + be32(i);
  try {
    check_signature(sig);
    BOOST_FAIL("expected the colliding signature to be refused");
  } catch (const Error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == static_cast<int>(Errc::corrupt));
    BOOST_TEST(std::string(e.what()).find("share the weak checksum") != std::string::npos, e.what());
  }
  BOOST_CHECK_THROW(check_signature(sig.substr(0, 11)), Error);         // no header
  BOOST_CHECK_THROW(check_signature(sig.substr(0, sig.size() - 1)), Error);  // a cut block
  BOOST_CHECK_THROW(check_signature(be32(0x01020304) + be32(1024) + be32(4)), Error);  // magic
  // What distd itself sends passes: random content, and a file of zeros (identical blocks).
  BOOST_CHECK_NO_THROW(check_signature(signature_of_bytes(random_bytes(1 << 20, 7))));
  BOOST_CHECK_NO_THROW(check_signature(signature_of_bytes(std::string(8 << 20, '\0'))));
  BOOST_CHECK_NO_THROW(check_signature(signature_of_bytes("")));
}
