// Forum posts as HQ receives them from a center, over the link or sealed on a stick
// (distd/forum/post.h): the envelope, then the posts body (before and after the signature check
// the same parser runs; the check itself is libsodium's). Any input gives a body or
// distd::Error; what parses obeys the limits and writes out to a body that parses back the same.
#include "distd/forum/post.h"
#include "manifest/error.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

void check_body(const std::string& body) {
  distd::forum::PostsBody b;
  try {
    b = distd::forum::parse_posts_body(body);
  } catch (const distd::Error&) {
    return;
  }
  FUZZ_CHECK(b.posts.size() <= distd::forum::kMaxPostsPerRequest);
  for (auto& p : b.posts) {
    FUZZ_CHECK(p.site == b.site);
    FUZZ_CHECK(distd::forum::is_uuid(p.uuid));
    FUZZ_CHECK(p.message.size() <= distd::forum::kMaxMessageBytes);
  }
  std::string again = distd::forum::posts_body(b.site, b.sent_at, b.posts);
  distd::forum::PostsBody b2 = distd::forum::parse_posts_body(again);
  FUZZ_CHECK(distd::forum::posts_body(b2.site, b2.sent_at, b2.posts) == again);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(distd::fuzz::as_text(data, size));
  try {
    distd::forum::Unsealed u = distd::forum::parse_envelope(in, "posts");
    (void)distd::forum::verify_unsealed(u, distd::fuzz::fixed_keypair().pub);
    check_body(u.body);
  } catch (const distd::Error&) {
  }
  check_body(in);
  return 0;
}
