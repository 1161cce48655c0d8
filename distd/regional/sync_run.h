// The center's sync, inside: one Run per channel and the steps it takes. Private to
// distd/regional/ (sync.cpp runs a channel; manifest_fetch.cpp, item_fetch.cpp and
// batch_fetch.cpp are its rooms). The public entry points are in sync.h.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "distd/net/http_client.h"
#include "distd/regional/installer.h"
#include "distd/regional/journal.h"
#include "distd/regional/planner.h"
#include "distd/regional/sync.h"
#include "manifest/digest.h"

namespace distd::sync_detail {

inline int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }

inline bool exists_file(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

// HQ's URL path of an object: /objects/<first 2 hex digits>/<hex digest>.
inline std::string object_path(const Digest& d) {
  std::string hex = digest_hex(d);
  return "/objects/" + hex.substr(0, 2) + "/" + hex;
}

// One channel's sync in progress: its settings, journal, HTTP client, installer and counters.
struct Run {
  Run(const Config& c, const RegionalSettings& s, const ChannelConfig& chan, const SyncOptions& o, Journal& journal,
      HttpClient& h, ChannelResult& result)
      : cfg(c), rs(s), ch(chan), opts(o), j(journal), http(h), res(result) {}
  const Config& cfg;
  const RegionalSettings& rs;
  const ChannelConfig& ch;
  const SyncOptions& opts;
  Journal& j;
  HttpClient& http;
  ChannelResult& res;
  std::unique_ptr<Installer> inst;
  bool deltas_unsupported = false;
  bool batches_unsupported = false;  // HQ answered POST /objects with something else than 200/404
  bool batches_raw = false;          // a zstd batch answer did not decode: ask for raw ones
  bool manifest_raw = false;         // a zstd manifest did not decode: ask for the plain file
  bool batch_missing = false;        // the last batch was answered 404: HQ lacks one of its objects
  size_t batch_limit = 0;            // objects per batch now (halved to find a missing one); 0: kBatchFiles
  SyncProgress prog;
  uint64_t wire_base = 0;
  std::chrono::steady_clock::time_point last_progress{};

  void log(const std::string& s) const {
    if (opts.log) opts.log(ch.name + ": " + s);
  }
  void progress(bool force = false) {
    if (!opts.progress) return;
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_progress < std::chrono::milliseconds(200)) return;
    last_progress = now;
    prog.wire_bytes = http.bytes_received() - wire_base;
    opts.progress(prog);
  }
  bool stopped() const { return opts.stop && opts.stop->load(); }
};

// manifest_fetch.cpp: the latest manifest (as a delta against the newest one here when HQ can),
// verified by the caller. whole: skip the delta.
std::string fetch_manifest(Run& r, bool whole = false);

// item_fetch.cpp: one plan item by delta or whole object, with resume, retries and install.
void set_state(Run& r, PlanItem& it, ItemState s);
void record_failure(Run& r, PlanItem& it, const std::string& msg);
// Whether a failed attempt at an item got its download further than any attempt before it.
class ResumeProgress {
 public:
  explicit ResumeProgress(const PlanItem& it);
  bool advanced(const PlanItem& it);  // true (and remembered) when it.offset passed the best so far

 private:
  std::string delta_id_;
  uint64_t best_;
};
// The most bytes one item may take from the wire in a run before it is given up (item_fetch.cpp).
uint64_t wire_budget(const PlanItem& it, int mismatches);
void fetch_item(Run& r, PlanItem& it, uint64_t done_before);

// batch_fetch.cpp: many small objects in one POST /objects answer, installed in groups.
constexpr uint64_t kBatchObjectMax = 1 << 20;  // objects up to this size are fetched in batches
constexpr size_t kBatchFiles = 1000;             // at most this many objects per batch ...
constexpr uint64_t kBatchBytes = 16 << 20;       // ... and about this many bytes
void install_group(Run& r, const std::vector<PlanItem*>& items, const std::vector<Installer::Staged>& files);
bool fetch_batch(Run& r, std::vector<PlanItem*>& group, uint64_t& done);

}  // namespace distd::sync_detail
