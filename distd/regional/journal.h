// The regional journal: what this center is doing and has done, so that kill -9, a power cut
// or a dropped link resumes the same plan from the same byte offsets.
//
// SQLite (SQLiteCpp) at <state_dir>/journal.sqlite, WAL mode, synchronous=FULL: an offset is
// committed only after the staged bytes it vouches for were fsynced, and each commit is durable
// itself. The HTTP client makes a download durable and reports its offset every 2 s
// (kSyncInterval in distd/net/http_client.cpp) and at its end, so a power cut loses at most the
// last 2 s of a download; small objects are recorded per batch group (Batch below). The cost,
// one fsync and one WAL fsync every 2 s on a link of tens of kbit/s, is negligible; NORMAL could
// roll back hundreds of commits (everything since the last checkpoint) and make a center
// download them again. The format is described in docs/formats/journal.md: digests are hex TEXT
// there ('' for none) and Digest values here, converted only in journal.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "manifest/digest.h"

namespace SQLite { class Database; }

namespace distd {

// copy_other: a copy from another channel's tree at this center (the same verified bytes, e.g.
// a course's files/<sha1> member and moodledata's filedir blob); basis_path "<channel>/<path>".
enum class Action { unchanged, copy, delta, full, copy_other };
enum class ItemState { planned, fetching, verified, installed, failed };

const char* action_name(Action a);
const char* state_name(ItemState s);

// One entry of the new manifest and how it gets here.
struct PlanItem {
  int64_t ord = 0;          // execution order (0, 1, ...)
  std::string path;         // relative path in the channel
  Digest digest{};          // BLAKE2b-256 of the signed entry
  uint64_t size = 0;
  uint32_t mode = 0644;
  Action action = Action::full;
  bool priority = false;
  std::string basis_path;    // copy: the local source; copy_other: "<channel>/<path>"; delta: the old version (same path)
  std::optional<Digest> basis_digest;  // of the basis; none when there is no basis (full)
  std::string delta_id;      // hex, once HQ answered the delta request
  uint64_t delta_size = 0;
  uint64_t offset = 0;       // durable bytes in the staged download
  ItemState state = ItemState::planned;
  int attempts = 0;
  std::string last_error;
};

// The plan of the current run of one channel.
struct RunPlan {
  std::string channel;
  uint64_t target_version = 0;
  Digest manifest_digest{};  // body digest of the target manifest
  int64_t started = 0;
  bool done = false;
};

struct ChannelRecord {
  uint64_t installed_version = 0;  // 0: nothing installed yet
  std::optional<Digest> installed_digest;  // body digest of the installed manifest; none: not recorded
  uint64_t latest_known_version = 0;  // the newest version HQ offered
  int64_t last_attempt = 0, last_success = 0, last_error_time = 0;
  std::string last_error;
  std::vector<std::string> warnings;  // from the last sync that verified HQ's manifest (freshness.h)
};

struct LinkEvent {
  int64_t time = 0;
  bool up = false;
  std::string detail;
};

struct Pending {
  uint64_t files = 0, bytes = 0;
};

class Journal {
 public:
  // Opens (creating) the journal. A damaged file (SQLite: corrupt or not a database, or a
  // failing quick_check) is moved aside to <path>.damaged-<unix time> and a new journal started
  // (rebuilt_from() says so). Throws Error{database} naming the file when it cannot open it.
  explicit Journal(const std::string& path);
  // Opens an existing journal read-only (distctl status, which may run as a user that can only
  // read the state directory): no schema change, a damaged file is reported (Error{database}),
  // not moved aside. Only the reading methods may be called.
  struct ReadOnly {};
  Journal(const std::string& path, ReadOnly);
  // When the journal was rebuilt: where the damaged one went, and what SQLite said of it.
  const std::string& rebuilt_from() const { return moved_to_; }
  const std::string& damage() const { return damage_; }
  ~Journal();

  std::optional<RunPlan> plan(const std::string& channel);
  // Replaces the channel's plan and its items in one transaction.
  void start_plan(const RunPlan& plan, const std::vector<PlanItem>& items);
  void finish_plan(const std::string& channel);
  std::vector<PlanItem> items(const std::string& channel);
  // Items not installed yet (failed first), at most limit of them (-1: all).
  std::vector<PlanItem> unfinished_items(const std::string& channel, int limit);
  Pending pending(const std::string& channel);

  void set_offset(const std::string& channel, const std::string& path, uint64_t offset);
  void set_state(const std::string& channel, const std::string& path, ItemState s, const std::string& error = {});
  void set_delta(const std::string& channel, const std::string& path, const std::string& id, uint64_t size);
  // Turns a copy or delta item into a full download from offset 0.
  void fall_back_to_full(const std::string& channel, const std::string& path, const std::string& why);
  void add_attempt(const std::string& channel, const std::string& path, const std::string& error);
  // The same for an item of the plan in memory: the journal row and the item change together
  // (the row first; when it throws, the item is left as it was).
  void set_offset(const std::string& channel, PlanItem& it, uint64_t offset);
  void set_state(const std::string& channel, PlanItem& it, ItemState s, const std::string& error = {});
  void set_delta(const std::string& channel, PlanItem& it, const std::string& id, uint64_t size);
  void fall_back_to_full(const std::string& channel, PlanItem& it, const std::string& why);
  void add_attempt(const std::string& channel, PlanItem& it, const std::string& error);

  ChannelRecord channel_record(const std::string& channel);
  void set_installed(const std::string& channel, uint64_t version, const Digest& digest);
  void set_latest_known(const std::string& channel, uint64_t version);
  void record_attempt(const std::string& channel);
  void record_success(const std::string& channel);
  void record_error(const std::string& channel, const std::string& message);
  // Replaces the channel's warnings (none clears them).
  void set_warnings(const std::string& channel, const std::vector<std::string>& warnings);

  // Groups the writes made while it lives into one SQLite transaction: one WAL fsync for a
  // thousand small files instead of one per state change. Every write must still come after
  // the disk state it records is durable, so committing early (on destruction, also during
  // unwinding) is always correct; a crash before the commit only makes the journal lag.
  class Batch {
   public:
    explicit Batch(Journal& j);
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    void commit();

   private:
    Journal& j_;
    bool open_ = false;
  };

  // Appends an event only when the link state changes (or on the first event).
  void record_link(bool up, const std::string& detail);
  std::vector<LinkEvent> link_history(int limit);

 private:
  std::vector<PlanItem> select_items(const std::string& channel, bool unfinished, int limit);
  template <class Fn>
  auto guarded(const char* what, Fn&& fn) -> decltype(fn());
  void open_db();
  std::string path_;
  std::string moved_to_, damage_;
  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace distd
