#include "distd/hq/delta_service.h"

#include "distd/hq/stored_zstd.h"

#include <fcntl.h>
#include <librsync.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "distd/delta/rsync.h"
#include "manifest/error.h"
#include "manifest/fault.h"
#include "manifest/fs.h"

namespace distd::hq {

namespace {

constexpr size_t kChunk = 256 * 1024;

struct SigDeleter {
  void operator()(rs_signature_t* s) const { if (s) rs_free_sumset(s); }
};
struct JobDeleter {
  void operator()(rs_job_t* j) const { if (j) rs_job_free(j); }
};
using SigPtr = std::unique_ptr<rs_signature_t, SigDeleter>;
using JobPtr = std::unique_ptr<rs_job_t, JobDeleter>;

void quiet_librsync() {
  static const bool once = [] {
    rs_trace_set_level(RS_LOG_CRIT);  // its error lines would only duplicate our messages
    return true;
  }();
  (void)once;
}

std::string short_hex(const Digest& d) { return digest_hex(d).substr(0, 16) + "..."; }

SigPtr load_signature(std::string_view signature) {
  check_signature(signature);  // before librsync: no signature made to cost quadratic time
  rs_signature_t* raw = nullptr;
  JobPtr job(rs_loadsig_begin(&raw));
  rs_buffers_t b{};
  b.next_in = const_cast<char*>(signature.data());  // librsync only reads its input
  b.avail_in = signature.size();
  b.eof_in = 1;
  rs_result r = RS_BLOCKED;
  for (int i = 0; i < 4 && r == RS_BLOCKED; ++i) r = rs_job_iter(job.get(), &b);
  SigPtr sig(raw);  // allocated by the job; ours to free
  if (r != RS_DONE)
    throw Error(Errc::corrupt,
                std::string("the posted signature is not a valid librsync signature (") +
                    (r == RS_BLOCKED ? "truncated" : rs_strerror(r)) + ")",
                "send the output of rs_sig_* (RS_RK_BLAKE2_SIG_MAGIC) for the basis file, unmodified");
  r = rs_build_hash_table(sig.get());
  if (r != RS_DONE)
    throw Error(Errc::corrupt, std::string("the posted signature cannot be indexed: ") + rs_strerror(r),
                "send a signature made by librsync");
  return sig;
}

}  // namespace

std::string delta_of_bytes(std::string_view signature, std::string_view target) {
  quiet_librsync();
  if (signature.empty()) throw Error(Errc::corrupt, "the posted signature is empty", "post a librsync signature");
  SigPtr sig = load_signature(signature);
  JobPtr job(rs_delta_begin(sig.get()));
  std::string out;
  std::vector<char> obuf(kChunk);
  rs_buffers_t b{};
  b.next_in = const_cast<char*>(target.data());  // librsync only reads its input
  b.avail_in = target.size();
  b.eof_in = 1;
  for (int stuck = 0;;) {
    b.next_out = obuf.data();
    b.avail_out = obuf.size();
    size_t in_before = b.avail_in;
    rs_result r = rs_job_iter(job.get(), &b);
    size_t produced = obuf.size() - b.avail_out;
    out.append(obuf.data(), produced);
    if (r == RS_DONE) return out;
    if (r != RS_BLOCKED)
      throw Error(Errc::internal, std::string("librsync failed computing a manifest delta: ") + rs_strerror(r),
                  "the client falls back to the whole manifest");
    stuck = (produced == 0 && b.avail_in == in_before) ? stuck + 1 : 0;
    if (stuck > 8) throw Error(Errc::internal, "librsync made no progress computing a delta", "please report this");
  }
}

std::string_view canonical_signature(std::string_view signature) {
  static const char kNoBlocks[12] = {0x72, 0x73, 0x01, 0x47, 0, 0, 0, 0, 0, 0, 0, 0};
  if (signature.size() != 12) return signature;
  auto be32 = [&](size_t at) {
    const auto* p = reinterpret_cast<const unsigned char*>(signature.data() + at);
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
  };
  const uint32_t magic = be32(0), block_len = be32(4), strong_len = be32(8);
  const bool known = magic == RS_MD4_SIG_MAGIC || magic == RS_BLAKE2_SIG_MAGIC || magic == RS_RK_MD4_SIG_MAGIC ||
                     magic == RS_RK_BLAKE2_SIG_MAGIC;
  if (!known || block_len < 1 || block_len > (1u << 30) || strong_len > RS_MAX_STRONG_SUM_LENGTH) return signature;
  return std::string_view(kNoBlocks, sizeof kNoBlocks);
}

std::string delta_id(const Digest& target, std::string_view signature) {
  Hasher h;
  h.update(target.data(), target.size());
  h.update(canonical_signature(signature));
  return digest_hex(h.finish());
}

DeltaService::DeltaService(std::string state_dir, unsigned max_parallel, uint64_t cache_bytes, int zstd_level)
    : layout_{std::move(state_dir)},
      cache_(layout_, cache_bytes),
      max_parallel_(max_parallel ? max_parallel : 1),
      zstd_level_(zstd_level) {
  quiet_librsync();
}

uint64_t DeltaService::declined() const {
  std::lock_guard<std::mutex> g(mu_);
  return declined_;
}

uint64_t DeltaService::computed() const {
  std::lock_guard<std::mutex> g(mu_);
  return computed_;
}

uint64_t DeltaService::reused() const {
  std::lock_guard<std::mutex> g(mu_);
  return reused_;
}

DeltaInfo DeltaService::get_or_compute(const Digest& target, std::string_view signature) {
  if (signature.size() > kMaxSignatureBytes)
    throw Error(Errc::usage, "the posted signature is " + std::to_string(signature.size()) + " bytes, more than " +
                                 std::to_string(kMaxSignatureBytes),
                "use a larger block size for the signature, or download the whole object");
  if (signature.empty())
    throw Error(Errc::corrupt, "the posted signature is empty", "post the librsync signature of the basis file");
  const std::string id = delta_id(target, signature);
  const std::string path = layout_.delta(id);

  std::shared_ptr<Inflight> mine;
  {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      auto it = inflight_.find(id);
      if (it == inflight_.end()) break;
      auto other = it->second;
      cv_.wait(lk, [&] { return other->done; });
      if (other->error) std::rethrow_exception(other->error);
      if (other->info.outcome == DeltaOutcome::ready)
        ++reused_;
      else
        ++declined_;
      DeltaInfo info = other->info;
      info.computed = false;
      return info;
    }
    if (auto d = declined_ids_.find(id); d != declined_ids_.end()) {
      ++declined_;
      DeltaInfo info;
      info.outcome = d->second;
      info.id = id;
      info.target = target;
      return info;
    }
    struct stat ds {}, os {};
    if (::stat(path.c_str(), &ds) == 0) {
      if (::stat(layout_.object(target).c_str(), &os) != 0)
        throw Error(Errc::not_found, "object " + short_hex(target) + " is not at HQ any more",
                    "fetch the latest manifest and plan again");
      ++reused_;
      DeltaInfo info;
      info.id = id;
      info.size = static_cast<uint64_t>(ds.st_size);
      if (struct stat zs {}; ::stat(zstd_form(path).c_str(), &zs) == 0) info.zsize = static_cast<uint64_t>(zs.st_size);
      info.target = target;
      info.target_size = static_cast<uint64_t>(os.st_size);
      lk.unlock();
      cache_.touch(id);
      return info;
    }
    mine = std::make_shared<Inflight>();
    inflight_[id] = mine;
    cv_.wait(lk, [&] { return running_ < max_parallel_; });
    ++running_;
  }

  DeltaInfo info;
  std::exception_ptr err;
  try {
    info = compute(target, signature, id);
  } catch (...) {
    err = std::current_exception();
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    --running_;
    mine->done = true;
    mine->error = err;
    mine->info = info;
    inflight_.erase(id);
    if (!err && info.outcome == DeltaOutcome::ready) ++computed_;
    if (!err && info.outcome != DeltaOutcome::ready) {
      ++declined_;
      if (declined_ids_.emplace(id, info.outcome).second) declined_order_.push_back(id);
      if (declined_order_.size() > 4096) {
        declined_ids_.erase(declined_order_.front());
        declined_order_.pop_front();
      }
    }
  }
  cv_.notify_all();
  if (err) std::rethrow_exception(err);
  return info;
}

DeltaInfo DeltaService::compute(const Digest& target, std::string_view signature, const std::string& id) {
  const std::string obj = layout_.object(target);
  UniqueFd in(::open(obj.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) {
    if (errno == ENOENT)
      throw Error(Errc::not_found, "object " + short_hex(target) + " is not at HQ (not in any retained version)",
                  "fetch the latest manifest and plan again");
    throw_errno("cannot open", obj, errno);
  }
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) throw_errno("cannot stat", obj, errno);
  const uint64_t target_size = static_cast<uint64_t>(st.st_size);
  DeltaInfo info;
  info.id = id;
  info.target = target;
  info.target_size = target_size;
  // The largest delta that pays: (delta + signature) * 10 <= target * 9.
  if (signature.size() * 10 > target_size * 9) {
    load_signature(signature);  // a malformed one is still a 400
    info.outcome = DeltaOutcome::not_smaller;
    return info;
  }
  const uint64_t max_delta = (target_size * 9 - signature.size() * 10) / 10;

  SigPtr sig = load_signature(signature);
  JobPtr job(rs_delta_begin(sig.get()));

  make_dirs(layout_.deltas_dir());
  make_dirs(layout_.delta_targets_dir());
  const std::string tmp = store_temp(layout_.deltas_dir(), id);
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!out) throw_errno("cannot create", tmp, errno);
  uint64_t delta_size = 0;
  try {
    std::vector<char> ibuf(kChunk), obuf(kChunk);
    rs_buffers_t b{};
    b.next_in = ibuf.data();
    b.avail_in = 0;
    bool eof = false;
    uint64_t read_total = 0;
    for (int stuck = 0;;) {
      if (!eof && b.avail_in < ibuf.size() / 2) {
        std::memmove(ibuf.data(), b.next_in, b.avail_in);
        b.next_in = ibuf.data();
        ssize_t n = ::read(in.get(), ibuf.data() + b.avail_in, ibuf.size() - b.avail_in);
        if (n < 0) {
          if (errno == EINTR) continue;
          throw_errno("cannot read", obj, errno);
        }
        if (n == 0) eof = true;
        b.avail_in += static_cast<size_t>(n);
        read_total += static_cast<uint64_t>(n);
      }
      b.eof_in = eof ? 1 : 0;
      b.next_out = obuf.data();
      b.avail_out = obuf.size();
      size_t in_before = b.avail_in;
      rs_result r = rs_job_iter(job.get(), &b);
      size_t produced = obuf.size() - b.avail_out;
      if (produced) {
        delta_size += produced;
        if (delta_size > max_delta) break;  // it cannot pay: stop here
        write_all(out.get(), std::string_view(obuf.data(), produced), tmp);
      }
      if (r == RS_DONE) break;
      if (r != RS_BLOCKED)
        throw Error(Errc::internal, std::string("librsync failed computing a delta for object ") + short_hex(target) +
                                        ": " + rs_strerror(r),
                    "please report this; the client falls back to the whole object");
      // Guard against a job that neither consumes nor produces at end of input.
      stuck = (eof && produced == 0 && b.avail_in == in_before) ? stuck + 1 : 0;
      if (stuck > 8) throw Error(Errc::internal, "librsync made no progress computing a delta", "please report this");
    }
    if (delta_size > max_delta || !cache_.admit(id, delta_size)) {
      info.outcome = delta_size > max_delta ? DeltaOutcome::not_smaller : DeltaOutcome::no_room;
      info.size = delta_size;
      out = UniqueFd();
      discard_file(tmp);
      return info;
    }
    if (read_total != target_size) {
      cache_.forget(id);
      throw Error(Errc::io, "object '" + obj + "' changed size while a delta was computed", "post the request again");
    }
    sync_file(out.get(), tmp);
    out = UniqueFd();
    // Its stored zstd form, and whether the delta pays compressed: the smaller of its two forms
    // and the signature against what the object would cost whole (its own stored form, if any).
    info.zsize = store_zstd_form(tmp, delta_size, zstd_level_, kDeltaZstdMin);
    struct stat zs {};
    const uint64_t whole = ::stat(zstd_form(obj).c_str(), &zs) == 0 ? static_cast<uint64_t>(zs.st_size) : target_size;
    const uint64_t cost = info.zsize ? std::min(info.zsize, delta_size) : delta_size;
    const bool pays = (cost + signature.size()) * 10 <= whole * 9;
    if (!pays || !cache_.admit(id, delta_size + info.zsize)) {
      info.outcome = pays ? DeltaOutcome::no_room : DeltaOutcome::not_smaller;
      info.size = delta_size;
      cache_.forget(id);
      discard_file(zstd_form(tmp));
      discard_file(tmp);
      return info;
    }
    // The record first: a delta on disk always says which target it belongs to.
    write_file_atomic(layout_.delta_target(id), digest_hex(target) + " " + std::to_string(target_size) + "\n", 0644);
    fault_point("delta_before_rename");
    // The delta before its form: a crash between leaves a delta without a form (fetched as it
    // is), never a form without its delta (the temporary is removed by retention).
    rename_file(tmp, layout_.delta(id), "cannot rename into", layout_.delta(id));
    if (info.zsize) rename_file(zstd_form(tmp), zstd_form(layout_.delta(id)), "cannot rename into", layout_.delta(id));
  } catch (...) {
    cache_.forget(id);
    discard_file(zstd_form(tmp));
    discard_file(tmp);
    throw;
  }
  fsync_dir(layout_.deltas_dir());
  info.size = delta_size;
  info.computed = true;
  return info;
}

}  // namespace distd::hq
