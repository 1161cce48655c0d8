#include "distd/forum/post.h"

#include <sodium.h>

#include "manifest/encoding.h"
#include "manifest/error.h"

namespace distd::forum {

using nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& what) {
  throw Error(Errc::corrupt, "forum post: " + what, "the post is refused; its author keeps the text");
}

int64_t int_field(const json& j, const char* key, int64_t fallback, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) bad(std::string("field '") + key + "' is missing");
    return fallback;
  }
  if (!it->is_number_integer()) bad(std::string("field '") + key + "' is not an integer");
  return it->get<int64_t>();
}

std::string str_field(const json& j, const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) bad(std::string("field '") + key + "' is missing");
    return {};
  }
  if (!it->is_string()) bad(std::string("field '") + key + "' is not a string");
  return it->get<std::string>();
}

// Characters, not bytes: Moodle's subject column holds 255 characters of UTF-8.
size_t utf8_chars(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

bool safe_site(const std::string& s) {
  if (s.empty() || s.size() > 64 || s[0] == '.') return false;
  for (char c : s)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

json parse_json(const std::string& text, const char* what) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error(Errc::corrupt, std::string(what) + " is not valid JSON: " + e.what());
  }
}

}  // namespace

const char* state_name(PostState s) {
  switch (s) {
    case PostState::queued: return "queued";
    case PostState::sent: return "sent";
    case PostState::applied: return "applied";
    case PostState::refused: return "refused";
  }
  return "queued";
}

std::optional<PostState> parse_state(const std::string& s) {
  for (PostState p : {PostState::queued, PostState::sent, PostState::applied, PostState::refused})
    if (s == state_name(p)) return p;
  return std::nullopt;
}

bool is_uuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !(isdigit(static_cast<unsigned char>(s[i])) || (s[i] >= 'a' && s[i] <= 'f'))) return false;
  }
  return true;
}

Post post_from_json(const json& j, bool from_plugin, size_t max_message_bytes) {
  if (!j.is_object()) bad("not a JSON object");
  Post p;
  p.uuid = str_field(j, "uuid", true);
  if (!is_uuid(p.uuid)) bad("uuid '" + p.uuid.substr(0, 40) + "' is not a lower-case RFC 4122 UUID");
  if (!from_plugin) {
    p.site = str_field(j, "site", true);
    if (!safe_site(p.site)) bad("site '" + p.site.substr(0, 70) + "' is not a site id");
    p.created = int_field(j, "created", 0, true);
    if (p.created <= 0) bad("created is not a time");
    p.retry = int_field(j, "retry", 0, false);
  }
  p.userid = int_field(j, "userid", 0, true);
  if (p.userid <= 0) bad("userid must be positive");
  p.kind = str_field(j, "kind", true);
  if (p.kind != "reply" && p.kind != "discussion") bad("kind must be \"reply\" or \"discussion\"");
  p.parent = int_field(j, "parent", 0, false);
  p.discussion = int_field(j, "discussion", 0, false);
  p.forum = int_field(j, "forum", 0, false);
  p.groupid = int_field(j, "groupid", -1, false);
  if (p.kind == "reply" && p.parent <= 0) bad("a reply needs the parent post's id");
  if (p.kind == "discussion" && p.forum <= 0) bad("a new discussion needs the forum's id");
  p.subject = str_field(j, "subject", true);
  p.message = str_field(j, "message", true);
  p.format = int_field(j, "format", 1, false);
  if (p.subject.empty()) bad("the subject is empty");
  if (utf8_chars(p.subject) > kMaxSubjectChars) bad("the subject is longer than 255 characters");
  if (p.message.size() > max_message_bytes)
    bad("the message is " + std::to_string(p.message.size()) + " bytes, over the limit of " +
        std::to_string(max_message_bytes));
  if (p.format < 0 || p.format > 4) bad("format " + std::to_string(p.format) + " is not one of Moodle's");
  return p;
}

json to_json(const Post& p) {
  json j = {{"uuid", p.uuid},       {"userid", p.userid},   {"kind", p.kind},       {"parent", p.parent},
            {"discussion", p.discussion}, {"forum", p.forum}, {"groupid", p.groupid}, {"subject", p.subject},
            {"message", p.message}, {"format", p.format}};
  if (!p.site.empty()) j["site"] = p.site;
  if (p.created) j["created"] = p.created;
  if (p.retry) j["retry"] = p.retry;
  return j;
}

Answer answer_from_json(const json& j) {
  if (!j.is_object()) throw Error(Errc::corrupt, "an answer is not a JSON object");
  Answer a;
  a.uuid = str_field(j, "uuid", true);
  if (!is_uuid(a.uuid)) throw Error(Errc::corrupt, "an answer names no valid uuid");
  auto st = parse_state(str_field(j, "state", true));
  if (!st || *st == PostState::queued) throw Error(Errc::corrupt, "answer for " + a.uuid + " has an unknown state");
  a.state = *st;
  a.postid = int_field(j, "postid", 0, false);
  a.discussion = int_field(j, "discussion", 0, false);
  a.applied = int_field(j, "applied", 0, false);
  a.reason = str_field(j, "reason", false);
  a.reason_text = str_field(j, "reason_text", false);
  if (a.state == PostState::applied && a.postid <= 0)
    throw Error(Errc::corrupt, "answer for " + a.uuid + " says applied but names no post");
  return a;
}

json to_json(const Answer& a) {
  json j = {{"uuid", a.uuid}, {"state", state_name(a.state)}};
  if (a.postid) j["postid"] = a.postid;
  if (a.discussion) j["discussion"] = a.discussion;
  if (a.applied) j["applied"] = a.applied;
  if (!a.reason.empty()) j["reason"] = a.reason;
  if (!a.reason_text.empty()) j["reason_text"] = a.reason_text;
  return j;
}

std::string posts_body(const std::string& site, int64_t sent_at, const std::vector<Post>& posts) {
  json arr = json::array();
  for (auto& p : posts) arr.push_back(to_json(p));
  return json{{"site", site}, {"sent_at", sent_at}, {"posts", arr}}.dump();
}

PostsBody parse_posts_body(const std::string& body, size_t max_message_bytes, size_t max_posts) {
  if (body.size() > max_posts * kMaxPostJsonBytes + 4096) throw Error(Errc::corrupt, "a posts body of " + std::to_string(body.size()) + " bytes is over the limit");
  json j = parse_json(body, "the posts body");
  if (!j.is_object() || !j.contains("posts") || !j["posts"].is_array())
    throw Error(Errc::corrupt, "the posts body has no list of posts");
  PostsBody b;
  b.site = str_field(j, "site", true);
  b.sent_at = int_field(j, "sent_at", 0, false);
  if (j["posts"].size() > max_posts)
    throw Error(Errc::corrupt, "the posts body holds " + std::to_string(j["posts"].size()) + " posts, over the limit of " +
                                   std::to_string(max_posts));
  for (auto& pj : j["posts"]) {
    Post p = post_from_json(pj, false, max_message_bytes);
    if (p.site != b.site)
      throw Error(Errc::bad_signature, "a post in the body of site '" + b.site + "' claims to come from site '" + p.site + "'",
                  "refused whole: a site may only send its own posts");
    b.posts.push_back(std::move(p));
  }
  return b;
}

std::string answers_body(int64_t hq_time, const std::vector<Answer>& answers) {
  json arr = json::array();
  for (auto& a : answers) arr.push_back(to_json(a));
  return json{{"hq_time", hq_time}, {"answers", arr}}.dump();
}

AnswersBody parse_answers_body(const std::string& body) {
  json j = parse_json(body, "HQ's answers");
  if (!j.is_object() || !j.contains("answers") || !j["answers"].is_array())
    throw Error(Errc::corrupt, "HQ's answers hold no list of answers");
  AnswersBody b;
  b.hq_time = int_field(j, "hq_time", 0, false);
  for (auto& aj : j["answers"]) b.answers.push_back(answer_from_json(aj));
  return b;
}

std::string signature_hex(const Signature& s) { return to_hex(s.data(), s.size()); }

Signature parse_signature(const std::string& hex) {
  Signature s{};
  if (!from_hex(hex, s.data(), s.size())) throw Error(Errc::corrupt, "the signature is not 128 hex digits");
  return s;
}

std::string signed_envelope(const std::string& kind, const std::string& site, const std::string& body,
                            const SecretKey& signer) {
  return "distd-" + kind + " 1\nsite " + site + "\nsignature " + signature_hex(sign_detached(signer, body)) + "\n\n" +
         body;
}

Unsealed parse_envelope(const std::string& plain, const std::string& kind) {
  const std::string magic = "distd-" + kind + " 1\nsite ";
  if (plain.compare(0, magic.size(), magic) != 0) throw Error(Errc::corrupt, "this is not a distd " + kind + " envelope");
  size_t e1 = plain.find('\n', magic.size());
  const std::string sigp = "signature ";
  if (e1 == std::string::npos || e1 - magic.size() > 64 || plain.compare(e1 + 1, sigp.size(), sigp) != 0)
    throw Error(Errc::corrupt, "the " + kind + " envelope has no signature line");
  Unsealed u;
  u.site = plain.substr(magic.size(), e1 - magic.size());
  size_t s0 = e1 + 1 + sigp.size();
  size_t e2 = plain.find('\n', s0);
  if (e2 == std::string::npos || plain.compare(e2, 2, "\n\n") != 0)
    throw Error(Errc::corrupt, "the " + kind + " envelope's header does not end (cut short?)");
  u.signature = parse_signature(plain.substr(s0, e2 - s0));
  u.body = plain.substr(e2 + 2);
  return u;
}

std::string seal_file(const std::string& kind, const std::string& site, const std::string& body,
                      const SecretKey& signer, const PublicKey& to) {
  std::string plain = signed_envelope(kind, site, body, signer);
  unsigned char curve_pk[crypto_box_PUBLICKEYBYTES];
  if (crypto_sign_ed25519_pk_to_curve25519(curve_pk, to.bytes.data()) != 0)
    throw Error(Errc::usage, "the recipient's key cannot be used for sealing");
  std::string out(plain.size() + crypto_box_SEALBYTES, '\0');
  crypto_box_seal(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(plain.data()),
                  plain.size(), curve_pk);
  return out;
}

Unsealed open_sealed(const std::string& data, const std::string& kind, const SecretKey& mine) {
  if (data.size() < crypto_box_SEALBYTES)
    throw Error(Errc::bad_signature, "the sealed " + kind + " file is cut short (" + std::to_string(data.size()) + " bytes)",
                "nothing in it is used; send it again or wait for the next stick");
  unsigned char curve_pk[crypto_box_PUBLICKEYBYTES], curve_sk[crypto_box_SECRETKEYBYTES];
  PublicKey pub = mine.public_key();
  if (crypto_sign_ed25519_pk_to_curve25519(curve_pk, pub.bytes.data()) != 0 ||
      crypto_sign_ed25519_sk_to_curve25519(curve_sk, mine.bytes.data()) != 0)
    throw Error(Errc::usage, "this site's key cannot open sealed files");
  std::string plain(data.size() - crypto_box_SEALBYTES, '\0');
  int rc = crypto_box_seal_open(reinterpret_cast<unsigned char*>(plain.data()),
                                reinterpret_cast<const unsigned char*>(data.data()), data.size(), curve_pk, curve_sk);
  sodium_memzero(curve_sk, sizeof curve_sk);
  if (rc != 0)
    throw Error(Errc::bad_signature,
                "the sealed " + kind + " file does not open with this site's key (cut, altered, or sealed to another key)",
                "nothing in it is used; send it again or wait for the next stick");
  return parse_envelope(plain, kind);
}

bool verify_unsealed(const Unsealed& u, const PublicKey& signer) { return verify_detached(signer, u.body, u.signature); }

}  // namespace distd::forum
