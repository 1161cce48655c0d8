#include "manifest/stat_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <cstring>

#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd {

StatRecord stat_record_of(const struct stat& st) {
  auto ns = [](const struct timespec& ts) { return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec; };
  StatRecord r;
  r.size = static_cast<uint64_t>(st.st_size);
  r.mtime_ns = ns(st.st_mtim);
  r.ctime_ns = ns(st.st_ctim);
  r.ino = st.st_ino;
  return r;
}

StatCache::StatCache(const std::string& db_path, const std::string& root) : db_path_(db_path) {
  try {
    open(root);
  } catch (const SQLite::Exception&) {
    // A damaged cache costs a rehash, never a failure.
    db_.reset();
    discard_file(db_path);
    discard_file(db_path + "-wal");
    discard_file(db_path + "-shm");
    try {
      open(root);
    } catch (const SQLite::Exception& e) {
      throw Error(Errc::database, "cannot open stat cache '" + db_path + "': " + e.what(),
                  "check that the state directory is writable");
    }
  }
}

StatCache::~StatCache() = default;

void StatCache::open(const std::string& root) {
  db_ = std::make_unique<SQLite::Database>(db_path_, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db_->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  db_->exec(
      "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "CREATE TABLE IF NOT EXISTS files(path BLOB PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
      " ctime_ns INTEGER NOT NULL, ino INTEGER NOT NULL, digest BLOB NOT NULL, hashed_at_ns INTEGER NOT NULL)"
      " WITHOUT ROWID;");
  SQLite::Statement q(*db_, "SELECT value FROM meta WHERE key='root'");
  std::string stored = q.executeStep() ? q.getColumn(0).getString() : std::string();
  if (stored != root) {
    SQLite::Transaction t(*db_);
    db_->exec("DELETE FROM files");
    SQLite::Statement ins(*db_, "INSERT OR REPLACE INTO meta(key, value) VALUES('root', ?)");
    ins.bind(1, root);
    ins.exec();
    t.commit();
  }
  // A cheap page-level check catches a torn database file.
  SQLite::Statement chk(*db_, "PRAGMA quick_check");
  if (chk.executeStep() && chk.getColumn(0).getString() != "ok") throw SQLite::Exception("quick_check failed");
}

void StatCache::for_each_sorted(const std::function<void(std::string_view, const StatRecord&)>& fn) {
  try {
    SQLite::Statement q(*db_,
                        "SELECT path, size, mtime_ns, ctime_ns, ino, digest, hashed_at_ns FROM files ORDER BY path");
    while (q.executeStep()) {
      auto path = q.getColumn(0);
      auto dig = q.getColumn(5);
      if (dig.getBytes() != 32) continue;
      StatRecord r;
      r.size = static_cast<uint64_t>(q.getColumn(1).getInt64());
      r.mtime_ns = q.getColumn(2).getInt64();
      r.ctime_ns = q.getColumn(3).getInt64();
      r.ino = static_cast<uint64_t>(q.getColumn(4).getInt64());
      std::memcpy(r.digest.data(), dig.getBlob(), 32);
      r.hashed_at_ns = q.getColumn(6).getInt64();
      fn(std::string_view(static_cast<const char*>(path.getBlob()), static_cast<size_t>(path.getBytes())), r);
    }
  } catch (const SQLite::Exception&) {
    // Unreadable rows: what was not visited is hashed again.
  }
}

void StatCache::update(const std::vector<std::pair<const std::string*, const StatRecord*>>& upserts,
                       const std::vector<std::string>& deletes) {
  if (upserts.empty() && deletes.empty()) return;
  try {
    SQLite::Transaction t(*db_);
    SQLite::Statement up(*db_,
                         "INSERT OR REPLACE INTO files(path, size, mtime_ns, ctime_ns, ino, digest, hashed_at_ns)"
                         " VALUES(?,?,?,?,?,?,?)");
    for (const auto& [path, r] : upserts) {
      up.bind(1, path->data(), static_cast<int>(path->size()));
      up.bind(2, static_cast<int64_t>(r->size));
      up.bind(3, r->mtime_ns);
      up.bind(4, r->ctime_ns);
      up.bind(5, static_cast<int64_t>(r->ino));
      up.bind(6, r->digest.data(), 32);
      up.bind(7, r->hashed_at_ns);
      up.exec();
      up.reset();
    }
    SQLite::Statement del(*db_, "DELETE FROM files WHERE path = ?");
    for (const auto& path : deletes) {
      del.bind(1, path.data(), static_cast<int>(path.size()));
      del.exec();
      del.reset();
    }
    t.commit();
  } catch (const SQLite::Exception& e) {
    throw Error(Errc::database, "cannot update stat cache '" + db_path_ + "': " + e.what(),
                "check free space and permissions of the state directory");
  }
}

}  // namespace distd
