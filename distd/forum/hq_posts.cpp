// HQ's side of the forum channel: the signed POST /posts, the applier loop, and a stick's posts.
#include <algorithm>
#include <ctime>
#include <sys/stat.h>

#include "distd/forum/channel.h"
#include "distd/forum/inbox.h"
#include "distd/hq/publisher.h"
#include "distd/hq/sites.h"
#include "distd/io/pause.h"
#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd::forum {

namespace {

// Over the link HQ corrects a center's clock by the difference it sees at the moment of sending;
// below this it is taken for transit time and ignored.
constexpr int64_t kSkewToleranceSeconds = 120;

int64_t now_s() { return static_cast<int64_t>(::time(nullptr)); }

SecretKey hq_secret(const Config& cfg) {
  auto hs = hq::hq_settings(cfg);
  if (hs.secret_key.empty())
    throw Error(Errc::usage, "config " + cfg.file + ": [hq] secret_key is not set; HQ cannot sign its answers to forum posts");
  return load_secret_key(hs.secret_key);
}

std::string tmp_dir(const Config& cfg) { return cfg.state_dir + "/tmp"; }

PostsReply refuse(int status, const std::string& why, const std::string& what_to_do) {
  PostsReply r;
  r.status = status;
  r.body = why + "\nwhat to do: " + what_to_do + "\n";
  return r;
}

}  // namespace

std::atomic<int64_t>& last_adapter_failure() {
  static std::atomic<int64_t> t{0};
  return t;
}

bool forum_enabled(const Config& cfg) {
  if (cfg.role == "regional") return true;
  ForumSettings fs = ForumSettings::from(cfg);
  return !fs.moodle_dir.empty() || !fs.apply_command.empty();
}

PostsReply handle_posts_request(const Config& cfg, const std::string& request_body) {
  ForumSettings fs = ForumSettings::from(cfg);
  if (!forum_enabled(cfg))
    return refuse(404, "this HQ does not take forum posts ([forum] moodle_dir is not set)", "set it (docs/forum.md)");
  Unsealed env;
  try {
    env = parse_envelope(request_body, "posts");
  } catch (const Error& e) {
    return refuse(400, e.what(), "send posts with distd (docs/formats/post.md)");
  }
  const std::string& site = env.site;
  const std::string& body = env.body;
  PublicKey key;
  try {
    key = hq::enrolled_site_key(cfg, site);
  } catch (const Error& e) {
    return refuse(403, e.what(), e.hint());
  }
  if (!verify_unsealed(env, key))
    return refuse(403, "the posts are not signed by the enrolled key of site '" + site + "'",
                  "refused; if the center made a new key, enroll its site.pub at HQ after checking it by phone");
  PostsBody pb;
  try {
    pb = parse_posts_body(body, fs.max_message_bytes);
  } catch (const Error& e) {
    return refuse(e.code() == Errc::bad_signature ? 403 : 400, e.what(), e.hint());
  }
  if (pb.site != site) return refuse(403, "the body names site '" + pb.site + "', signed by '" + site + "'", "refused");
  int64_t now = now_s();
  int64_t skew = pb.sent_at > 0 ? now - pb.sent_at : 0;
  if (skew > -kSkewToleranceSeconds && skew < kSkewToleranceSeconds) skew = 0;
  Inbox inbox(fs.inbox);
  inbox.receive(pb.posts, skew, now);
  // After a failed run (HQ's database down) requests do not start the adapter again: the applier
  // loop retries every apply_interval, and every center's sender would otherwise start one each time.
  if (now - last_adapter_failure().load() >= fs.apply_interval) {
    try {
      ApplyStats st = inbox.apply_waiting(fs, tmp_dir(cfg));
      last_adapter_failure() = st.adapter_error.empty() ? 0 : now_s();
    } catch (const Error&) {
      last_adapter_failure() = now_s();  // the posts are in the inbox; the answer says "sent"
    }
  }
  PostsReply r;
  r.body = signed_envelope("answers", "hq", answers_body(now_s(), inbox.answers_for(site, pb.posts)), hq_secret(cfg));
  return r;
}

void run_post_applier(const Config& cfg, const std::atomic<bool>& stop, const ForumLogFn& log) {
  ForumSettings fs = ForumSettings::from(cfg);
  std::string last_error;
  while (!stop.load()) {
    try {
      Inbox inbox(fs.inbox);
      if (inbox.count_waiting() > 0) {
        ApplyStats st = inbox.apply_waiting(fs, tmp_dir(cfg));
        last_adapter_failure() = st.adapter_error.empty() ? 0 : static_cast<int64_t>(::time(nullptr));
        if (st.applied + st.refused > 0)
          log("forum: applied " + std::to_string(st.applied) + ", refused " + std::to_string(st.refused) + " posts; " +
              std::to_string(st.waiting) + " wait");
        if (!st.adapter_error.empty() && st.adapter_error != last_error) log("forum: warning: " + st.adapter_error);
        last_error = st.adapter_error;
      }
    } catch (const Error& e) {
      std::string w = std::string("forum: warning: ") + e.what();
      if (w != last_error) log(w);
      last_error = w;
    }
    if (!sleep_unless_stopped(&stop, static_cast<double>(fs.apply_interval))) break;
  }
}

std::vector<std::pair<std::string, std::string>> answer_stick_posts(const Config& cfg, const std::string& site,
                                                                    const std::string& inbound_dir,
                                                                    const std::vector<std::string>& received,
                                                                    const ForumLogFn& log) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!forum_enabled(cfg)) return out;
  if (std::find(received.begin(), received.end(), kSealedPostsFile) == received.end()) return out;  // none this time
  ForumSettings fs = ForumSettings::from(cfg);
  std::string file = inbound_dir + "/" + kSealedPostsFile;
  SecretKey sk = hq_secret(cfg);
  PublicKey site_key = hq::enrolled_site_key(cfg, site);
  Unsealed u = open_sealed(read_file(file, kMaxPostsPerStick * kMaxPostJsonBytes, "sealed posts"), "posts", sk);
  if (u.site != site || !verify_unsealed(u, site_key))
    throw Error(Errc::bad_signature, "forum: the stick's posts are not signed by site '" + site + "'s enrolled key",
                "refused; nothing was applied");
  PostsBody pb = parse_posts_body(u.body, fs.max_message_bytes, kMaxPostsPerStick);
  if (pb.site != site) throw Error(Errc::bad_signature, "forum: the stick's posts name site '" + pb.site + "'");
  Inbox inbox(fs.inbox);
  size_t fresh = inbox.receive(pb.posts, 0, now_s());
  ApplyStats as;
  for (size_t round = 0; round < 100; ++round) {  // 500 per adapter run
    ApplyStats s = inbox.apply_waiting(fs, tmp_dir(cfg));
    as.applied += s.applied, as.refused += s.refused;
    if (!s.adapter_error.empty()) {
      log("forum: " + s.adapter_error);
      break;
    }
    if (s.offered == 0 || s.applied + s.refused == 0) break;
  }
  std::vector<Answer> answers = inbox.answers_for(site, pb.posts);
  size_t waiting = 0;
  for (auto& a : answers) waiting += a.state == PostState::sent;
  log("forum: " + std::to_string(pb.posts.size()) + " posts from " + site + " (" + std::to_string(fresh) + " new): " +
      std::to_string(as.applied) + " applied, " + std::to_string(as.refused) + " refused now, " + std::to_string(waiting) +
      " waiting");
  out.emplace_back(sealed_answers_name(site), seal_file("answers", "hq", answers_body(now_s(), answers), sk, site_key));
  return out;
}

std::string sealed_answers_name(const std::string& site) { return "distd-answers-" + site + ".sealed"; }

}  // namespace distd::forum
