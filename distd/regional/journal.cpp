#include "distd/regional/journal.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <ctime>

#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd {

namespace {

int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }

constexpr const char* kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs(
  channel TEXT PRIMARY KEY, target_version INTEGER NOT NULL, manifest_digest TEXT NOT NULL,
  started INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS items(
  channel TEXT NOT NULL, path BLOB NOT NULL, ord INTEGER NOT NULL, digest TEXT NOT NULL,
  size INTEGER NOT NULL, mode INTEGER NOT NULL, action TEXT NOT NULL, priority INTEGER NOT NULL,
  basis_path BLOB NOT NULL, basis_digest TEXT NOT NULL, delta_id TEXT NOT NULL, delta_size INTEGER NOT NULL,
  offset INTEGER NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL, last_error TEXT NOT NULL,
  PRIMARY KEY(channel, path)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_ord ON items(channel, ord);
CREATE TABLE IF NOT EXISTS channels(
  channel TEXT PRIMARY KEY, installed_version INTEGER NOT NULL DEFAULT 0, installed_digest TEXT NOT NULL DEFAULT '',
  latest_known_version INTEGER NOT NULL DEFAULT 0, last_attempt INTEGER NOT NULL DEFAULT 0,
  last_success INTEGER NOT NULL DEFAULT 0, last_error_time INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS link_events(
  id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, up INTEGER NOT NULL, detail TEXT NOT NULL);
)SQL";

Action parse_action(const std::string& s) {
  if (s == "unchanged") return Action::unchanged;
  if (s == "copy") return Action::copy;
  if (s == "copy-other") return Action::copy_other;
  if (s == "delta") return Action::delta;
  return Action::full;
}

ItemState parse_state(const std::string& s) {
  if (s == "fetching") return ItemState::fetching;
  if (s == "verified") return ItemState::verified;
  if (s == "installed") return ItemState::installed;
  if (s == "failed") return ItemState::failed;
  return ItemState::planned;
}

// Digests are TEXT columns of lower-case hex ('' for none), as docs/formats/journal.md has them:
// converted here and nowhere else.
std::string digest_text(const std::optional<Digest>& d) { return d ? digest_hex(*d) : std::string(); }

// The digest in a TEXT column; none when it is '' (or, in a damaged row, not 64 hex digits).
std::optional<Digest> digest_column(const SQLite::Column& c) {
  std::string s = c.getString();
  if (s.empty()) return std::nullopt;
  return parse_digest_hex(s);
}

void ensure_channel(SQLite::Database& db, const std::string& channel) {
  SQLite::Statement q(db, "INSERT OR IGNORE INTO channels(channel) VALUES(?)");
  q.bind(1, channel);
  q.exec();
}

}  // namespace

const char* action_name(Action a) {
  switch (a) {
    case Action::unchanged: return "unchanged";
    case Action::copy: return "copy";
    case Action::copy_other: return "copy-other";
    case Action::delta: return "delta";
    case Action::full: return "full";
  }
  return "full";
}

const char* state_name(ItemState s) {
  switch (s) {
    case ItemState::planned: return "planned";
    case ItemState::fetching: return "fetching";
    case ItemState::verified: return "verified";
    case ItemState::installed: return "installed";
    case ItemState::failed: return "failed";
  }
  return "planned";
}

template <class Fn>
auto Journal::guarded(const char* what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const SQLite::Exception& e) {
    // SQLite says "full" for a write that ran out of space, but "disk I/O error" when its
    // shared-memory file cannot grow: the file system's free space tells which.
    struct statvfs fsst {};
    const bool full = (e.getErrorCode() & 0xff) == SQLITE_FULL ||
                      (::statvfs(dir_name(path_).c_str(), &fsst) == 0 && fsst.f_bavail * fsst.f_frsize < (256u << 10));
    if (full)
      throw Error(Errc::no_space, std::string("journal ") + path_ + ": cannot " + what + ": the disk is full (" +
                                      e.what() + ")",
                  "free space on the state directory's file system; nothing is lost: the next sync resumes");
    throw Error(Errc::database, std::string("journal ") + path_ + ": cannot " + what + ": " + e.what(),
                "check free space and permissions of the state directory; if the file is damaged, move it "
                "away (the next sync re-plans from the files on disk)");
  }
}

namespace {

// True when SQLite says the file is not a sound database (as opposed to locked, full or unreadable).
bool is_damage(const SQLite::Exception& e) {
  const int c = e.getErrorCode() & 0xff;
  return c == SQLITE_CORRUPT || c == SQLITE_NOTADB;
}

}  // namespace

void Journal::open_db() {
  db_ = std::make_unique<SQLite::Database>(path_, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, 10000);
  db_->exec("PRAGMA journal_mode=WAL");
  db_->exec("PRAGMA synchronous=FULL");
  db_->exec(kSchema);
  db_->exec("INSERT OR IGNORE INTO meta(key, value) VALUES('format', 'distd-journal 1')");
  SQLite::Statement q(*db_, "PRAGMA quick_check");
  std::string verdict = q.executeStep() ? q.getColumn(0).getString() : "no answer";
  if (verdict != "ok") throw SQLite::Exception("quick_check: " + verdict, SQLITE_CORRUPT);
}

Journal::Journal(const std::string& path) : path_(path) {
  make_dirs(dir_name(path), 0750);
  try {
    open_db();
    return;
  } catch (const SQLite::Exception& e) {
    if (!is_damage(e)) guarded("open", [&]() -> int { throw; });
    damage_ = e.what();
  }
  // A damaged journal is moved aside, not repaired: what it knew is rebuilt from the disk. The
  // installed version comes from installed.manifest (verified against HQ's key), the highest
  // version seen from its second copy (channel_install.h: version floor), and a sync re-plans from
  // the files in the tree; only download offsets are lost.
  db_.reset();
  moved_to_ = path_ + ".damaged-" + std::to_string(now_s());
  rename_file(path_, moved_to_, "cannot move the damaged journal aside", path_);
  for (const char* side : {"-wal", "-shm"}) discard_file(path_ + side);
  fsync_dir(dir_name(path_));
  guarded("create a new journal", [&] {
    open_db();
    return 0;
  });
}

Journal::Journal(const std::string& path, ReadOnly) : path_(path) {
  auto open = [&](bool immutable) {
    if (!immutable) {
      db_ = std::make_unique<SQLite::Database>(path_, SQLite::OPEN_READONLY, 10000);
    } else {
      std::string uri = "file:";
      for (char c : path_) uri += c == '%' ? "%25" : c == '?' ? "%3f" : c == '#' ? "%23" : std::string(1, c);
      db_ = std::make_unique<SQLite::Database>(uri + "?immutable=1", SQLite::OPEN_READONLY | SQLite::OPEN_URI);
    }
    SQLite::Statement q(*db_, "PRAGMA quick_check");
    std::string verdict = q.executeStep() ? q.getColumn(0).getString() : "no answer";
    if (verdict != "ok") throw SQLite::Exception("quick_check: " + verdict, SQLITE_CORRUPT);
    return 0;
  };
  guarded("open (read-only)", [&] {
    try {
      return open(false);
    } catch (const SQLite::Exception& e) {
      // A WAL journal no process has open (no -wal file) in a directory this user cannot write:
      // SQLite cannot create its shared-memory file, so it is read as a file nobody writes.
      struct stat st {};
      if ((e.getErrorCode() & 0xff) != SQLITE_READONLY || ::stat((path_ + "-wal").c_str(), &st) == 0) throw;
      db_.reset();
      return open(true);
    }
  });
}

Journal::~Journal() = default;

Journal::Batch::Batch(Journal& j) : j_(j) {
  j_.guarded("begin a transaction", [&] {
    j_.db_->exec("BEGIN IMMEDIATE");
    return 0;
  });
  open_ = true;
}

Journal::Batch::~Batch() {
  try {
    commit();
  } catch (...) {
    try {
      j_.db_->exec("ROLLBACK");
    } catch (...) {
    }
  }
}

void Journal::Batch::commit() {
  if (!open_) return;
  open_ = false;
  j_.guarded("commit", [&] {
    j_.db_->exec("COMMIT");
    return 0;
  });
}

std::optional<RunPlan> Journal::plan(const std::string& channel) {
  return guarded("read the plan", [&]() -> std::optional<RunPlan> {
    SQLite::Statement q(*db_, "SELECT target_version, manifest_digest, started, done FROM runs WHERE channel=?");
    q.bind(1, channel);
    if (!q.executeStep()) return std::nullopt;
    RunPlan p;
    p.channel = channel;
    p.target_version = static_cast<uint64_t>(q.getColumn(0).getInt64());
    p.manifest_digest = digest_column(q.getColumn(1)).value_or(Digest{});
    p.started = q.getColumn(2).getInt64();
    p.done = q.getColumn(3).getInt() != 0;
    return p;
  });
}

void Journal::start_plan(const RunPlan& plan, const std::vector<PlanItem>& items) {
  guarded("store the plan", [&] {
    SQLite::Transaction t(*db_);
    {
      SQLite::Statement d(*db_, "DELETE FROM items WHERE channel=?");
      d.bind(1, plan.channel);
      d.exec();
      SQLite::Statement r(*db_,
                          "INSERT OR REPLACE INTO runs(channel, target_version, manifest_digest, started, done) "
                          "VALUES(?,?,?,?,0)");
      r.bind(1, plan.channel);
      r.bind(2, static_cast<int64_t>(plan.target_version));
      r.bind(3, digest_hex(plan.manifest_digest));
      r.bind(4, plan.started ? plan.started : now_s());
      r.exec();
      SQLite::Statement ins(*db_,
                            "INSERT INTO items(channel, path, ord, digest, size, mode, action, priority, basis_path,"
                            " basis_digest, delta_id, delta_size, offset, state, attempts, last_error)"
                            " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
      for (const auto& it : items) {
        ins.bind(1, plan.channel);
        ins.bind(2, it.path.data(), static_cast<int>(it.path.size()));
        ins.bind(3, it.ord);
        ins.bind(4, digest_hex(it.digest));
        ins.bind(5, static_cast<int64_t>(it.size));
        ins.bind(6, static_cast<int64_t>(it.mode));
        ins.bind(7, action_name(it.action));
        ins.bind(8, it.priority ? 1 : 0);
        ins.bind(9, it.basis_path.data(), static_cast<int>(it.basis_path.size()));
        ins.bind(10, digest_text(it.basis_digest));
        ins.bind(11, it.delta_id);
        ins.bind(12, static_cast<int64_t>(it.delta_size));
        ins.bind(13, static_cast<int64_t>(it.offset));
        ins.bind(14, state_name(it.state));
        ins.bind(15, it.attempts);
        ins.bind(16, it.last_error);
        ins.exec();
        ins.reset();
      }
    }
    t.commit();
    return 0;
  });
}

void Journal::finish_plan(const std::string& channel) {
  guarded("finish the plan", [&] {
    SQLite::Statement q(*db_, "UPDATE runs SET done=1 WHERE channel=?");
    q.bind(1, channel);
    q.exec();
    return 0;
  });
}

std::vector<PlanItem> Journal::items(const std::string& channel) { return select_items(channel, false, -1); }

std::vector<PlanItem> Journal::unfinished_items(const std::string& channel, int limit) {
  return select_items(channel, true, limit);
}

std::vector<PlanItem> Journal::select_items(const std::string& channel, bool unfinished, int limit) {
  return guarded("read the plan items", [&] {
    std::vector<PlanItem> out;
    SQLite::Statement q(*db_,
                        std::string("SELECT ord, path, digest, size, mode, action, priority, basis_path, basis_digest,"
                                    " delta_id, delta_size, offset, state, attempts, last_error FROM items WHERE "
                                    "channel=?") +
                            (unfinished ? " AND state<>'installed' ORDER BY state='failed' DESC, ord LIMIT ?"
                                        : " ORDER BY ord LIMIT ?"));
    q.bind(1, channel);
    q.bind(2, limit);
    while (q.executeStep()) {
      PlanItem it;
      it.ord = q.getColumn(0).getInt64();
      auto blob = [&](int i) {
        auto c = q.getColumn(i);
        return std::string(static_cast<const char*>(c.getBlob()), static_cast<size_t>(c.getBytes()));
      };
      it.path = blob(1);
      it.digest = digest_column(q.getColumn(2)).value_or(Digest{});
      it.size = static_cast<uint64_t>(q.getColumn(3).getInt64());
      it.mode = static_cast<uint32_t>(q.getColumn(4).getInt64());
      it.action = parse_action(q.getColumn(5).getString());
      it.priority = q.getColumn(6).getInt() != 0;
      it.basis_path = blob(7);
      it.basis_digest = digest_column(q.getColumn(8));
      it.delta_id = q.getColumn(9).getString();
      it.delta_size = static_cast<uint64_t>(q.getColumn(10).getInt64());
      it.offset = static_cast<uint64_t>(q.getColumn(11).getInt64());
      it.state = parse_state(q.getColumn(12).getString());
      it.attempts = q.getColumn(13).getInt();
      it.last_error = q.getColumn(14).getString();
      out.push_back(std::move(it));
    }
    return out;
  });
}

Pending Journal::pending(const std::string& channel) {
  return guarded("count pending items", [&] {
    Pending p;
    SQLite::Statement q(*db_,
                        "SELECT count(*), coalesce(sum(size),0) FROM items WHERE channel=? AND state<>'installed'");
    q.bind(1, channel);
    if (q.executeStep()) {
      p.files = static_cast<uint64_t>(q.getColumn(0).getInt64());
      p.bytes = static_cast<uint64_t>(q.getColumn(1).getInt64());
    }
    return p;
  });
}

namespace {
void bind_key(SQLite::Statement& q, int i, const std::string& channel, const std::string& path) {
  q.bind(i, channel);
  q.bind(i + 1, path.data(), static_cast<int>(path.size()));
}
}  // namespace

void Journal::set_offset(const std::string& channel, const std::string& path, uint64_t offset) {
  guarded("record a download offset", [&] {
    SQLite::Statement q(*db_, "UPDATE items SET offset=? WHERE channel=? AND path=?");
    q.bind(1, static_cast<int64_t>(offset));
    bind_key(q, 2, channel, path);
    q.exec();
    return 0;
  });
}

void Journal::set_state(const std::string& channel, const std::string& path, ItemState s, const std::string& error) {
  guarded("record an item state", [&] {
    SQLite::Statement q(*db_,
                        "UPDATE items SET state=?, last_error=CASE WHEN ?='' THEN last_error ELSE ? END"
                        " WHERE channel=? AND path=?");
    q.bind(1, state_name(s));
    q.bind(2, error);
    q.bind(3, error);
    bind_key(q, 4, channel, path);
    q.exec();
    return 0;
  });
}

void Journal::set_delta(const std::string& channel, const std::string& path, const std::string& id, uint64_t size) {
  guarded("record a delta", [&] {
    SQLite::Statement q(*db_, "UPDATE items SET delta_id=?, delta_size=?, offset=0 WHERE channel=? AND path=?");
    q.bind(1, id);
    q.bind(2, static_cast<int64_t>(size));
    bind_key(q, 3, channel, path);
    q.exec();
    return 0;
  });
}

void Journal::fall_back_to_full(const std::string& channel, const std::string& path, const std::string& why) {
  guarded("record a fallback", [&] {
    SQLite::Statement q(*db_,
                        "UPDATE items SET action='full', offset=0, state='planned', last_error=? WHERE channel=? AND "
                        "path=?");
    q.bind(1, why);
    bind_key(q, 2, channel, path);
    q.exec();
    return 0;
  });
}

void Journal::add_attempt(const std::string& channel, const std::string& path, const std::string& error) {
  guarded("record an attempt", [&] {
    SQLite::Statement q(*db_, "UPDATE items SET attempts=attempts+1, last_error=? WHERE channel=? AND path=?");
    q.bind(1, error);
    bind_key(q, 2, channel, path);
    q.exec();
    return 0;
  });
}

void Journal::set_offset(const std::string& channel, PlanItem& it, uint64_t offset) {
  set_offset(channel, it.path, offset);
  it.offset = offset;
}

void Journal::set_state(const std::string& channel, PlanItem& it, ItemState s, const std::string& error) {
  set_state(channel, it.path, s, error);
  it.state = s;
  if (!error.empty()) it.last_error = error;
}

void Journal::set_delta(const std::string& channel, PlanItem& it, const std::string& id, uint64_t size) {
  set_delta(channel, it.path, id, size);
  it.delta_id = id;
  it.delta_size = size;
  it.offset = 0;
}

void Journal::fall_back_to_full(const std::string& channel, PlanItem& it, const std::string& why) {
  fall_back_to_full(channel, it.path, why);
  it.action = Action::full;
  it.offset = 0;
  it.state = ItemState::planned;
  it.last_error = why;
}

void Journal::add_attempt(const std::string& channel, PlanItem& it, const std::string& error) {
  add_attempt(channel, it.path, error);
  it.attempts++;
  it.last_error = error;
}

ChannelRecord Journal::channel_record(const std::string& channel) {
  return guarded("read the channel record", [&] {
    ChannelRecord r;
    SQLite::Statement q(*db_,
                        "SELECT installed_version, installed_digest, latest_known_version, last_attempt, last_success,"
                        " last_error_time, last_error FROM channels WHERE channel=?");
    q.bind(1, channel);
    if (q.executeStep()) {
      r.installed_version = static_cast<uint64_t>(q.getColumn(0).getInt64());
      r.installed_digest = digest_column(q.getColumn(1));
      r.latest_known_version = static_cast<uint64_t>(q.getColumn(2).getInt64());
      r.last_attempt = q.getColumn(3).getInt64();
      r.last_success = q.getColumn(4).getInt64();
      r.last_error_time = q.getColumn(5).getInt64();
      r.last_error = q.getColumn(6).getString();
    }
    SQLite::Statement w(*db_, "SELECT value FROM meta WHERE key=?");
    w.bind(1, "warnings:" + channel);
    if (w.executeStep()) {
      std::string all = w.getColumn(0).getString();
      for (size_t at = 0; at < all.size();) {
        size_t nl = all.find('\n', at);
        if (nl == std::string::npos) nl = all.size();
        if (nl > at) r.warnings.push_back(all.substr(at, nl - at));
        at = nl + 1;
      }
    }
    return r;
  });
}

void Journal::set_warnings(const std::string& channel, const std::vector<std::string>& warnings) {
  guarded("record the channel's warnings", [&] {
    // In meta (key "warnings:<channel>"), so that journals of every format version keep them.
    std::string all;
    for (const auto& w : warnings) all += (all.empty() ? "" : "\n") + w;
    if (all.empty()) {
      SQLite::Statement q(*db_, "DELETE FROM meta WHERE key=?");
      q.bind(1, "warnings:" + channel);
      q.exec();
    } else {
      SQLite::Statement q(*db_, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
      q.bind(1, "warnings:" + channel);
      q.bind(2, all);
      q.exec();
    }
    return 0;
  });
}

void Journal::set_installed(const std::string& channel, uint64_t version, const Digest& digest) {
  guarded("record the installed version", [&] {
    ensure_channel(*db_, channel);
    SQLite::Statement q(*db_, "UPDATE channels SET installed_version=?, installed_digest=? WHERE channel=?");
    q.bind(1, static_cast<int64_t>(version));
    q.bind(2, digest_hex(digest));
    q.bind(3, channel);
    q.exec();
    return 0;
  });
}

void Journal::set_latest_known(const std::string& channel, uint64_t version) {
  guarded("record HQ's latest version", [&] {
    ensure_channel(*db_, channel);
    SQLite::Statement q(*db_, "UPDATE channels SET latest_known_version=? WHERE channel=?");
    q.bind(1, static_cast<int64_t>(version));
    q.bind(2, channel);
    q.exec();
    return 0;
  });
}

void Journal::record_attempt(const std::string& channel) {
  guarded("record an attempt", [&] {
    ensure_channel(*db_, channel);
    SQLite::Statement q(*db_, "UPDATE channels SET last_attempt=? WHERE channel=?");
    q.bind(1, now_s());
    q.bind(2, channel);
    q.exec();
    return 0;
  });
}

void Journal::record_success(const std::string& channel) {
  guarded("record a success", [&] {
    ensure_channel(*db_, channel);
    // A success clears the error before it: status shows what is wrong now.
    SQLite::Statement q(*db_, "UPDATE channels SET last_success=?, last_error='', last_error_time=0 WHERE channel=?");
    q.bind(1, now_s());
    q.bind(2, channel);
    q.exec();
    return 0;
  });
}

void Journal::record_error(const std::string& channel, const std::string& message) {
  guarded("record an error", [&] {
    ensure_channel(*db_, channel);
    SQLite::Statement q(*db_, "UPDATE channels SET last_error_time=?, last_error=? WHERE channel=?");
    q.bind(1, now_s());
    q.bind(2, message);
    q.bind(3, channel);
    q.exec();
    return 0;
  });
}

void Journal::record_link(bool up, const std::string& detail) {
  guarded("record the link state", [&] {
    SQLite::Statement last(*db_, "SELECT up FROM link_events ORDER BY id DESC LIMIT 1");
    if (last.executeStep() && (last.getColumn(0).getInt() != 0) == up) return 0;
    SQLite::Statement q(*db_, "INSERT INTO link_events(time, up, detail) VALUES(?,?,?)");
    q.bind(1, now_s());
    q.bind(2, up ? 1 : 0);
    q.bind(3, detail);
    q.exec();
    // Keep the history bounded (a flapping link over years).
    db_->exec("DELETE FROM link_events WHERE id <= (SELECT max(id) FROM link_events) - 1000");
    return 0;
  });
}

std::vector<LinkEvent> Journal::link_history(int limit) {
  return guarded("read the link history", [&] {
    std::vector<LinkEvent> out;
    SQLite::Statement q(*db_, "SELECT time, up, detail FROM link_events ORDER BY id DESC LIMIT ?");
    q.bind(1, limit);
    while (q.executeStep())
      out.push_back({q.getColumn(0).getInt64(), q.getColumn(1).getInt() != 0, q.getColumn(2).getString()});
    return out;
  });
}

}  // namespace distd
