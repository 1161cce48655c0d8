#include "distd/forum/outbox.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include "distd/forum/store.h"
#include "manifest/error.h"

namespace distd::forum {

namespace {

constexpr const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS posts (
  uuid TEXT PRIMARY KEY,
  site TEXT NOT NULL,
  userid INTEGER NOT NULL,
  kind TEXT NOT NULL,
  parent INTEGER NOT NULL,
  discussion INTEGER NOT NULL,
  forum INTEGER NOT NULL,
  groupid INTEGER NOT NULL,
  subject TEXT NOT NULL,
  message TEXT NOT NULL,
  format INTEGER NOT NULL,
  created INTEGER NOT NULL,
  retry INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL DEFAULT 'queued',
  postid INTEGER NOT NULL DEFAULT 0,
  hq_discussion INTEGER NOT NULL DEFAULT 0,
  applied INTEGER NOT NULL DEFAULT 0,
  reason TEXT NOT NULL DEFAULT '',
  reason_text TEXT NOT NULL DEFAULT '',
  sends INTEGER NOT NULL DEFAULT 0,
  last_sent INTEGER NOT NULL DEFAULT 0,
  dismissed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS posts_author ON posts(userid, discussion, forum);
CREATE INDEX IF NOT EXISTS posts_state ON posts(state, created);
)";

constexpr const char* kColumns =
    "uuid, site, userid, kind, parent, discussion, forum, groupid, subject, message, format, created, retry, "
    "state, postid, hq_discussion, applied, reason, reason_text, sends, last_sent, dismissed";

OutboxItem read_item(SQLite::Statement& q) {
  OutboxItem it;
  Post& p = it.post;
  p.uuid = q.getColumn(0).getString();
  p.site = q.getColumn(1).getString();
  p.userid = q.getColumn(2).getInt64();
  p.kind = q.getColumn(3).getString();
  p.parent = q.getColumn(4).getInt64();
  p.discussion = q.getColumn(5).getInt64();
  p.forum = q.getColumn(6).getInt64();
  p.groupid = q.getColumn(7).getInt64();
  p.subject = q.getColumn(8).getString();
  p.message = q.getColumn(9).getString();
  p.format = q.getColumn(10).getInt64();
  p.created = q.getColumn(11).getInt64();
  p.retry = q.getColumn(12).getInt64();
  it.state = parse_state(q.getColumn(13).getString()).value_or(PostState::queued);
  it.answer.uuid = p.uuid;
  it.answer.state = it.state;
  it.answer.postid = q.getColumn(14).getInt64();
  it.answer.discussion = q.getColumn(15).getInt64();
  it.answer.applied = q.getColumn(16).getInt64();
  it.answer.reason = q.getColumn(17).getString();
  it.answer.reason_text = q.getColumn(18).getString();
  it.sends = q.getColumn(19).getInt64();
  it.last_sent = q.getColumn(20).getInt64();
  it.dismissed = q.getColumn(21).getInt() != 0;
  return it;
}

int rank(PostState s) {
  switch (s) {
    case PostState::queued: return 0;
    case PostState::sent: return 1;
    default: return 2;
  }
}


}  // namespace

Outbox::Outbox(const std::string& path) {
  db_ = open_store(path, kSchema, "forum outbox");
}

Outbox::~Outbox() = default;

SubmitResult Outbox::submit(Post p, const std::string& site, int64_t now) {
  return guarded_sql("forum outbox", "cannot store a post", [&] {
    SubmitResult r;
    if (auto have = get(p.uuid)) {
      r.item = *have;
      r.duplicate = true;
      return r;
    }
    p.site = site;
    p.created = now;
    p.retry = 0;
    SQLite::Statement q(*db_,
                        "INSERT OR IGNORE INTO posts (uuid, site, userid, kind, parent, discussion, forum, groupid, subject, "
                        "message, format, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
    q.bind(1, p.uuid);
    q.bind(2, p.site);
    q.bind(3, p.userid);
    q.bind(4, p.kind);
    q.bind(5, p.parent);
    q.bind(6, p.discussion);
    q.bind(7, p.forum);
    q.bind(8, p.groupid);
    q.bind(9, p.subject);
    q.bind(10, p.message);
    q.bind(11, p.format);
    q.bind(12, p.created);
    r.duplicate = q.exec() == 0;  // another process stored it between get() and here
    r.item = *get(p.uuid);
    return r;
  });
}

std::optional<OutboxItem> Outbox::get(const std::string& uuid) {
  return guarded_sql("forum outbox", "cannot read", [&]() -> std::optional<OutboxItem> {
    SQLite::Statement q(*db_, std::string("SELECT ") + kColumns + " FROM posts WHERE uuid = ?");
    q.bind(1, uuid);
    if (!q.executeStep()) return std::nullopt;
    return read_item(q);
  });
}

std::vector<OutboxItem> Outbox::list(const std::string& state, size_t limit) {
  return guarded_sql("forum outbox", "cannot list", [&] {
    std::vector<OutboxItem> out;
    SQLite::Statement q(*db_, std::string("SELECT ") + kColumns + " FROM posts WHERE (? = '' OR state = ?) "
                                                                  "ORDER BY created DESC, rowid DESC LIMIT ?");
    q.bind(1, state);
    q.bind(2, state);
    q.bind(3, static_cast<int64_t>(limit));
    while (q.executeStep()) out.push_back(read_item(q));
    return out;
  });
}

std::vector<OutboxItem> Outbox::pending_for(int64_t userid, int64_t discussion, int64_t forum) {
  return guarded_sql("forum outbox", "cannot list an author's posts", [&] {
    std::vector<OutboxItem> out;
    SQLite::Statement q(*db_, std::string("SELECT ") + kColumns +
                                  " FROM posts WHERE userid = ? AND dismissed = 0 AND "
                                  "((? > 0 AND kind = 'reply' AND discussion = ?) OR (? > 0 AND kind = 'discussion' AND forum = ?)) "
                                  "ORDER BY created, rowid");
    q.bind(1, userid);
    q.bind(2, discussion);
    q.bind(3, discussion);
    q.bind(4, forum);
    q.bind(5, forum);
    while (q.executeStep()) out.push_back(read_item(q));
    return out;
  });
}

bool Outbox::dismiss(int64_t userid, const std::string& uuid) {
  return guarded_sql("forum outbox", "cannot dismiss", [&] {
    SQLite::Statement q(*db_, "UPDATE posts SET dismissed = 1 WHERE uuid = ? AND userid = ?");
    q.bind(1, uuid);
    q.bind(2, userid);
    return q.exec() > 0;
  });
}

std::vector<Post> Outbox::unanswered(size_t limit) {
  return guarded_sql("forum outbox", "cannot read the queue", [&] {
    std::vector<Post> out;
    SQLite::Statement q(*db_, std::string("SELECT ") + kColumns +
                                  " FROM posts WHERE state IN ('queued','sent') ORDER BY created, rowid LIMIT ?");
    q.bind(1, static_cast<int64_t>(limit));
    while (q.executeStep()) out.push_back(read_item(q).post);
    return out;
  });
}

size_t Outbox::count_unanswered() {
  return guarded_sql("forum outbox", "cannot count the queue", [&] {
    SQLite::Statement q(*db_, "SELECT COUNT(*) FROM posts WHERE state IN ('queued','sent')");
    q.executeStep();
    return static_cast<size_t>(q.getColumn(0).getInt64());
  });
}

void Outbox::mark_sent(const std::vector<std::string>& uuids, int64_t now) {
  guarded_sql("forum outbox", "cannot record a send", [&] {
    SQLite::Transaction t(*db_);
    SQLite::Statement q(*db_, "UPDATE posts SET sends = sends + 1, last_sent = ? WHERE uuid = ?");
    for (auto& u : uuids) {
      q.bind(1, now);
      q.bind(2, u);
      q.exec();
      q.reset();
    }
    t.commit();
    return 0;
  });
}

size_t Outbox::apply_answers(const std::vector<Answer>& answers) {
  return guarded_sql("forum outbox", "cannot record HQ's answers", [&] {
    size_t changed = 0;
    SQLite::Transaction t(*db_);
    SQLite::Statement sel(*db_, "SELECT state FROM posts WHERE uuid = ?");
    SQLite::Statement up(*db_,
                         "UPDATE posts SET state = ?, postid = ?, hq_discussion = ?, applied = ?, reason = ?, reason_text = ? "
                         "WHERE uuid = ?");
    for (auto& a : answers) {
      sel.bind(1, a.uuid);
      if (!sel.executeStep()) {
        sel.reset();
        continue;  // not ours (another center's answer cannot reach us, but an old outbox may be gone)
      }
      PostState have = parse_state(sel.getColumn(0).getString()).value_or(PostState::queued);
      sel.reset();
      // Forward only; a final state is final (a retry put it back to queued on purpose).
      if (rank(a.state) <= rank(have) && !(have == PostState::sent && a.state == PostState::sent)) continue;
      if (have == a.state) continue;
      up.bind(1, state_name(a.state));
      up.bind(2, a.postid);
      up.bind(3, a.discussion);
      up.bind(4, a.applied);
      up.bind(5, a.reason);
      up.bind(6, a.reason_text);
      up.bind(7, a.uuid);
      changed += up.exec();
      up.reset();
    }
    t.commit();
    return changed;
  });
}

bool Outbox::retry(const std::string& uuid) {
  return guarded_sql("forum outbox", "cannot retry", [&] {
    SQLite::Statement q(*db_,
                        "UPDATE posts SET state = 'queued', retry = retry + 1, dismissed = 0, reason = '', reason_text = '' "
                        "WHERE uuid = ? AND state = 'refused'");
    q.bind(1, uuid);
    return q.exec() > 0;
  });
}

}  // namespace distd::forum
