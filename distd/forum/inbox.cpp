#include "distd/forum/inbox.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

#include <SQLiteCpp/SQLiteCpp.h>

#include "distd/forum/store.h"
#include "distd/io/run_command.h"
#include "manifest/digest.h"
#include "manifest/error.h"
#include "manifest/fault.h"
#include "manifest/fs.h"

namespace distd::forum {

using nlohmann::json;

namespace {

constexpr const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS posts (
  site TEXT NOT NULL,
  uuid TEXT NOT NULL,
  payload TEXT NOT NULL,
  retry INTEGER NOT NULL DEFAULT 0,
  received INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'sent',
  postid INTEGER NOT NULL DEFAULT 0,
  discussion INTEGER NOT NULL DEFAULT 0,
  applied INTEGER NOT NULL DEFAULT 0,
  reason TEXT NOT NULL DEFAULT '',
  reason_text TEXT NOT NULL DEFAULT '',
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (site, uuid)
);
CREATE INDEX IF NOT EXISTS posts_state ON posts(state, received);
CREATE INDEX IF NOT EXISTS posts_uuid ON posts(uuid);
)";

constexpr const char* kColumns =
    "payload, state, postid, discussion, applied, reason, reason_text, received, attempts, last_error";

Inbox::Row read_row(SQLite::Statement& q) {
  Inbox::Row r;
  r.post = post_from_json(json::parse(q.getColumn(0).getString()), false, 1 << 20);
  r.answer.uuid = r.post.uuid;
  r.answer.state = parse_state(q.getColumn(1).getString()).value_or(PostState::sent);
  r.answer.postid = q.getColumn(2).getInt64();
  r.answer.discussion = q.getColumn(3).getInt64();
  r.answer.applied = q.getColumn(4).getInt64();
  r.answer.reason = q.getColumn(5).getString();
  r.answer.reason_text = q.getColumn(6).getString();
  r.received = q.getColumn(7).getInt64();
  r.attempts = q.getColumn(8).getInt64();
  r.last_error = q.getColumn(9).getString();
  return r;
}


// flock(2) on a file, released when the object goes (or the process dies).
class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) throw_errno("cannot open the forum's apply lock", path, errno);
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~FileLock() { ::close(fd_); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// What the adapter's failure was, in words an operator can act on. Moodle prints its error first
// and a stack trace after it, so the first "Error" line says more than the last lines do.
std::string adapter_failure(const std::string& output) {
  if (output.find("dbconnectionfailed") != std::string::npos || output.find("Database connection failed") != std::string::npos)
    return "HQ's Moodle cannot reach its database (Moodle: \"Database connection failed\"); the posts wait and are "
           "applied when it is back";
  size_t e = output.find("Error");
  if (e != std::string::npos) {
    size_t start = output.rfind('\n', e);
    start = start == std::string::npos ? 0 : start + 1;
    size_t end = output.find('\n', e);
    std::string line = output.substr(start, end == std::string::npos ? std::string::npos : end - start);
    return line.substr(0, 500) + " ... " + tail_lines(output, 2);
  }
  return tail_lines(output, 5);
}

std::mutex& adapter_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

Inbox::Inbox(const std::string& path) {
  db_ = open_store(path, kSchema, "forum inbox");
}

Inbox::~Inbox() = default;

size_t Inbox::receive(const std::vector<Post>& posts, int64_t clock_skew, int64_t now) {
  return guarded_sql("forum inbox", "cannot record posts", [&] {
    size_t fresh = 0;
    SQLite::Transaction t(*db_);
    SQLite::Statement sel(*db_, "SELECT state, retry FROM posts WHERE site = ? AND uuid = ?");
    SQLite::Statement ins(*db_, "INSERT INTO posts (site, uuid, payload, retry, received) VALUES (?,?,?,?,?)");
    SQLite::Statement again(*db_,
                            "UPDATE posts SET payload = ?, retry = ?, state = 'sent', reason = '', reason_text = '' "
                            "WHERE site = ? AND uuid = ?");
    for (Post p : posts) {
      // The center's clock may be hours wrong; over the link HQ measured by how much.
      p.created += clock_skew;
      sel.bind(1, p.site);
      sel.bind(2, p.uuid);
      if (sel.executeStep()) {
        bool refused = sel.getColumn(0).getString() == "refused";
        int64_t had_retry = sel.getColumn(1).getInt64();
        sel.reset();
        if (refused && p.retry > had_retry) {  // the center's operator asked for another attempt
          again.bind(1, to_json(p).dump());
          again.bind(2, p.retry);
          again.bind(3, p.site);
          again.bind(4, p.uuid);
          again.exec();
          again.reset();
        }
        continue;
      }
      sel.reset();
      ins.bind(1, p.site);
      ins.bind(2, p.uuid);
      ins.bind(3, to_json(p).dump());
      ins.bind(4, p.retry);
      ins.bind(5, now);
      ins.exec();
      ins.reset();
      ++fresh;
    }
    t.commit();
    return fresh;
  });
}

std::vector<Answer> Inbox::answers_for(const std::string& site, const std::vector<Post>& posts) {
  return guarded_sql("forum inbox", "cannot read answers", [&] {
    std::vector<Answer> out;
    SQLite::Statement q(*db_, std::string("SELECT ") + kColumns + " FROM posts WHERE site = ? AND uuid = ?");
    for (auto& p : posts) {
      q.bind(1, site);
      q.bind(2, p.uuid);
      if (q.executeStep()) out.push_back(read_row(q).answer);
      q.reset();
    }
    return out;
  });
}

std::vector<Inbox::Row> Inbox::list(const std::string& state, size_t limit) {
  return guarded_sql("forum inbox", "cannot list", [&] {
    std::vector<Row> out;
    SQLite::Statement q(*db_, std::string("SELECT ") + kColumns +
                                  " FROM posts WHERE (? = '' OR state = ?) ORDER BY received DESC, rowid DESC LIMIT ?");
    q.bind(1, state);
    q.bind(2, state);
    q.bind(3, static_cast<int64_t>(limit));
    while (q.executeStep()) out.push_back(read_row(q));
    return out;
  });
}

std::optional<Inbox::Row> Inbox::get(const std::string& uuid) {
  return guarded_sql("forum inbox", "cannot read", [&]() -> std::optional<Row> {
    SQLite::Statement q(*db_, std::string("SELECT ") + kColumns +
                                  " FROM posts WHERE uuid = ? ORDER BY received DESC, rowid DESC LIMIT 1");
    q.bind(1, uuid);
    if (!q.executeStep()) return std::nullopt;
    return read_row(q);
  });
}

size_t Inbox::count_waiting() {
  return guarded_sql("forum inbox", "cannot count", [&] {
    SQLite::Statement q(*db_, "SELECT COUNT(*) FROM posts WHERE state = 'sent'");
    q.executeStep();
    return static_cast<size_t>(q.getColumn(0).getInt64());
  });
}

ApplyStats Inbox::apply_waiting(const ForumSettings& fs, const std::string& tmp_dir, size_t batch) {
  // One adapter at a time, across threads and processes (the daemon's applier, `distctl post
  // apply`): two adapters on the same post would both be correct (the idempotency row is unique)
  // but the loser's answer would be a needless "error".
  std::lock_guard<std::mutex> one_adapter(adapter_mutex());
  make_dirs(tmp_dir, 0700);
  FileLock across_processes(tmp_dir + "/apply.lock");
  ApplyStats st;
  std::vector<Row> waiting = guarded_sql("forum inbox", "cannot read waiting posts", [&] {
    std::vector<Row> out;
    SQLite::Statement q(*db_, std::string("SELECT ") + kColumns + " FROM posts WHERE state = 'sent' ORDER BY received, rowid LIMIT ?");
    q.bind(1, static_cast<int64_t>(batch));
    while (q.executeStep()) out.push_back(read_row(q));
    return out;
  });
  st.offered = waiting.size();
  if (waiting.empty()) return st;

  const std::string stem = tmp_dir + "/apply-" + std::to_string(::getpid()) + "-" + std::to_string(::gettid());
  {
    std::string lines;
    for (auto& r : waiting) lines += to_json(r.post).dump() + "\n";
    write_file_atomic(stem + ".in", lines, 0600);
  }
  fault_point("forum-before-apply");  // posts recorded, Moodle not asked yet
  CommandResult cr = run_command(fs.adapter_argv(), {}, stem + ".out", 16 << 20, stem + ".in");
  fault_point("forum-after-apply");   // Moodle committed, the inbox does not know yet
  discard_file(stem + ".in");
  st.adapter_status = cr.status;

  std::vector<std::pair<std::string, std::string>> errors;  // uuid, text
  guarded_sql("forum inbox", "cannot record the adapter's answers", [&] {
    SQLite::Transaction t(*db_);
    SQLite::Statement up(*db_,
                         "UPDATE posts SET state = ?, postid = ?, discussion = ?, applied = ?, reason = ?, reason_text = ?, "
                         "attempts = attempts + 1, last_error = '' WHERE site = ? AND uuid = ? AND state = 'sent'");
    SQLite::Statement err(*db_,
                          "UPDATE posts SET attempts = attempts + 1, last_error = ? WHERE site = ? AND uuid = ?");
    size_t pos = 0;
    const std::string& out = cr.output;
    while (pos < out.size()) {
      size_t nl = out.find('\n', pos);
      std::string line = out.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      pos = nl == std::string::npos ? out.size() : nl + 1;
      if (line.rfind("{", 0) != 0) continue;  // PHP notices and the like: kept in adapter_error below
      json j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.contains("uuid") || !j.contains("site") || !j["site"].is_string()) continue;
      std::string site = j["site"].get<std::string>();
      std::string state = j.value("state", "");
      if (state == "error") {
        err.bind(1, j.value("reason_text", std::string("the adapter gave no reason")));
        err.bind(2, site);
        err.bind(3, j["uuid"].get<std::string>());
        err.exec();
        err.reset();
        ++st.waiting;
        continue;
      }
      Answer a;
      try {
        a = answer_from_json(j);
      } catch (const Error&) {
        continue;
      }
      if (a.state == PostState::applied && !a.applied) a.applied = j.value("modified", int64_t{0});
      up.bind(1, state_name(a.state));
      up.bind(2, a.postid);
      up.bind(3, a.discussion);
      up.bind(4, a.applied);
      up.bind(5, a.reason);
      up.bind(6, a.reason_text);
      up.bind(7, site);
      up.bind(8, a.uuid);
      if (up.exec() > 0) (a.state == PostState::applied ? st.applied : st.refused)++;
      up.reset();
    }
    t.commit();
    return 0;
  });
  size_t answered = st.applied + st.refused + st.waiting;
  if (cr.status != 0 || answered < st.offered) {
    st.adapter_error = "the adapter (" + fs.adapter_argv().back() + ") exited with status " + std::to_string(cr.status) +
                       " after answering " + std::to_string(answered) + " of " + std::to_string(st.offered) +
                       " posts: " + adapter_failure(cr.output);
    st.waiting = st.offered - st.applied - st.refused;
    // Each unanswered post says why it waits (distctl post list / show at HQ).
    guarded_sql("forum inbox", "cannot record the adapter's failure", [&] {
      SQLite::Transaction t(*db_);
      SQLite::Statement q(*db_,
                          "UPDATE posts SET attempts = attempts + 1, last_error = ? WHERE site = ? AND uuid = ? AND state = 'sent'");
      for (auto& r : waiting) {
        q.bind(1, st.adapter_error.substr(0, 2000));
        q.bind(2, r.post.site);
        q.bind(3, r.post.uuid);
        q.exec();
        q.reset();
      }
      t.commit();
      return 0;
    });
  }
  return st;
}

}  // namespace distd::forum
