#include "distd/forum/store.h"

#include <sqlite3.h>

#include <chrono>
#include <thread>

namespace distd::forum {

std::unique_ptr<SQLite::Database> open_store(const std::string& path, const char* schema, const std::string& what) {
  for (int attempt = 0;; ++attempt) {
    try {
      auto db = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, 10000);
      db->exec("PRAGMA journal_mode=WAL");
      db->exec("PRAGMA synchronous=FULL");
      db->exec(schema);
      return db;
    } catch (const SQLite::Exception& e) {
      bool busy = e.getErrorCode() == SQLITE_BUSY || e.getErrorCode() == SQLITE_LOCKED;
      if (!busy || attempt >= 50)
        throw Error(Errc::database, what + ": cannot open " + path + ": " + e.what(),
                    "check that the state directory is writable and not full");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace distd::forum
