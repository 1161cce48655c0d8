// The forum-post channel as the mains and distd/plugins.cpp see it (docs/forum.md).
//
//   center: serve_post_socket() takes posts from the local_distd plugin into the outbox;
//           run_post_sender() sends what waits whenever HQ answers; the stick hooks put the
//           sealed posts into every request and read HQ's sealed answers from every bundle.
//   HQ:     handle_posts_request() (inbox.h) answers POST /posts; run_post_applier() retries
//           posts that wait (HQ's database was down); the export hook takes a stick's posts and
//           writes the sealed answers beside the bundle.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "distd/config/config.h"
#include "distd/forum/settings.h"

namespace distd::forum {

using ForumLogFn = std::function<void(const std::string&)>;

// Wakes the sender early; shared by the socket server, the daemon's probe and the sender.
//   new_post()  a post arrived: send now, unless HQ was unreachable at the last try (then the
//               backoff's wait stands: a burst of posts must not drive the backoff up)
//   link_up()   the daemon's probe found HQ reachable: send now, whatever the backoff
struct SendSignal {
  enum Wake { timeout, post, link, stopping };
  std::mutex mu;
  std::condition_variable cv;
  bool post_pending = false, link_pending = false;
  void new_post();
  void link_up();
  // Waits up to seconds, until woken, or until stop; says why it returned. With ignore_posts, a
  // new post does not end the wait (it is remembered for the next wait).
  Wake wait(double seconds, const std::atomic<bool>& stop, bool ignore_posts = false);
};

// Center. Listens on [forum] socket until stop (polls it every 200 ms). Throws Error{io} when the
// socket cannot be made (another distd holds it: refused, a stale file is replaced).
void serve_post_socket(const Config& cfg, const std::atomic<bool>& stop, SendSignal& signal, const ForumLogFn& log);

// Center. One round: sends every unanswered post (200 per request) and records the answers.
struct SendReport {
  size_t sent = 0, applied = 0, refused = 0, waiting = 0;
  uint64_t bytes_sent = 0, bytes_received = 0;
};
// Throws Error{network} when HQ cannot be reached, Error{bad_signature} when its answer is not
// signed by the pinned HQ key, Error{usage} for a bad config.
SendReport send_posts(const Config& cfg, const std::atomic<bool>* stop);

// Center. Sends whenever posts wait: at once when poked, then every [forum] send_interval, with
// backoff while HQ is unreachable.
void run_post_sender(const Config& cfg, const std::atomic<bool>& stop, SendSignal& signal, const ForumLogFn& log);

// HQ. Applies waiting posts every [forum] apply_interval until stop.
void run_post_applier(const Config& cfg, const std::atomic<bool>& stop, const ForumLogFn& log);

// Whether this config uses the channel: a center always may (posts come from the plugin); HQ when
// [forum] moodle_dir or apply_command is set.
bool forum_enabled(const Config& cfg);

// The stick hooks (distd/bundle/hooks.h), registered by distd/plugins.cpp.
void write_sealed_posts(const Config& cfg, const ForumLogFn& log);                    // request hook
std::vector<std::pair<std::string, std::string>> answer_stick_posts(const Config& hq_cfg, const std::string& site,
                                                                    const std::string& inbound_dir,
                                                                    const std::vector<std::string>& received,
                                                                    const ForumLogFn& log);
std::vector<std::string> read_sealed_answers(const Config& cfg, const std::string& dir, const ForumLogFn& log);

inline constexpr const char* kSealedPostsFile = "forum-posts.sealed";
std::string sealed_answers_name(const std::string& site);  // "distd-answers-<site>.sealed"

}  // namespace distd::forum
