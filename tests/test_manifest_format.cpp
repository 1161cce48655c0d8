// The signed manifest format: determinism, signatures, and refusal of every kind of bad input.
#include <boost/test/unit_test.hpp>
#include <random>

#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/manifest.h"
#include "manifest/path.h"

using namespace distd;

namespace {

Entry entry(std::string path, std::string content) {
  Entry e;
  e.path = std::move(path);
  e.size = content.size();
  e.digest = digest_bytes(content);
  return e;
}

Manifest sample() {
  Manifest m;
  m.channel = "moodledata";
  m.version = 3;
  m.created = 1'790'000'000;
  m.expires = m.created + 90 * 86400;
  m.previous = digest_bytes("v2");
  m.entries = {entry("filedir/ab/cd/abcd", "hello"), entry("course/é ü/na me%.txt", "x"),
               entry("a", ""), entry("filedir/00/11/0011", std::string(1000, 'z'))};
  m.entries[3].mode = 0755;
  m.normalize();
  return m;
}

struct Keys {
  KeyPair hq = generate_keypair();
  KeyPair other = generate_keypair();
};

Errc code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  BOOST_FAIL("no error was thrown");
  return Errc::internal;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

VerifyOptions at(int64_t now) {
  VerifyOptions o;
  o.now = now;
  return o;
}

// Signs an arbitrary body the way sign_manifest does, to build hostile but validly signed input.
std::string sign_raw(const std::string& body, const SecretKey& k) {
  return body + "signature ed25519 " + digest_hex(k.public_key().key_id()) + " " + to_hex(sign_detached(k, body)) + "\n";
}

}  // namespace

BOOST_AUTO_TEST_CASE(canonical_bytes_are_deterministic_and_sorted) {
  Manifest a = sample(), b = sample();
  std::reverse(b.entries.begin(), b.entries.end());
  BOOST_TEST((code_of([&] { canonical_body(b); }) == Errc::internal));  // unsorted input is a caller bug
  b.normalize();
  BOOST_TEST(canonical_body(a) == canonical_body(b));
  std::string body = canonical_body(a);
  BOOST_TEST(body.find("distd-manifest 1\nchannel moodledata\nversion 3\n") == 0u);
  // Sorted by raw path bytes: "a" < "course/..." < "filedir/00" < "filedir/ab".
  BOOST_TEST(body.find(" a\n") < body.find("course/"));
  BOOST_TEST(body.find("course/") < body.find("filedir/00"));
  // Spaces and '%' are escaped, UTF-8 is kept byte-exact.
  BOOST_TEST(body.find("course/é%20ü/na%20me%25.txt") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(sign_then_verify_round_trips_every_field) {
  Keys k;
  Manifest m = sample();
  std::string file = sign_manifest(m, k.hq.sec);
  SignedManifest sm = verify_manifest(file, k.hq.pub, at(m.created + 10), "t");
  BOOST_TEST(sm.manifest.channel == "moodledata");
  BOOST_TEST(sm.manifest.version == 3u);
  BOOST_TEST(sm.manifest.entries.size() == 4u);
  BOOST_TEST(sm.manifest.find("course/é ü/na me%.txt") != nullptr);
  BOOST_TEST(sm.manifest.find("filedir/00/11/0011")->mode == 0755u);
  BOOST_TEST((sm.manifest.previous == digest_bytes("v2")));
  BOOST_TEST((sm.body_digest == digest_bytes(canonical_body(m))));
  // Parsing then serialising gives the same bytes: the format has one spelling.
  BOOST_TEST(sign_manifest(sm.manifest, k.hq.sec) == file);
}

BOOST_AUTO_TEST_CASE(every_single_flipped_byte_is_refused) {
  Keys k;
  Manifest m = sample();
  std::string file = sign_manifest(m, k.hq.sec);
  for (size_t i = 0; i < file.size(); ++i) {
    for (unsigned char bit : {0x01, 0x20, 0x80}) {
      std::string bad = file;
      bad[i] = static_cast<char>(bad[i] ^ bit);
      try {
        verify_manifest(bad, k.hq.pub, at(m.created), "t");
        BOOST_FAIL("flipped byte " << i << " accepted");
      } catch (const Error& e) {
        BOOST_TEST((e.code() == Errc::corrupt || e.code() == Errc::bad_signature || e.code() == Errc::unsafe_path),
                   "byte " << i << ": " << e.what());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(every_truncation_is_refused_as_corrupt) {
  Keys k;
  std::string file = sign_manifest(sample(), k.hq.sec);
  for (size_t len = 0; len < file.size(); ++len) {
    Errc c = code_of([&] { verify_manifest(file.substr(0, len), k.hq.pub, at(0), "t"); });
    BOOST_TEST((c == Errc::corrupt), "length " << len);
  }
  BOOST_TEST(message_of([&] { verify_manifest(file.substr(0, file.size() / 2), k.hq.pub, at(0), "t"); })
                 .find("truncated") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(another_key_is_refused_naming_both_key_ids) {
  Keys k;
  Manifest m = sample();
  std::string file = sign_manifest(m, k.other.sec);
  std::string msg = message_of([&] { verify_manifest(file, k.hq.pub, at(m.created), "t"); });
  BOOST_TEST(msg.find("signed by key " + k.other.pub.short_id()) != std::string::npos, msg);
  BOOST_TEST(msg.find("trusts key " + k.hq.pub.short_id()) != std::string::npos, msg);
  // A signature made by another key but labelled with ours.
  std::string forged = file;
  forged.replace(forged.find("signature ed25519 ") + 18, 64, digest_hex(k.hq.pub.key_id()));
  BOOST_TEST((code_of([&] { verify_manifest(forged, k.hq.pub, at(m.created), "t"); }) == Errc::bad_signature));
}

BOOST_AUTO_TEST_CASE(expiry_and_slack) {
  Keys k;
  Manifest m = sample();
  std::string file = sign_manifest(m, k.hq.sec);
  BOOST_TEST((code_of([&] { verify_manifest(file, k.hq.pub, at(m.expires + 1), "t"); }) == Errc::expired));
  VerifyOptions slack = at(m.expires + 10 * 86400);
  slack.expiry_slack_seconds = 30 * 86400;
  BOOST_CHECK_NO_THROW(verify_manifest(file, k.hq.pub, slack, "t"));
  slack.now = m.expires + 31 * 86400;
  std::string msg = message_of([&] { verify_manifest(file, k.hq.pub, slack, "t"); });
  BOOST_TEST(msg.find("expired on") != std::string::npos, msg);
}

BOOST_AUTO_TEST_CASE(hostile_paths_are_refused_even_when_validly_signed) {
  Keys k;
  for (std::string path : {"../etc/passwd", "/abs", "a/../b", "a//b", "./a", "a/.", "a/"}) {
    Manifest m = sample();
    m.entries = {entry("x", "1")};
    std::string body = canonical_body(m);
    body.replace(body.find(" x\n") + 1, 1, encode_path(path));
    std::string file = sign_raw(body, k.hq.sec);
    std::string msg = message_of([&] { verify_manifest(file, k.hq.pub, at(m.created), "t"); });
    BOOST_TEST(!msg.empty(), path);
    BOOST_TEST((code_of([&] { verify_manifest(file, k.hq.pub, at(m.created), "t"); }) == Errc::unsafe_path), path << ": " << msg);
    // And building such a manifest is refused too.
    Manifest b = sample();
    b.entries = {entry(path, "1")};
    BOOST_TEST((code_of([&] { canonical_body(b); }) == Errc::unsafe_path), path);
  }
}

BOOST_AUTO_TEST_CASE(duplicates_unsorted_absurd_sizes_and_garbage_are_refused) {
  Keys k;
  Manifest m = sample();
  m.entries = {entry("a", "1"), entry("b", "2")};
  std::string body = canonical_body(m);
  // Duplicate path.
  {
    std::string dup = body;
    auto lb = dup.find(" b\n");
    dup.replace(lb + 1, 1, "a");
    std::string msg = message_of([&] { verify_manifest(sign_raw(dup, k.hq.sec), k.hq.pub, at(m.created), "t"); });
    BOOST_TEST(msg.find("appears twice") != std::string::npos, msg);
  }
  // Unsorted.
  {
    Manifest u = m;
    std::string ub = canonical_body(u);
    auto p1 = ub.find("entries 2\n") + 10;
    auto e1 = ub.find('\n', p1) + 1;
    auto e2 = ub.find('\n', e1) + 1;
    std::string swapped = ub.substr(0, p1) + ub.substr(e1, e2 - e1) + ub.substr(p1, e1 - p1) + ub.substr(e2);
    std::string msg = message_of([&] { verify_manifest(sign_raw(swapped, k.hq.sec), k.hq.pub, at(m.created), "t"); });
    BOOST_TEST(msg.find("not sorted") != std::string::npos, msg);
  }
  // Absurd size.
  {
    std::string big = body;
    auto pos = big.find(" 1 0644 a\n");
    big.replace(pos + 1, 1, "18446744073709551615");
    std::string msg = message_of([&] { verify_manifest(sign_raw(big, k.hq.sec), k.hq.pub, at(m.created), "t"); });
    BOOST_TEST(msg.find("absurd size") != std::string::npos, msg);
  }
  // Entry count that the file cannot hold.
  {
    std::string lie = body;
    lie.replace(lie.find("entries 2"), 9, "entries 9999999");
    BOOST_TEST((code_of([&] { verify_manifest(sign_raw(lie, k.hq.sec), k.hq.pub, at(m.created), "t"); }) == Errc::corrupt));
  }
  // Non-canonical path encodings: lower-case hex, an escaped byte that needs no escape.
  for (std::string enc : {"a%2fb", "%41", "a%2", "a%"}) {
    std::string nc = body;
    nc.replace(nc.find(" 0644 b\n") + 6, 1, enc);
    BOOST_TEST((code_of([&] { verify_manifest(sign_raw(nc, k.hq.sec), k.hq.pub, at(m.created), "t"); }) == Errc::corrupt), enc);
  }
  // Garbage.
  for (std::string g : {std::string("garbage"), std::string(1000, '\0'), std::string("distd-manifest 2\n"),
                        std::string("\xff\xfe\x00\x01", 4)}) {
    BOOST_TEST((code_of([&] { verify_manifest(g, k.hq.pub, at(0), "t"); }) == Errc::corrupt));
  }
}

BOOST_AUTO_TEST_CASE(random_mutations_never_crash_and_never_verify) {
  // A deterministic smoke version of the libFuzzer target (tests/fuzz/fuzz_manifest_parse.cpp).
  Keys k;
  Manifest m = sample();
  std::string file = sign_manifest(m, k.hq.sec);
  std::mt19937_64 rng(20261127);
  int accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s = file;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t pos = rng() % s.size();
      switch (rng() % 4) {
        case 0: s[pos] = static_cast<char>(rng()); break;
        case 1: s.erase(pos, 1 + rng() % 8); break;
        case 2: s.insert(pos, std::string(1 + rng() % 4, static_cast<char>(rng()))); break;
        case 3: s.insert(pos, s.substr(rng() % s.size(), 1 + rng() % 40)); break;
      }
      if (s.empty()) s = "x";
    }
    try {
      parse_manifest(s, "fuzz");
      verify_manifest(s, k.hq.pub, at(m.created), "fuzz");
      if (s != file) ++accepted;
    } catch (const Error&) {
    }
  }
  BOOST_TEST(accepted == 0);
}

BOOST_AUTO_TEST_CASE(path_encoding_round_trips_all_bytes) {
  std::string all;
  for (int c = 1; c < 256; ++c)
    if (c != '/') all += static_cast<char>(c);
  auto dec = decode_path(encode_path(all));
  BOOST_REQUIRE(dec.has_value());
  BOOST_TEST(*dec == all);
  BOOST_TEST(encode_path("a b\n%") == "a%20b%0A%25");
  BOOST_TEST(!unsafe_path_reason(std::string_view("a\0b", 3)).empty());
}
