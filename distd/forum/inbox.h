// HQ's inbox of forum posts (SQLite, <state_dir>/forum-inbox.db) and the hand-over to Moodle.
//
// Every post a center sends (over the link or on a stick) is recorded here before HQ answers, keyed
// by (site, uuid): the same post by link and by stick, or twice, is one row. The PHP adapter of
// local_distd then writes it into HQ's Moodle; its idempotency row (site + uuid, unique, in the
// same transaction as the post) is what makes a repeated apply a no-op, so a crash anywhere
// between Moodle's commit and this inbox's update cannot double a post: the next attempt gets
// "duplicate" and the same post id back. A post the adapter did not answer (database down,
// adapter killed) stays waiting; nothing is marked applied before Moodle said so.
//
// Thread-safety: one Inbox per thread; apply_waiting() takes a process-wide lock so that one
// adapter runs at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "distd/forum/post.h"
#include "distd/forum/settings.h"

namespace SQLite {
class Database;
}

namespace distd::forum {

struct ApplyStats {
  size_t offered = 0, applied = 0, refused = 0, waiting = 0;
  int adapter_status = 0;
  std::string adapter_error;  // the adapter's last lines when it failed (exit status != 0, errors)
};

class Inbox {
 public:
  explicit Inbox(const std::string& path);
  ~Inbox();
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  // Records the posts (new ones wait; a refused one with a higher retry waits again). clock_skew:
  // seconds to add to each post's created (HQ's clock minus the center's, measured over the link;
  // 0 for a stick). Returns the number of new posts.
  size_t receive(const std::vector<Post>& posts, int64_t clock_skew, int64_t now);
  // The answers for these posts as the inbox has them now.
  std::vector<Answer> answers_for(const std::string& site, const std::vector<Post>& posts);

  // Hands every waiting post to the adapter (at most `batch` per run) and records its answers.
  ApplyStats apply_waiting(const ForumSettings& fs, const std::string& tmp_dir, size_t batch = 500);

  struct Row {
    Post post;
    Answer answer;
    int64_t received = 0, attempts = 0;
    std::string last_error;
  };
  std::vector<Row> list(const std::string& state, size_t limit);
  // The post with this uuid (any site; when two sites sent the same uuid, the one received last,
  // as list() would show it first); nullopt when the inbox has none.
  std::optional<Row> get(const std::string& uuid);
  size_t count_waiting();

 private:
  std::unique_ptr<SQLite::Database> db_;
};

// The forum's part of HQ's HTTP server: POST /posts with a signed posts envelope from an
// enrolled site (docs/formats/post.md). Records, applies and answers: a 200's body is the answers
// envelope, signed by HQ's key; otherwise a text saying what failed and what to do.
struct PostsReply {
  int status = 200;
  std::string body;
};
PostsReply handle_posts_request(const Config& cfg, const std::string& request_body);

// When the adapter last failed in this process (unix time; 0: never). POST /posts skips running
// it within [forum] apply_interval of a failure; the applier loop keeps trying.
std::atomic<int64_t>& last_adapter_failure();

}  // namespace distd::forum
