#include "distd/io/zstd_stream.h"

#include <zstd.h>
#include <zstd_errors.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <new>

#include "distd/io/background_hasher.h"
#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd {

namespace {

ZSTD_CCtx* cctx(void* p) { return static_cast<ZSTD_CCtx*>(p); }
ZSTD_DCtx* dctx(void* p) { return static_cast<ZSTD_DCtx*>(p); }

void check_c(size_t rc, const char* what) {
  if (ZSTD_isError(rc))
    throw Error(Errc::internal, std::string("zstd compression failed (") + what + "): " + ZSTD_getErrorName(rc),
                "please report this");
}

}  // namespace

ZstdEncoder::ZstdEncoder(int level, int workers, uint64_t pledged_size)
    : ctx_(ZSTD_createCCtx()), buf_(ZSTD_CStreamOutSize()) {
  if (!ctx_) throw std::bad_alloc();
  set_level(level);
  if (pledged_size > 0) check_c(ZSTD_CCtx_setPledgedSrcSize(cctx(ctx_), pledged_size), "size");
  if (workers > 0) ZSTD_CCtx_setParameter(cctx(ctx_), ZSTD_c_nbWorkers, workers);  // a build without threads: one
  // Levels up to 19 never use a window over 2^23 (zstd's table); 20 to 22 would: cap them.
  if (level > 19) check_c(ZSTD_CCtx_setParameter(cctx(ctx_), ZSTD_c_windowLog, kZstdWindowLog), "window");
  check_c(ZSTD_CCtx_setParameter(cctx(ctx_), ZSTD_c_checksumFlag, 0), "checksum");  // the signed digest checks it
}

ZstdEncoder::~ZstdEncoder() { ZSTD_freeCCtx(cctx(ctx_)); }

void ZstdEncoder::run(const char* p, size_t n, int mode, const ByteSink& out) {
  ZSTD_inBuffer in{p, n, 0};
  for (;;) {
    ZSTD_outBuffer o{buf_.data(), buf_.size(), 0};
    size_t left = ZSTD_compressStream2(cctx(ctx_), &o, &in, static_cast<ZSTD_EndDirective>(mode));
    check_c(left, "stream");
    if (o.pos > 0) out(buf_.data(), o.pos);
    if (mode == ZSTD_e_continue ? in.pos == in.size : left == 0) return;
  }
}

void ZstdEncoder::set_level(int level) {
  level = std::clamp(level, 1, ZSTD_maxCLevel());
  check_c(ZSTD_CCtx_setParameter(cctx(ctx_), ZSTD_c_compressionLevel, level), "level");
}

void ZstdEncoder::write(const char* p, size_t n, const ByteSink& out) {
  in_frame_ = true;
  run(p, n, ZSTD_e_continue, out);
}
void ZstdEncoder::flush(const ByteSink& out) { run(nullptr, 0, ZSTD_e_flush, out); }
void ZstdEncoder::finish(const ByteSink& out) {
  run(nullptr, 0, ZSTD_e_end, out);
  in_frame_ = false;
}

ZstdDecoder::ZstdDecoder() : ctx_(ZSTD_createDCtx()), buf_(ZSTD_DStreamOutSize()) {
  if (!ctx_) throw std::bad_alloc();
  ZSTD_DCtx_setParameter(dctx(ctx_), ZSTD_d_windowLogMax, kZstdWindowLog);
}

ZstdDecoder::~ZstdDecoder() { ZSTD_freeDCtx(dctx(ctx_)); }

void ZstdDecoder::write(const char* p, size_t n, const ByteSink& out, const std::string& what) {
  ZSTD_inBuffer in{p, n, 0};
  while (in.pos < in.size || !at_end_) {
    ZSTD_outBuffer o{buf_.data(), buf_.size(), 0};
    size_t rc = ZSTD_decompressStream(dctx(ctx_), &o, &in);
    if (ZSTD_isError(rc)) {
      std::string why = ZSTD_getErrorCode(rc) == ZSTD_error_frameParameter_windowTooLarge
                            ? "it needs a window over " + std::to_string((1u << kZstdWindowLog) >> 20) + " MiB"
                            : ZSTD_getErrorName(rc);
      throw Error(Errc::mismatch, what + " is not a zstd stream distd can read: " + why,
                  "the bytes are discarded; the object is fetched again (uncompressed when this repeats)");
    }
    at_end_ = rc == 0;
    if (o.pos > 0) out(buf_.data(), o.pos);
    // Input used up and nothing more came out: the rest of the frame is in bytes not yet given.
    if (in.pos == in.size && o.pos < o.size) return;
  }
}

std::string zstd_compress(std::string_view data, int level) {
  std::string z;
  ZstdEncoder enc(level, 0, data.size());
  auto sink = [&z](const char* p, size_t n) { z.append(p, n); };
  enc.write(data.data(), data.size(), sink);
  enc.finish(sink);
  return z;
}

std::string zstd_decompress(std::string_view data, uint64_t max_out, const std::string& what) {
  std::string out;
  ZstdDecoder dec;
  dec.write(data.data(), data.size(),
            [&](const char* p, size_t n) {
              if (out.size() + n > max_out)
                throw Error(Errc::mismatch, what + " decodes to more than " + std::to_string(max_out) + " bytes",
                            "the bytes are discarded");
              out.append(p, n);
            },
            what);
  if (!dec.at_frame_end() || data.empty())
    throw Error(Errc::mismatch, what + " ends in the middle of a zstd frame", "the bytes are discarded");
  return out;
}

namespace {

int patch_window_log(uint64_t bytes) {
  int log = 10;
  while (log < 31 && (uint64_t(1) << log) < bytes) ++log;
  return log;
}

}  // namespace

std::string zstd_patch(std::string_view basis, std::string_view target, int level) {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> c(ZSTD_createCCtx(), ZSTD_freeCCtx);
  if (!c) throw std::bad_alloc();
  if (target.size() > kPatchHighLevelMax) level = std::min(level, 9);
  check_c(ZSTD_CCtx_setParameter(c.get(), ZSTD_c_compressionLevel, std::clamp(level, 1, ZSTD_maxCLevel())), "level");
  check_c(ZSTD_CCtx_setParameter(c.get(), ZSTD_c_windowLog, patch_window_log(basis.size() + target.size())),
          "window");
  check_c(ZSTD_CCtx_setParameter(c.get(), ZSTD_c_checksumFlag, 0), "checksum");  // the signed digest checks it
  check_c(ZSTD_CCtx_refPrefix(c.get(), basis.data(), basis.size()), "prefix");
  std::string out(ZSTD_compressBound(target.size()), '\0');
  const size_t n = ZSTD_compress2(c.get(), out.data(), out.size(), target.data(), target.size());
  check_c(n, "patch");
  out.resize(n);
  return out;
}

std::string zstd_unpatch(std::string_view basis, std::string_view patch, uint64_t target_size,
                         const std::string& what) {
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> d(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!d) throw std::bad_alloc();
  ZSTD_DCtx_setParameter(d.get(), ZSTD_d_windowLogMax, 31);  // the output is the signed size, allocated here
  if (ZSTD_isError(ZSTD_DCtx_refPrefix(d.get(), basis.data(), basis.size())))
    throw Error(Errc::internal, what + ": zstd cannot take the basis", "please report this");
  std::string out(static_cast<size_t>(target_size), '\0');
  const size_t n = ZSTD_decompressDCtx(d.get(), out.data(), out.size(), patch.data(), patch.size());
  if (ZSTD_isError(n) || n != target_size)
    throw Error(Errc::mismatch,
                what + " does not rebuild against the installed manifest (" +
                    (ZSTD_isError(n) ? std::string(ZSTD_getErrorName(n)) : std::to_string(n) + " bytes") + ")",
                "copy the whole bundle again, or let the network sync bring the manifest");
  return out;
}

std::string zstd_unpatch_capped(std::string_view basis, std::string_view patch, uint64_t max_size,
                                const std::string& what) {
  const unsigned long long n = ZSTD_getFrameContentSize(patch.data(), patch.size());
  if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN)
    throw Error(Errc::mismatch, what + " is not a zstd frame that states its size", "the bytes are discarded");
  if (n > max_size)
    throw Error(Errc::mismatch, what + " decodes to more than " + std::to_string(max_size) + " bytes",
                "the bytes are discarded");
  return zstd_unpatch(basis, patch, n, what);
}

namespace {

// Writes what a decoder hands it to a file, hashing it behind on another thread and starting
// write-back of each 8 MiB; at most max_out bytes.
class DecodedFile {
 public:
  DecodedFile(const std::string& path, uint64_t max_out, const std::string& what)
      : path_(path), max_(max_out), what_(what), fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) {
    if (!fd_) throw_errno("cannot create staged file", path, errno);
    hasher_ = std::make_unique<BackgroundHasher>(fd_.get(), path);
  }
  ByteSink sink() {
    return [this](const char* p, size_t n) {
      if (n_ + n > max_) throw Error(Errc::mismatch, what_ + " decodes to more than " + std::to_string(max_) + " bytes");
      write_all(fd_.get(), std::string_view(p, n), path_);
      n_ += n;
      if (n_ - kicked_ >= (uint64_t(8) << 20)) {
        ::sync_file_range(fd_.get(), static_cast<off_t>(kicked_), static_cast<off_t>(n_ - kicked_), SYNC_FILE_RANGE_WRITE);
        kicked_ = n_;
      }
    };
  }
  Digest finish(uint64_t* out_size) {
    Digest d = hasher_->finish(n_);
    sync_file(fd_.get(), path_);
    *out_size = n_;
    return d;
  }

 private:
  std::string path_;
  uint64_t max_;
  std::string what_;
  UniqueFd fd_;
  std::unique_ptr<BackgroundHasher> hasher_;
  uint64_t n_ = 0, kicked_ = 0;
};

}  // namespace

struct BackgroundZstdDecoder::State {
  State(int in_fd, const std::string& in_path, const std::string& out_path, uint64_t max_out, std::string w)
      : what(std::move(w)),
        out(out_path, max_out, what),
        sink(out.sink()),
        follower(in_fd, in_path, [this](const char* p, size_t n) { dec.write(p, n, sink, what); }) {}
  std::string what;
  ZstdDecoder dec;
  DecodedFile out;
  ByteSink sink;
  FileFollower follower;  // last: its thread uses the members above
};

BackgroundZstdDecoder::BackgroundZstdDecoder(int in_fd, std::string in_path, std::string out_path, uint64_t max_out,
                                             std::string what)
    : st_(std::make_unique<State>(in_fd, in_path, out_path, max_out, std::move(what))) {}

BackgroundZstdDecoder::~BackgroundZstdDecoder() { stop(); }

void BackgroundZstdDecoder::stop() { st_->follower.stop(); }

Digest BackgroundZstdDecoder::finish(uint64_t in_size, uint64_t* out_size) {
  st_->follower.finish(in_size);
  if (!st_->dec.at_frame_end()) throw Error(Errc::mismatch, st_->what + " ends in the middle of a zstd frame");
  return st_->out.finish(out_size);
}

Digest zstd_decode_file(const std::string& zp, const std::string& sp, uint64_t max_out, const std::string& what,
                        uint64_t* out_size) {
  UniqueFd in(::open(zp.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!in || ::fstat(in.get(), &st) != 0) throw_errno("cannot open staged file", zp, errno);
  // The file is complete: the same pipeline as a download's, told its size at once.
  BackgroundZstdDecoder dec(in.get(), zp, sp, max_out, what);
  return dec.finish(static_cast<uint64_t>(st.st_size), out_size);
}

bool looks_compressible(std::string_view head) {
  if (head.size() < 512) return false;  // too little to tell, and too little to matter
  std::string z(ZSTD_compressBound(head.size()), '\0');
  size_t rc = ZSTD_compress(z.data(), z.size(), head.data(), head.size(), 1);
  return !ZSTD_isError(rc) && rc * 10 <= head.size() * 9;
}

}  // namespace distd
