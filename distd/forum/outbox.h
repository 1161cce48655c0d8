// The center's outbox of forum posts (SQLite, <state_dir>/forum-outbox.db).
//
// A post is durable here before its author is told "queued" (WAL, synchronous=FULL). It leaves
// the outbox never: an item ends when HQ has answered for it (applied or refused) and stays as the
// record of what was written. States move forward only (queued -> sent -> applied | refused), so
// an old stick's answers or a repeated answer cannot undo a newer one; `retry` is the one way
// back, an operator's decision.
//
// Thread-safety: one Outbox per thread; several processes may open the same file (the daemon,
// distctl), SQLite serialises them (busy timeout 10 s).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "distd/forum/post.h"

namespace SQLite {
class Database;
}

namespace distd::forum {

struct OutboxItem {
  Post post;
  PostState state = PostState::queued;
  Answer answer;           // HQ's last word (state sent: held in its inbox, not applied yet)
  int64_t sends = 0;       // times it went over the link or into a stick request
  int64_t last_sent = 0;
  bool dismissed = false;  // the author has seen the refusal (hidden from the page, kept here)
};

struct SubmitResult {
  OutboxItem item;
  bool duplicate = false;  // that UUID was already in the outbox: nothing new was written
};

class Outbox {
 public:
  explicit Outbox(const std::string& path);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Stores a post from the plugin (or distctl post submit): site and created are set here.
  // Returns once it is durable. The same UUID again returns the stored item, unchanged.
  SubmitResult submit(Post p, const std::string& site, int64_t now);

  std::optional<OutboxItem> get(const std::string& uuid);
  // state: empty for every state. Newest first, at most limit.
  std::vector<OutboxItem> list(const std::string& state, size_t limit);
  // An author's items of a discussion (replies) or a forum (new discussions), not dismissed,
  // oldest first. Exactly one of discussion / forum is non-zero.
  std::vector<OutboxItem> pending_for(int64_t userid, int64_t discussion, int64_t forum);
  // Returns false when the author has no such item.
  bool dismiss(int64_t userid, const std::string& uuid);
  // Posts without a final answer (queued or sent), oldest first, at most limit.
  std::vector<Post> unanswered(size_t limit);
  size_t count_unanswered();
  void mark_sent(const std::vector<std::string>& uuids, int64_t now);
  // Applies HQ's answers (forward only). Returns how many items changed.
  size_t apply_answers(const std::vector<Answer>& answers);
  // Puts a refused item back in the queue (retry + 1, not dismissed). Returns false when the item
  // is not refused (queued and sent items are sent anyway; applied ones are done).
  bool retry(const std::string& uuid);

 private:
  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace distd::forum
