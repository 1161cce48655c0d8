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
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "distd/delta/rsync.h"
#include "distd/io/background_hasher.h"
#include "distd/io/pause.h"
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

// Fetches small whole objects with one POST /objects (their bytes concatenated in order),
// verifying each as it completes, and installs those that verified. After a cut, the object
// that was arriving keeps its bytes (fsynced, offset in the journal) for a resumable GET.
// Returns true when anything came through. Sets r.batches_unsupported when HQ does not serve
// batches (a plain web server): the caller then GETs each object.
bool fetch_batch(Run& r, std::vector<PlanItem*>& group, uint64_t& done) {
  std::vector<PlanItem*> todo;
  std::vector<PlanItem*> there;
  for (PlanItem* it : group) {
    if (r.inst->final_matches(it->path, it->digest, it->size))
      there.push_back(it);  // a killed run renamed it into place before the journal heard of it
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
  if (todo.empty()) return true;
  std::string req;
  req.reserve(todo.size() * 32);
  for (PlanItem* it : todo) {
    auto d = parse_digest_hex(it->digest);
    req.append(reinterpret_cast<const char*>(d->data()), d->size());
  }
  std::vector<PlanItem*> ok_items;  // verified, not installed yet
  std::vector<Installer::Staged> ok_files;
  size_t installed = 0;
  auto ok_since = std::chrono::steady_clock::now();
  // Installs what verified so far: every 2 s (or 256 files), so that a kill or a power cut during
  // a long batch on a slow link loses at most that much, as with single downloads.
  auto install_ok = [&] {
    if (ok_items.empty()) return;
    std::vector<PlanItem*> items = std::move(ok_items);
    std::vector<Installer::Staged> files = std::move(ok_files);
    ok_items.clear();
    ok_files.clear();
    install_group(r, items, files);  // (a failure here leaves them to the next run's checks)
    r.res.full += items.size();
    installed += items.size();
  };
  size_t k = 0;      // object arriving
  uint64_t got = 0;  // of its bytes
  UniqueFd fd;
  std::string sp;
  Hasher h;
  auto finish = [&] {
    PlanItem* it = todo[k];
    fd = UniqueFd();
    std::string hex = digest_hex(h.finish());
    if (hex == it->digest) {
      if (ok_items.empty()) ok_since = std::chrono::steady_clock::now();
      ok_items.push_back(it);
      ok_files.push_back({sp, it->path, it->mode});
      if (ok_items.size() >= 256 || std::chrono::steady_clock::now() - ok_since >= std::chrono::seconds(2))
        install_ok();
      done += it->size;
      r.prog.bytes_done = done;
      r.progress();
    } else {
      ++r.res.rejected;
      r.log("rejected: '" + it->path + "': the received bytes do not match the signed digest; fetching it again");
      ::unlink(sp.c_str());
    }
    ++k;
    got = 0;
  };
  auto open_next = [&] {
    for (; k < todo.size(); finish()) {
      sp = r.inst->staged(todo[k]->digest + ".part");
      h = Hasher();
      fd = UniqueFd(::open(sp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!fd) throw_errno("cannot create staged file", sp, errno);
      r.prog.current = todo[k]->path;
      if (todo[k]->size > 0) return;
    }
  };
  auto sink = [&](const char* p, size_t n) {
    while (n > 0) {
      if (k >= todo.size())
        throw Error(Errc::mismatch, "HQ sent more than the signed sizes of " + std::to_string(todo.size()) + " objects",
                    "they are fetched one by one instead");
      size_t take = static_cast<size_t>(std::min<uint64_t>(n, todo[k]->size - got));
      write_all(fd.get(), std::string_view(p, take), sp);
      h.update(p, take);
      got += take;
      p += take;
      n -= take;
      if (got == todo[k]->size) {
        finish();
        open_next();
      }
    }
  };
  std::exception_ptr failure;
  bool cut = false;
  try {
    open_next();
    HttpAnswer a = r.http.post_stream("/objects", req, sink);
    if (a.status == 404) {
      r.batch_missing = true;  // the caller halves the batch until the missing object is alone
      r.log("HQ lacks an object of a batch of " + std::to_string(todo.size()) + "; asking for fewer at a time");
      group.clear();
    } else if (a.status != 200) {
      r.batches_unsupported = true;
      r.log("HQ does not serve batches (HTTP " + std::to_string(a.status) + "); fetching objects one by one");
    } else if (k < todo.size()) {
      cut = true;
      r.log("link cut during a batch of " + std::to_string(todo.size()) + " objects; resuming");
    }
  } catch (const Error& e) {
    if (e.code() == Errc::network) {
      if (r.stopped()) failure = std::current_exception();
      cut = true;
      r.log(std::string("link cut during a batch, resuming: ") + e.what());
    } else if (e.code() == Errc::mismatch) {
      r.batches_unsupported = true;
      r.log(std::string("batch refused: ") + e.what());
    } else if (e.code() == Errc::no_space) {
      failure = std::make_exception_ptr(
          Error(Errc::no_space, "disk full while fetching '" + todo[k]->path + "' into " + r.inst->staging() + ": " + e.what(),
                "free space on that file system, then run the sync again: it resumes where it stopped"));
    } else {
      failure = std::current_exception();
    }
  }
  bool progressed = installed > 0 || !ok_items.empty();
  if (cut && k < todo.size() && got > 0 && fd) {
    // Keep the partial object for a Range GET: durable first, then the journal says so.
    if (try_sync_file(fd.get()) == 0) {
      PlanItem* it = todo[k];
      set_state(r, *it, ItemState::fetching);
      r.j.set_offset(r.ch.name, *it, got);
      progressed = true;
    }
  }
  fd = UniqueFd();
  install_ok();
  if (failure) std::rethrow_exception(failure);
  return progressed;
}

}  // namespace distd::sync_detail
