// HQ's answers to a center's posts, as the center parses them (distd/forum/post.h): the
// envelope and the answers body, and a post as the plugin hands it to the center
// (post_from_json with from_plugin). Any input gives a value or distd::Error, never a JSON
// library exception.
#include "distd/forum/post.h"
#include "manifest/error.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(distd::fuzz::as_text(data, size));
  auto answers = [](const std::string& body) {
    try {
      distd::forum::AnswersBody b = distd::forum::parse_answers_body(body);
      for (auto& a : b.answers) {
        FUZZ_CHECK(distd::forum::is_uuid(a.uuid));
        FUZZ_CHECK(a.state != distd::forum::PostState::queued);
        FUZZ_CHECK(a.state != distd::forum::PostState::applied || a.postid > 0);
      }
      std::string again = distd::forum::answers_body(b.hq_time, b.answers);
      FUZZ_CHECK(distd::forum::parse_answers_body(again).answers.size() == b.answers.size());
    } catch (const distd::Error&) {
    }
  };
  try {
    answers(distd::forum::parse_envelope(in, "answers").body);
  } catch (const distd::Error&) {
  }
  answers(in);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_discarded()) {
    try {
      (void)distd::forum::post_from_json(j, true);
    } catch (const distd::Error&) {
    }
  }
  return 0;
}
