#include "distd/regional/sync_run.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "distd/delta/rsync.h"
#include "distd/io/background_hasher.h"
#include "distd/io/pause.h"
#include "distd/io/zstd_stream.h"
#include "distd/net/http_client.h"
#include "distd/regional/channel_install.h"
#include "distd/regional/delta_request.h"
#include "distd/regional/installer.h"
#include "distd/regional/journal.h"
#include "distd/regional/planner.h"
#include "distd/regional/sync_run.h"
#include "manifest/encoding.h"
#include "manifest/fault.h"
#include "manifest/fs.h"
#include "manifest/manifest.h"
#include "manifest/scan.h"

namespace distd::sync_detail {

// Installs verified staged files together and records them in one journal transaction.
void install_group(Run& r, const std::vector<PlanItem*>& items, const std::vector<Installer::Staged>& files) {
  install_verified(*r.inst, r.j, r.ch.name, items, files);
  r.prog.files_done += items.size();
}

namespace {

// The items of group already at their final path with their signed content (a killed run
// renamed them into place before the journal heard of it) are recorded installed and counted
// in done; returns the others, in order.
std::vector<PlanItem*> skip_in_place(Run& r, const std::vector<PlanItem*>& group, uint64_t& done) {
  std::vector<PlanItem*> todo;
  std::vector<PlanItem*> there;
  for (PlanItem* it : group) {
    if (r.inst->final_matches(it->path, it->digest, it->size))
      there.push_back(it);
    else
      todo.push_back(it);
  }
  if (!there.empty()) {
    Journal::Batch b(r.j);
    for (PlanItem* it : there) {
      set_state(r, *it, ItemState::installed);
      r.prog.files_done++;
      r.res.full++;
      done += it->size;
    }
  }
  return todo;
}

// The body of POST /objects: the digests of the items, 32 raw bytes each, in order.
std::string batch_request(const std::vector<PlanItem*>& todo) {
  std::string req;
  req.reserve(todo.size() * 32);
  for (PlanItem* it : todo) req.append(reinterpret_cast<const char*>(it->digest.data()), it->digest.size());
  return req;
}

// Receives one batch answer (the objects of todo concatenated in order) into staged files,
// verifying each as it completes and installing what verified in groups. One per batch, on the
// thread that runs the sync.
class BatchReceiver {
 public:
  BatchReceiver(Run& r, const std::vector<PlanItem*>& todo, uint64_t& done) : r_(r), todo_(todo), done_(done) {}

  // Creates the staged file of the next object with bytes (empty objects are complete at once).
  void open_next() {
    for (; k_ < todo_.size(); finish()) {
      sp_ = r_.inst->staged(digest_hex(todo_[k_]->digest) + ".part");
      h_ = Hasher();
      fd_ = UniqueFd(::open(sp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!fd_) throw_errno("cannot create staged file", sp_, errno);
      r_.prog.current = todo_[k_]->path;
      if (todo_[k_]->size > 0) return;
    }
  }

  // Takes the next n bytes of the answer. Throws Error{mismatch} past the signed sizes.
  void take(const char* p, size_t n) {
    while (n > 0) {
      if (k_ >= todo_.size())
        throw Error(Errc::mismatch, "HQ sent more than the signed sizes of " + std::to_string(todo_.size()) + " objects",
                    "they are fetched one by one instead");
      size_t take = static_cast<size_t>(std::min<uint64_t>(n, todo_[k_]->size - got_));
      write_all(fd_.get(), std::string_view(p, take), sp_);
      h_.update(p, take);
      got_ += take;
      p += take;
      n -= take;
      if (got_ == todo_[k_]->size) {
        finish();
        open_next();
      }
    }
  }

  // Installs what verified so far: every 2 s (or 256 files), so that a kill or a power cut during
  // a long batch on a slow link loses at most that much, as with single downloads.
  void install_ok() {
    if (ok_items_.empty()) return;
    std::vector<PlanItem*> items = std::move(ok_items_);
    std::vector<Installer::Staged> files = std::move(ok_files_);
    ok_items_.clear();
    ok_files_.clear();
    install_group(r_, items, files);  // (a failure here leaves them to the next run's checks)
    r_.res.full += items.size();
    installed_ += items.size();
  }

  // After a cut: keeps the partial object arriving for a Range GET, durable first, then the
  // journal says so. Returns true when it did.
  bool keep_partial() {
    if (k_ >= todo_.size() || got_ == 0 || !fd_) return false;
    if (try_sync_file(fd_.get()) != 0) return false;
    PlanItem* it = todo_[k_];
    set_state(r_, *it, ItemState::fetching);
    r_.j.set_offset(r_.ch.name, *it, got_);
    return true;
  }

  void close() { fd_ = UniqueFd(); }
  bool complete() const { return k_ >= todo_.size(); }
  PlanItem& arriving() const { return *todo_[k_]; }  // REQUIRES: !complete()
  bool verified_any() const { return installed_ > 0 || !ok_items_.empty(); }

 private:
  // The object arriving is complete: queued for install when it matches its signed digest,
  // discarded (and counted rejected) otherwise.
  void finish() {
    PlanItem* it = todo_[k_];
    fd_ = UniqueFd();
    if (h_.finish() == it->digest) {
      if (ok_items_.empty()) ok_since_ = std::chrono::steady_clock::now();
      ok_items_.push_back(it);
      ok_files_.push_back({sp_, it->path, it->mode});
      if (ok_items_.size() >= 256 || std::chrono::steady_clock::now() - ok_since_ >= std::chrono::seconds(2))
        install_ok();
      done_ += it->size;
      r_.prog.bytes_done = done_;
      r_.progress();
    } else {
      ++r_.res.rejected;
      r_.log("rejected: '" + it->path + "': the received bytes do not match the signed digest; fetching it again");
      discard_file(sp_);
    }
    ++k_;
    got_ = 0;
  }

  Run& r_;
  const std::vector<PlanItem*>& todo_;
  uint64_t& done_;
  std::vector<PlanItem*> ok_items_;  // verified, not installed yet
  std::vector<Installer::Staged> ok_files_;
  size_t installed_ = 0;
  std::chrono::steady_clock::time_point ok_since_ = std::chrono::steady_clock::now();
  size_t k_ = 0;      // object arriving
  uint64_t got_ = 0;  // of its bytes
  UniqueFd fd_;
  std::string sp_;
  Hasher h_;
};

// Sends the batch request and receives the answer into rx. Returns the error to rethrow once
// the verified objects are installed (none when the batch merely ended early); *cut is set when
// the link broke before every object arrived. Sets r.batch_missing (and clears group) on a 404,
// r.batches_unsupported when HQ does not serve batches.
std::exception_ptr receive_batch(Run& r, BatchReceiver& rx, std::vector<PlanItem*>& group,
                                 const std::vector<PlanItem*>& todo, bool* cut) {
  std::exception_ptr failure;
  // The answer, raw or one zstd stream (decoded here, window capped: docs/formats/compression.md).
  std::string encoding;
  std::optional<ZstdDecoder> zstd;
  bool undecodable = false;
  auto sink = [&](const char* p, size_t n) {
    if (encoding.empty() || encoding == "identity") return rx.take(p, n);
    if (encoding != "zstd") {
      undecodable = true;
      throw Error(Errc::mismatch, "HQ's batch answer has Content-Encoding '" + encoding.substr(0, 40) +
                                      "', which distd did not ask for");
    }
    if (!zstd) zstd.emplace();
    bool taking = false;  // an error while the receiver takes bytes is the receiver's, not the decoder's
    try {
      zstd->write(p, n, [&](const char* q, size_t m) {
        taking = true;
        rx.take(q, m);
        taking = false;
      }, "HQ's batch answer");
    } catch (const Error& e) {
      if (e.code() == Errc::mismatch && !taking) undecodable = true;
      throw;
    }
  };
  try {
    rx.open_next();
    HttpAnswer a = r.http.post_stream("/objects", batch_request(todo), sink, r.batches_raw ? "" : "zstd", &encoding);
    if (a.status == 404) {
      r.batch_missing = true;  // the caller halves the batch until the missing object is alone
      r.log("HQ lacks an object of a batch of " + std::to_string(todo.size()) + "; asking for fewer at a time");
      group.clear();
    } else if (a.status == 401 || a.status == 403) {
      r.batches_unsupported = true;
      r.log("HQ serves batches only to enrolled sites (HTTP " + std::to_string(a.status) + ": " +
            a.body.substr(0, std::min(a.body.find('\n'), size_t(300))) + "); fetching objects one by one");
    } else if (a.status != 200) {
      r.batches_unsupported = true;
      r.log("HQ does not serve batches (HTTP " + std::to_string(a.status) + "); fetching objects one by one");
    } else if (!rx.complete()) {
      *cut = true;
      r.log("link cut during a batch of " + std::to_string(todo.size()) + " objects; resuming");
    }
  } catch (const Error& e) {
    if (e.code() == Errc::network) {
      if (r.stopped()) failure = std::current_exception();
      *cut = true;
      r.log(std::string("link cut during a batch, resuming: ") + e.what());
    } else if (e.code() == Errc::mismatch && undecodable && !r.batches_raw) {
      r.batches_raw = true;
      *cut = true;
      r.log(std::string("batch answer refused: ") + e.what() + "; asking for uncompressed batches");
    } else if (e.code() == Errc::mismatch) {
      r.batches_unsupported = true;
      r.log(std::string("batch refused: ") + e.what());
    } else if (e.code() == Errc::no_space) {
      failure = std::make_exception_ptr(
          Error(Errc::no_space, "disk full while fetching '" + rx.arriving().path + "' into " + r.inst->staging() + ": " + e.what(),
                "free space on that file system, then run the sync again: it resumes where it stopped"));
    } else {
      failure = std::current_exception();
    }
  }
  return failure;
}

}  // namespace

// Fetches small whole objects with one POST /objects (their bytes concatenated in order),
// verifying each as it completes, and installs those that verified. After a cut, the object
// that was arriving keeps its bytes (fsynced, offset in the journal) for a resumable GET.
// Returns true when anything came through. Sets r.batches_unsupported when HQ does not serve
// batches (a plain web server): the caller then GETs each object.
bool fetch_batch(Run& r, std::vector<PlanItem*>& group, uint64_t& done) {
  std::vector<PlanItem*> todo = skip_in_place(r, group, done);
  if (todo.empty()) return true;
  BatchReceiver rx(r, todo, done);
  bool cut = false;
  std::exception_ptr failure = receive_batch(r, rx, group, todo, &cut);
  bool progressed = rx.verified_any();
  if (cut && rx.keep_partial()) progressed = true;
  rx.close();
  rx.install_ok();
  if (failure) std::rethrow_exception(failure);
  return progressed;
}

}  // namespace distd::sync_detail
