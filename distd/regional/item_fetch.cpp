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
#include <functional>
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

void fall_back(Run& r, PlanItem& it, const std::string& why) {
  r.log("'" + it.path + "': whole file instead of a delta: " + why);
  r.j.fall_back_to_full(r.ch.name, it, why);
  if (!it.delta_id.empty()) discard_file(r.inst->staged(it.delta_id + ".delta"));
  ++r.res.delta_fallbacks;
}

void set_state(Run& r, PlanItem& it, ItemState s) {
  if (it.state == s) return;
  r.j.set_state(r.ch.name, it, s);
}

void install_item(Run& r, PlanItem& it, const std::string& staged) {
  set_state(r, it, ItemState::verified);
  fault_point("after_verify");
  r.inst->install(staged, it.path, it.mode);
  set_state(r, it, ItemState::installed);
  r.prog.files_done++;
}

// Opens a staged download, trusting only the journal's offset of it.
UniqueFd open_staged(const std::string& path, uint64_t* offset) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) throw_errno("cannot open staged file", path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat", path, errno);
  if (static_cast<uint64_t>(st.st_size) < *offset) *offset = 0;  // the journal is ahead of the disk: start over
  if (::ftruncate(fd.get(), static_cast<off_t>(*offset)) != 0) throw_errno("cannot truncate", path, errno);
  return fd;
}

// The staged download of it, kept bytes and all, with the journal's offset set to what the disk
// really holds (*off), and the item marked fetching.
UniqueFd open_for_resume(Run& r, PlanItem& it, const std::string& staged, uint64_t* off) {
  *off = it.offset;
  UniqueFd fd = open_staged(staged, off);
  if (*off != it.offset) r.j.set_offset(r.ch.name, it, *off);
  set_state(r, it, ItemState::fetching);
  return fd;
}

// What a download reports each time more of it is durable: the journal's offset and progress.
std::function<void(uint64_t)> durable_progress(Run& r, PlanItem& it, uint64_t done_before) {
  return [&r, &it, done_before](uint64_t o) {
    r.j.set_offset(r.ch.name, it, o);
    r.prog.bytes_done = done_before + o;
    r.progress();
  };
}

// Journal marks of a whole-object item (delta_id of an Action::full row; docs/formats/journal.md):
// its stored zstd form is being fetched (delta_size unused), or HQ has none.
constexpr const char* kZstdForm = "zst";
constexpr const char* kNoZstdForm = "raw";

bool wants_zstd_form(const PlanItem& it) {
  if (it.size < kZstdFetchMin) return false;
  return it.delta_id == kZstdForm || (it.delta_id.empty() && it.offset == 0);
}

// Fetches the object's stored zstd form (<object>.zst, docs/formats/compression.md), resumable
// by Range on those bytes, then decodes it and installs the result once it matches the signed
// digest. Returns false when it should be fetched as it is: HQ has no such form (404), or the
// form did not decode to the signed bytes (counted rejected). The journal then says "raw".
bool fetch_zstd_form(Run& r, PlanItem& it, uint64_t done_before) {
  const std::string hex = digest_hex(it.digest);
  const std::string zp = r.inst->staged(hex + ".zst.part");
  const std::string sp = r.inst->staged(hex + ".part");
  auto without_form = [&](const std::string& why) {
    discard_file(zp);
    discard_file(sp);
    if (!why.empty()) r.log("'" + it.path + "': fetching it uncompressed: " + why);
    r.j.set_delta(r.ch.name, it, kNoZstdForm, 0);
    return false;
  };
  if (it.delta_id != kZstdForm) r.j.set_delta(r.ch.name, it, kZstdForm, 0);
  const std::string what = "HQ's compressed form of '" + it.path + "'";
  uint64_t off = 0, got_size = 0;
  Digest got{};
  try {
    UniqueFd fd = open_for_resume(r, it, zp, &off);
    // Decoded as it arrives (the kept prefix too), hashed behind the decoder: verified soon
    // after the last byte.
    std::optional<BackgroundZstdDecoder> dec(std::in_place, fd.get(), zp, sp, it.size, what);
    DownloadResult d;
    try {
      // Never more than the object itself: HQ keeps a form only when it is smaller.
      d = r.http.download_to_fd(object_path(it.digest) + ".zst", fd.get(), zp, off, it.size,
                                durable_progress(r, it, done_before));
    } catch (const Error& e) {
      dec.reset();
      if (e.code() == Errc::not_found) return without_form("");  // an incompressible object
      if (e.code() == Errc::mismatch) return without_form(e.what());
      throw;
    }
    if (d.restarted) {  // the server sent it all again: what the decoder read may be stale
      dec.reset();
      got = zstd_decode_file(zp, sp, it.size, what, &got_size);
    } else {
      got = dec->finish(d.size, &got_size);
    }
  } catch (const Error& e) {
    if (e.code() != Errc::mismatch) throw;
    ++r.res.rejected;
    return without_form(e.what());
  }
  if (got_size != it.size || got != it.digest) {
    ++r.res.rejected;
    return without_form("its compressed form decodes to bytes that do not match the signed digest");
  }
  install_item(r, it, sp);
  discard_file(zp);
  return true;
}

void fetch_full(Run& r, PlanItem& it, uint64_t done_before) {
  if (wants_zstd_form(it) && fetch_zstd_form(r, it, done_before)) return;
  std::string sp = r.inst->staged(digest_hex(it.digest) + ".part");
  uint64_t off = 0;
  UniqueFd fd = open_for_resume(r, it, sp, &off);
  if (off < it.size) {
    auto on_durable = durable_progress(r, it, done_before);
    // Verified as it arrives (a second thread hashes behind the writer, the kept prefix too).
    BackgroundHasher hasher(fd.get(), sp);
    DownloadResult d = r.http.download_to_fd(object_path(it.digest), fd.get(), sp, off, it.size, on_durable);
    if (d.size != it.size)
      throw Error(Errc::network,
                  "the download of '" + it.path + "' ended after " + std::to_string(d.size) + " of " +
                      std::to_string(it.size) + " bytes",
                  "the next attempt resumes from there");
    Digest got{};
    if (d.restarted) {  // the server sent it all again: what the thread read may be stale
      hasher.stop();
      r.inst->verify(sp, it.digest, it.size, it.path);
      got = it.digest;
    } else {
      got = hasher.finish(it.size);
    }
    fd = UniqueFd();
    if (got != it.digest)
      throw Error(Errc::mismatch,
                  "'" + it.path + "': the received bytes do not match the signed digest (got " +
                      digest_hex(got).substr(0, 16) + "..., signed " + digest_hex(it.digest).substr(0, 16) + "...)",
                  "the bytes are discarded and fetched again; if this repeats, HQ's copy is damaged: republish there");
  } else {
    fd = UniqueFd();
    r.inst->verify(sp, it.digest, it.size, it.path);
  }
  install_item(r, it, sp);
}

// Returns false when the item fell back to a full download.
bool fetch_delta(Run& r, PlanItem& it, uint64_t done_before) {
  if (r.deltas_unsupported) {
    fall_back(r, it, "HQ does not compute deltas");
    return false;
  }
  std::string basis = r.inst->final_path(it.path);
  if (it.delta_id.empty()) {
    std::string sig;
    try {
      UniqueFd bfd = r.inst->open_in_tree(it.path);  // never through a link planted in the tree
      if (!bfd) throw_errno("cannot open the delta basis", basis, errno);
      sig = make_signature(std::move(bfd), basis);
    } catch (const Error& e) {
      fall_back(r, it, std::string("the old version cannot be read: ") + e.what());
      return false;
    }
    DeltaDeclined declined;
    auto ticket = request_delta(r.http, sig, digest_hex(it.digest), it.size, &declined);
    if (!ticket) {
      if (declined.reason == NoDelta::unsupported) r.deltas_unsupported = true;
      fall_back(r, it, declined.why);
      return false;
    }
    // Its stored zstd form when HQ has one (docs/formats/compression.md): the journal names it
    // "<id>.zst", which is also its URL and its staged file's stem.
    if (ticket->zsize)
      r.j.set_delta(r.ch.name, it, ticket->id + ".zst", ticket->zsize);
    else
      r.j.set_delta(r.ch.name, it, ticket->id, ticket->size);
    fault_point("after_delta_request");
  }
  std::string dp = r.inst->staged(it.delta_id + ".delta");
  uint64_t off = 0;
  {
    UniqueFd fd = open_for_resume(r, it, dp, &off);
    if (off < it.delta_size) {
      auto on_durable = durable_progress(r, it, done_before);
      DownloadResult d;
      try {
        d = r.http.download_to_fd("/deltas/" + it.delta_id, fd.get(), dp, off, it.delta_size, on_durable);
      } catch (const Error& e) {
        if (e.code() == Errc::not_found) {
          fall_back(r, it, "HQ no longer has the delta");
          return false;
        }
        if (e.code() == Errc::mismatch) {
          fall_back(r, it, e.what());
          return false;
        }
        throw;
      }
      if (d.size != it.delta_size)
        throw Error(Errc::network,
                    "the delta download for '" + it.path + "' ended after " + std::to_string(d.size) + " of " +
                        std::to_string(it.delta_size) + " bytes",
                    "the next attempt resumes from there");
    }
  }
  if (it.delta_id.ends_with(".zst")) {  // decode the stored form into the delta librsync reads
    const std::string raw = r.inst->staged(it.delta_id.substr(0, 64) + ".delta");
    uint64_t n = 0;
    try {
      (void)zstd_decode_file(dp, raw, delta_size_cap(it.size), "HQ's compressed delta for '" + it.path + "'", &n);
    } catch (const Error& e) {
      if (e.code() != Errc::mismatch) throw;
      discard_file(raw);
      ++r.res.rejected;
      fall_back(r, it, e.what());
      return false;
    }
    discard_file(dp);
    dp = raw;
  }
  std::string out = r.inst->staged(digest_hex(it.digest) + ".patched");
  UniqueFd ofd(::open(out.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!ofd) throw_errno("cannot create staged file", out, errno);
  uint64_t written = 0;
  Digest d{};
  try {
    UniqueFd bfd = r.inst->open_in_tree(it.path);
    if (!bfd) throw Error(Errc::mismatch, "the old version of '" + it.path + "' is gone or is not a regular file",
                          "the whole file is downloaded instead");
    d = apply_delta(std::move(bfd), basis, dp, ofd.get(), out, it.size, &written);
  } catch (const Error& e) {
    if (e.code() != Errc::mismatch) throw;
    discard_file(out);
    discard_file(dp);
    ++r.res.rejected;
    fall_back(r, it, e.what());
    return false;
  }
  ofd = UniqueFd();
  if (written != it.size || d != it.digest) {
    discard_file(out);
    discard_file(dp);
    ++r.res.rejected;
    fall_back(r, it, "the patched file does not match the signed digest (damaged delta or changed basis)");
    return false;
  }
  fault_point("after_patch");
  install_item(r, it, out);
  discard_file(dp);
  return true;
}

// The staged file of an item that a previous run verified (empty when none applies).
std::string verified_staged_name(const PlanItem& it) {
  switch (it.action) {
    case Action::full: return digest_hex(it.digest) + ".part";
    case Action::delta: return digest_hex(it.digest) + ".patched";
    case Action::copy:
    case Action::copy_other: return "c" + std::to_string(it.ord) + ".copy";
    default: return {};
  }
}

// A previous run verified this item (and maybe renamed it into place before it died).
bool resume_verified(Run& r, PlanItem& it) {
  std::string sp = r.inst->staged(verified_staged_name(it));
  if (exists_file(sp)) {
    try {
      r.inst->verify(sp, it.digest, it.size, it.path);
      install_item(r, it, sp);
      return true;
    } catch (const Error& e) {
      if (e.code() != Errc::mismatch) throw;
      discard_file(sp);
    }
  } else if (r.inst->final_matches(it.path, it.digest, it.size)) {
    set_state(r, it, ItemState::installed);  // renamed before the journal heard of it
    r.prog.files_done++;
    return true;
  }
  r.j.set_offset(r.ch.name, it, 0);
  set_state(r, it, ItemState::planned);
  return false;
}

// The furthest durable offset an item's download (whole or delta) has reached in this run.
ResumeProgress::ResumeProgress(const PlanItem& it) : delta_id_(it.delta_id), best_(it.offset) {}

bool ResumeProgress::advanced(const PlanItem& it) {
  if (it.delta_id != delta_id_) {  // a delta fell back to the whole object, or a new ticket
    delta_id_ = it.delta_id;
    best_ = it.offset;
    return true;
  }
  if (it.offset <= best_) return false;
  best_ = it.offset;
  return true;
}

// The most one item may take from the wire in a run: three times what it needs, plus 16 MiB
// (headers, error pages and cut answers on a flaky link), and once more per rejected copy.
uint64_t wire_budget(const PlanItem& it, int mismatches) {
  uint64_t need = it.size + (it.action == Action::delta ? it.delta_size : 0);
  return (3 * need + (uint64_t(16) << 20)) * (1 + static_cast<uint64_t>(mismatches));
}

void record_failure(Run& r, PlanItem& it, const std::string& msg) {
  r.j.set_state(r.ch.name, it, ItemState::failed, msg);
  r.res.failed_files++;
  if (r.res.error.empty()) r.res.error = msg;
  r.log("FAILED '" + it.path + "': " + msg);
}

// Fetches one delta/full item with bounded retries. Returns when installed or failed.
void fetch_item(Run& r, PlanItem& it, uint64_t done_before) {
  int mismatches = 0, stalls = 0;
  // A retry counts unless the durable offset passed its best so far: a server that ignores Range
  // and cuts every answer carries data each time but never gets further. And however the server
  // behaves, an item may take at most a few times its size from the wire before the run gives up.
  ResumeProgress seen(it);
  const uint64_t start_bytes = r.http.bytes_received();
  r.prog.current = it.path;
  r.progress(true);
  for (;;) {
    if (r.stopped())
      throw Error(Errc::network, "sync of channel '" + r.ch.name + "' stopped: distd is shutting down",
                  "the next run resumes where this one stopped");
    try {
      if (it.state == ItemState::verified && resume_verified(r, it)) return;
      if (it.action == Action::delta && fetch_delta(r, it, done_before)) {
        r.res.delta++;
        return;
      }
      // A full download, or a delta that just fell back to one.
      fetch_full(r, it, done_before);
      r.res.full++;
      return;
    } catch (const Error& e) {
      switch (e.code()) {
        case Errc::mismatch: {
          ++r.res.rejected;
          ++mismatches;
          r.log(std::string("rejected: ") + e.what());
          r.j.add_attempt(r.ch.name, it, e.what());
          discard_file(r.inst->staged(digest_hex(it.digest) + ".part"));
          r.j.set_offset(r.ch.name, it, 0);
          set_state(r, it, ItemState::planned);
          if (mismatches >= r.rs.max_attempts) {
            record_failure(r, it,
                           std::string(e.what()) + " (" + std::to_string(mismatches) +
                               " attempts; HQ's copy may be damaged: check it there and republish)");
            r.res.code = Errc::mismatch;
            return;
          }
          continue;
        }
        case Errc::network: {
          if (r.stopped()) throw;
          r.j.add_attempt(r.ch.name, it, e.what());
          uint64_t spent = r.http.bytes_received() - start_bytes;
          if (spent > wire_budget(it, mismatches))
            throw Error(Errc::network,
                        "HQ sent " + human_bytes(spent) + " for '" + it.path + "' (" + human_bytes(it.size) +
                            ") without completing it: " + e.what(),
                        "check that HQ's web server honours Range requests and does not cut answers; the next "
                        "run tries again");
          if (seen.advanced(it)) {  // the link carried the download further before it broke: resume now
            stalls = 0;
            r.log(std::string("link cut, resuming: ") + e.what());
            continue;
          }
          if (++stalls >= r.rs.max_attempts)
            throw Error(Errc::network,
                        "link to HQ failed while fetching '" + it.path + "' (" + human_bytes(it.offset) + " of " +
                            human_bytes(it.action == Action::delta ? it.delta_size : it.size) + " kept): " + e.what(),
                        e.hint());
          r.log(std::string("link problem, retrying: ") + e.what());
          sleep_unless_stopped(r.opts.stop, retry_pause(stalls));
          continue;
        }
        case Errc::no_space:
          throw Error(Errc::no_space,
                      "disk full while fetching '" + it.path + "' (" + human_bytes(it.size) + ") into " +
                          r.inst->staging() + ": " + e.what(),
                      "free space on that file system (the file needs " + human_bytes(it.size - it.offset) +
                          " more), then run the sync again: it resumes where it stopped");
        case Errc::not_found:
          record_failure(r, it, e.what());
          r.res.code = Errc::not_found;
          return;
        default:
          throw;
      }
    }
  }
}

}  // namespace distd::sync_detail
