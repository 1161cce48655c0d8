// zstd streams (libzstd): what HQ stores and sends compressed, and what a center decodes with a
// bounded window. The formats are in docs/formats/compression.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "manifest/digest.h"

namespace distd {

// The largest window a center's decoder accepts: 2^23 = 8 MiB. HQ compresses with this window
// (level 19 chooses it anyway for large inputs), so decoding one stream costs about 8 MiB plus
// 256 KiB of buffers on a 1 GB Pi. A stream that asks for more is refused (Error{mismatch}).
constexpr int kZstdWindowLog = 23;
constexpr int kZstdDefaultLevel = 19;
// Objects from this size on may have a stored compressed form at HQ (<hex>.zst): sticks carry
// it, and so does a GET of the object.
constexpr uint64_t kStoredZstdMin = 4 * 1024;
// A center asks for the stored form of objects it GETs from this size on (smaller ones travel
// in batches, compressed as they are sent; a GET of one happens after a declined delta, or
// from a plain web server, and a 404 costs a round trip).
constexpr uint64_t kZstdFetchMin = 16 * 1024;

using ByteSink = std::function<void(const char*, size_t)>;

// One zstd stream being written. Not thread-safe.
class ZstdEncoder {
 public:
  // level 1..22 (clamped); the window is capped at kZstdWindowLog. workers > 0 compresses on
  // that many threads besides the caller's (zstd -T; output is the same format).
  // pledged_size > 0: the exact size of the (first) frame, so that zstd sizes its tables to it
  // (a level-19 context for unknown input costs tens of MiB to set up, for each small file).
  explicit ZstdEncoder(int level, int workers = 0, uint64_t pledged_size = 0);
  ~ZstdEncoder();
  ZstdEncoder(const ZstdEncoder&) = delete;
  ZstdEncoder& operator=(const ZstdEncoder&) = delete;

  // Compresses n bytes, handing what is ready to out (maybe nothing yet).
  void write(const char* p, size_t n, const ByteSink& out);
  // Hands out whatever is buffered, so the receiver can decode all bytes written so far (costs a
  // few bytes of ratio; the stream goes on).
  void flush(const ByteSink& out);
  // Ends the frame. The encoder may then start a new one with write().
  void finish(const ByteSink& out);
  // The level of the next frame. REQUIRES: no frame in progress (nothing written since the
  // last finish()).
  void set_level(int level);
  // True between the first write() of a frame and its finish().
  bool in_frame() const { return in_frame_; }

 private:
  void run(const char* p, size_t n, int mode, const ByteSink& out);
  void* ctx_;  // ZSTD_CCtx*
  std::vector<char> buf_;
  bool in_frame_ = false;
};

// One zstd stream being read, frames back to back. Not thread-safe.
class ZstdDecoder {
 public:
  ZstdDecoder();
  ~ZstdDecoder();
  ZstdDecoder(const ZstdDecoder&) = delete;
  ZstdDecoder& operator=(const ZstdDecoder&) = delete;

  // Decodes n bytes of the stream, handing the content to out. Throws Error{mismatch} when the
  // bytes are not zstd, are damaged, or need a window over kZstdWindowLog (what names them).
  void write(const char* p, size_t n, const ByteSink& out, const std::string& what);
  // True when the bytes so far end exactly at the end of a frame (a complete stream).
  bool at_frame_end() const { return at_end_; }

 private:
  void* ctx_;  // ZSTD_DCtx*
  std::vector<char> buf_;
  bool at_end_ = true;
};

// The whole of `data` compressed as one frame.
std::string zstd_compress(std::string_view data, int level);
// The content of one complete stream, at most max_out bytes (Error{mismatch} past it, or when
// the stream is damaged or cut).
std::string zstd_decompress(std::string_view data, uint64_t max_out, const std::string& what);

// zstd with basis as its prefix (as `zstd --patch-from=basis`): one frame that decodes to target
// only with the same basis at hand. Its window covers basis and target (up to 2^31), so a
// decoder needs both in memory: made for manifests, which a center holds in memory anyway.
// Targets over kPatchHighLevelMax are made at level 9 at most: level 19 spends about a second
// and 12 MiB of tables per MB there (an 8.9 MB manifest: 9.7 s, 104 MB, for 768 bytes instead
// of 965 at level 9 in 0.14 s).
constexpr uint64_t kPatchHighLevelMax = 1 << 20;
std::string zstd_patch(std::string_view basis, std::string_view target, int level);
// The target of a zstd_patch() frame, which must be exactly target_size bytes (the signed size;
// the output buffer, the only memory the decoder takes besides basis). Throws Error{mismatch}
// naming what when the frame is damaged, is made against another basis, or gives another size.
std::string zstd_unpatch(std::string_view basis, std::string_view patch, uint64_t target_size,
                         const std::string& what);

// As zstd_unpatch, with the size the frame states, which must be at most max_size.
std::string zstd_unpatch_capped(std::string_view basis, std::string_view patch, uint64_t max_size,
                                const std::string& what);

// Decodes the zstd stream in file zp into file sp (created or truncated, fsynced) and returns
// the BLAKE2b-256 of what came out; *out_size its length. Throws Error{mismatch} naming `what`
// when zp is not one complete stream that decodes to at most max_out bytes within the window
// cap, Error{io, no_space} on the disk.
Digest zstd_decode_file(const std::string& zp, const std::string& sp, uint64_t max_out, const std::string& what,
                        uint64_t* out_size);

// Decodes a zstd stream file while another thread is still writing it (a download), into a
// file of its own, hashing what comes out on a third thread: when the last byte has arrived,
// little is left to do. Also covers a prefix kept from an earlier run (a FileFollower reads the
// page cache behind the writer, as for BackgroundHasher).
class BackgroundZstdDecoder {
 public:
  // in_fd: the stream being written (read with pread from offset 0; not owned). out_path is
  // created (or truncated). max_out and what as for zstd_decode_file.
  BackgroundZstdDecoder(int in_fd, std::string in_path, std::string out_path, uint64_t max_out, std::string what);
  ~BackgroundZstdDecoder();
  BackgroundZstdDecoder(const BackgroundZstdDecoder&) = delete;
  BackgroundZstdDecoder& operator=(const BackgroundZstdDecoder&) = delete;

  // The stream is complete at in_size bytes: decodes the rest, fsyncs the output and returns its
  // digest (*out_size its length). Throws what zstd_decode_file throws.
  Digest finish(uint64_t in_size, uint64_t* out_size);
  // Abandons the work (the output file is left as it is, for the caller to remove).
  void stop();

 private:
  struct State;
  std::unique_ptr<State> st_;
};

// True when the first bytes of a file (its first 128 KiB, say) shrink by at least 1/10 at zstd's
// fastest level: photos, videos and archives do not, and are not compressed at all.
bool looks_compressible(std::string_view head);

}  // namespace distd
