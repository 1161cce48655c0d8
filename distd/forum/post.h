// A forum post on its way from a center to HQ, and HQ's answer for it (docs/formats/post.md).
//
// The same JSON shapes cross every boundary: the plugin's local channel, the outbox and the inbox
// rows, the signed body over the link, the sealed file on a stick, and the PHP adapter's stdin and
// stdout. Validation is here, once: whatever arrives from outside goes through post_from_json().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "manifest/keys.h"

namespace distd::forum {

inline constexpr size_t kMaxSubjectChars = 255;
inline constexpr size_t kMaxMessageBytes = 65536;       // default of [forum] max_message_bytes
inline constexpr size_t kMaxPostJsonBytes = 128 * 1024;  // one post as JSON, all fields
inline constexpr size_t kMaxPostsPerRequest = 200;      // over the link; the rest go next

enum class PostState { queued, sent, applied, refused };
const char* state_name(PostState s);
std::optional<PostState> parse_state(const std::string& s);
inline bool is_final(PostState s) { return s == PostState::applied || s == PostState::refused; }

struct Post {
  std::string uuid;     // lower-case RFC 4122 text, made by the plugin when it shows the form
  std::string site;     // the center that took it
  int64_t userid = 0;
  std::string kind;     // "reply" or "discussion"
  int64_t parent = 0;   // reply: the post replied to
  int64_t discussion = 0;
  int64_t forum = 0;
  int64_t groupid = -1;
  std::string subject, message;
  int64_t format = 1;   // Moodle's FORMAT_HTML
  int64_t created = 0;  // the center's clock when distd took it
  int64_t retry = 0;    // raised by `distctl post retry`: HQ applies a refused post again only for a higher one
};

// HQ's word on one post.
struct Answer {
  std::string uuid;
  PostState state = PostState::sent;
  int64_t postid = 0, discussion = 0, applied = 0;  // applied: HQ's clock
  std::string reason, reason_text;                  // refused: a code from the contract and its words
};

// Throws Error{corrupt} naming the field when j is not a well-formed post within the limits.
// from_plugin: the plugin sends no site, created or retry (distd sets them).
Post post_from_json(const nlohmann::json& j, bool from_plugin, size_t max_message_bytes = kMaxMessageBytes);
nlohmann::json to_json(const Post& p);
Answer answer_from_json(const nlohmann::json& j);
nlohmann::json to_json(const Answer& a);
bool is_uuid(const std::string& s);

// The signed body that goes over the link and inside a sealed stick file.
std::string posts_body(const std::string& site, int64_t sent_at, const std::vector<Post>& posts);
struct PostsBody {
  std::string site;
  int64_t sent_at = 0;
  std::vector<Post> posts;
};
// Throws Error{corrupt} on a malformed body, Error{bad_signature} on a post whose site is not the
// body's. max_posts: kMaxPostsPerRequest over the link; a stick carries up to kMaxPostsPerStick.
inline constexpr size_t kMaxPostsPerStick = 20000;
PostsBody parse_posts_body(const std::string& body, size_t max_message_bytes = kMaxMessageBytes,
                           size_t max_posts = kMaxPostsPerRequest);

std::string answers_body(int64_t hq_time, const std::vector<Answer>& answers);
struct AnswersBody {
  int64_t hq_time = 0;
  std::vector<Answer> answers;
};
AnswersBody parse_answers_body(const std::string& body);

// The signed envelope, the same over the link and (sealed) on a stick:
//   distd-<kind> 1\nsite <site>\nsignature <hex Ed25519 signature of body>\n\n<body>
// kind: "posts" (signed by the center's key) or "answers" (signed by HQ's key).
std::string signed_envelope(const std::string& kind, const std::string& site, const std::string& body,
                            const SecretKey& signer);
struct Unsealed {
  std::string site, body;
  Signature signature{};
};
// Throws Error{corrupt} when text is not a well-formed envelope of kind. The caller checks the
// signature against the key it trusts for `site` (verify_unsealed).
Unsealed parse_envelope(const std::string& text, const std::string& kind);

// A file for a stick: the envelope sealed (crypto_box_seal) to `to`.
std::string seal_file(const std::string& kind, const std::string& site, const std::string& body,
                      const SecretKey& signer, const PublicKey& to);
// Opens a file sealed to `mine`. Throws Error{bad_signature} when it was not sealed to this key or
// was cut or altered, Error{corrupt} when what is inside is not an envelope of kind.
Unsealed open_sealed(const std::string& data, const std::string& kind, const SecretKey& mine);
bool verify_unsealed(const Unsealed& u, const PublicKey& signer);

std::string signature_hex(const Signature& s);
// Throws Error{corrupt} unless hex is 128 hex digits.
Signature parse_signature(const std::string& hex);

}  // namespace distd::forum
