// The SQLite files of the forum channel (the center's outbox, HQ's inbox): how they are opened
// and how their errors read.
#pragma once

#include <memory>
#include <string>

#include <SQLiteCpp/SQLiteCpp.h>

#include "manifest/error.h"

namespace distd::forum {

// Opens (or creates) path in WAL mode with synchronous=FULL (a post is on disk before anyone is
// told so) and runs schema. Two threads or processes may create the file at the same moment;
// switching a new file to WAL can then report "locked" without waiting, so that is retried for
// up to 5 s. what: "forum outbox" or "forum inbox", for messages. Throws Error{database}.
std::unique_ptr<SQLite::Database> open_store(const std::string& path, const char* schema, const std::string& what);

// Runs f; an SQLite error becomes Error{database} "<what>: <doing>: <sqlite's words>".
template <class F>
auto guarded_sql(const std::string& what, const std::string& doing, F&& f) {
  try {
    return f();
  } catch (const SQLite::Exception& e) {
    throw Error(Errc::database, what + ": " + doing + ": " + e.what(), "check that the state directory is writable and not full");
  }
}

}  // namespace distd::forum
