#include "distd/delta/rsync.h"

#include <fcntl.h>
#include <librsync.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd {

bool delta_pays(uint64_t delta_size, uint64_t signature_size, uint64_t target_size) {
  return (delta_size + signature_size) * 10 <= target_size * 9;
}

uint64_t delta_size_cap(uint64_t target_size) { return target_size + target_size / 8 + 64 * 1024; }

namespace {

constexpr size_t kBuf = 256 * 1024;

struct JobFree {
  void operator()(rs_job_t* j) const { rs_job_free(j); }
};

// Cranks a librsync job: `read` fills input (returns 0 at EOF), `write` takes output.
void drive(rs_job_t* job, const std::function<size_t(char*, size_t)>& read,
           const std::function<void(const char*, size_t)>& write, const std::string& what) {
  std::vector<char> in(kBuf), out(kBuf);
  rs_buffers_t b{};
  size_t have = 0;  // unconsumed input at the front of `in`
  bool eof = false;
  for (;;) {
    if (!eof && have < kBuf / 2) {
      size_t n = read(in.data() + have, kBuf - have);
      if (n == 0) eof = true;
      have += n;
    }
    b.next_in = in.data();
    b.avail_in = have;
    b.eof_in = eof ? 1 : 0;
    b.next_out = out.data();
    b.avail_out = kBuf;
    rs_result r = rs_job_iter(job, &b);
    size_t produced = kBuf - b.avail_out;
    if (produced) write(out.data(), produced);
    size_t consumed = have - b.avail_in;
    if (consumed && b.avail_in) std::memmove(in.data(), in.data() + consumed, b.avail_in);
    have = b.avail_in;
    if (r == RS_DONE) return;
    if (r != RS_BLOCKED)
      throw Error(Errc::mismatch, what + ": librsync failed: " + rs_strerror(r),
                  "the delta is damaged; the whole file is downloaded instead");
    if (eof && consumed == 0 && produced == 0)
      throw Error(Errc::mismatch, what + ": the delta ends early", "the whole file is downloaded instead");
  }
}

}  // namespace

void signature_params(uint64_t basis_size, size_t* block_len, size_t* strong_len) {
  // The wire cost of a delta is about signature + changed blocks: (size / B) * (4 + strong) + k * B
  // for k changed regions. B = sqrt(size * (4 + strong)) balances the two for one change (rsync
  // and rs_sig_args use about sqrt(size) with a longer strong sum, which makes the signature the
  // larger part: bench/bench_sync.sh, small edit in 100 MiB, 61 KB here vs 141 KB for rsync,
  // manifest and HTTP included). The strong sum only
  // has to make a false block match unlikely (32-bit RabinKarp + 32-bit BLAKE2 prefix: about
  // 2^-64 per candidate); a false match cannot install anything, since the patched file must
  // match the signed digest or the whole object is fetched instead.
  constexpr size_t kStrong = 4;
  double b = std::sqrt(static_cast<double>(basis_size) * (4 + kStrong));
  size_t blk = static_cast<size_t>(b) / 256 * 256;
  *block_len = std::clamp<size_t>(blk, 1024, 1 << 20);
  *strong_len = kStrong;
}

std::string make_signature(const std::string& basis_path) {
  UniqueFd fd(::open(basis_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) throw_errno("cannot open the delta basis", basis_path, errno);
  return make_signature(std::move(fd), basis_path);
}

std::string make_signature(UniqueFd fd, const std::string& basis_path) {
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat", basis_path, errno);
  size_t block_len = 0, strong_len = 0;
  signature_params(static_cast<uint64_t>(st.st_size), &block_len, &strong_len);
  std::unique_ptr<rs_job_t, JobFree> job(rs_sig_begin(block_len, strong_len, RS_RK_BLAKE2_SIG_MAGIC));
  std::string sig;
  drive(
      job.get(),
      [&](char* p, size_t n) -> size_t {
        for (;;) {
          ssize_t r = ::read(fd.get(), p, n);
          if (r >= 0) return static_cast<size_t>(r);
          if (errno != EINTR) throw_errno("cannot read", basis_path, errno);
        }
      },
      [&](const char* p, size_t n) { sig.append(p, n); }, "signature of " + basis_path);
  return sig;
}

std::string signature_of_bytes(std::string_view data) {
  size_t block_len = 0, strong_len = 0;
  signature_params(data.size(), &block_len, &strong_len);
  std::unique_ptr<rs_job_t, JobFree> job(rs_sig_begin(block_len, strong_len, RS_RK_BLAKE2_SIG_MAGIC));
  std::string sig;
  size_t at = 0;
  drive(
      job.get(),
      [&](char* p, size_t n) -> size_t {
        n = std::min(n, data.size() - at);
        std::memcpy(p, data.data() + at, n);
        at += n;
        return n;
      },
      [&](const char* p, size_t n) { sig.append(p, n); }, "signature");
  return sig;
}

namespace {
struct MemBasis {
  std::string_view data;
};
rs_result mem_copy_cb(void* opaque, rs_long_t pos, size_t* len, void** buf) {
  auto* b = static_cast<MemBasis*>(opaque);
  if (pos < 0 || static_cast<uint64_t>(pos) >= b->data.size()) return RS_INPUT_ENDED;
  *len = std::min(*len, b->data.size() - static_cast<size_t>(pos));
  *buf = const_cast<char*>(b->data.data() + pos);  // librsync copies from it
  return RS_DONE;
}
}  // namespace

std::string patch_bytes(std::string_view basis, std::string_view delta, uint64_t cap) {
  MemBasis mb{basis};
  std::unique_ptr<rs_job_t, JobFree> job(rs_patch_begin(mem_copy_cb, &mb));
  std::string out;
  size_t at = 0;
  drive(
      job.get(),
      [&](char* p, size_t n) -> size_t {
        n = std::min(n, delta.size() - at);
        std::memcpy(p, delta.data() + at, n);
        at += n;
        return n;
      },
      [&](const char* p, size_t n) {
        if (out.size() + n > cap)
          throw Error(Errc::mismatch, "the delta produces more than " + std::to_string(cap) + " bytes",
                      "the whole file is downloaded instead");
        out.append(p, n);
      },
      "patching");
  return out;
}


Digest apply_delta(const std::string& basis_path, const std::string& delta_path, int out_fd,
                   const std::string& out_path, uint64_t target_size, uint64_t* written) {
  // The same rule as make_signature(): the basis is never read through a link.
  UniqueFd basis_fd(::open(basis_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!basis_fd) throw_errno("cannot open the delta basis", basis_path, errno);
  return apply_delta(std::move(basis_fd), basis_path, delta_path, out_fd, out_path, target_size, written);
}

Digest apply_delta(UniqueFd basis_fd, const std::string& basis_path, const std::string& delta_path, int out_fd,
                   const std::string& out_path, uint64_t target_size, uint64_t* written) {
  FILE* basis = ::fdopen(basis_fd.get(), "rb");
  if (!basis) throw_errno("cannot open the delta basis", basis_path, errno);
  basis_fd.release();  // fclose closes it now
  std::unique_ptr<FILE, int (*)(FILE*)> basis_guard(basis, std::fclose);
  UniqueFd delta(::open(delta_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!delta) throw_errno("cannot open the delta", delta_path, errno);
  if (::ftruncate(out_fd, 0) != 0 || ::lseek(out_fd, 0, SEEK_SET) != 0) throw_errno("cannot reset", out_path, errno);
  std::unique_ptr<rs_job_t, JobFree> job(rs_patch_begin(rs_file_copy_cb, basis));
  Hasher h;
  uint64_t n_out = 0;
  drive(
      job.get(),
      [&](char* p, size_t n) -> size_t {
        for (;;) {
          ssize_t r = ::read(delta.get(), p, n);
          if (r >= 0) return static_cast<size_t>(r);
          if (errno != EINTR) throw_errno("cannot read", delta_path, errno);
        }
      },
      [&](const char* p, size_t n) {
        if (n_out + n > target_size)
          throw Error(Errc::mismatch, "the delta for " + out_path + " produces more than the signed " +
                                          std::to_string(target_size) + " bytes",
                      "the whole file is downloaded instead");
        write_all(out_fd, std::string_view(p, n), out_path);
        h.update(p, n);
        n_out += n;
      },
      "patching " + out_path);
  sync_file(out_fd, out_path);
  *written = n_out;
  return h.finish();
}

namespace {

uint32_t be32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

}  // namespace

void check_signature(std::string_view signature) {
  auto refuse = [](const std::string& why) {
    throw Error(Errc::corrupt, "the librsync signature is refused: " + why,
                "send a signature made by distd (librsync's rs_sig_begin over the basis file)");
  };
  if (signature.size() < 12) refuse("it is shorter than its 12-byte header");
  const auto* p = reinterpret_cast<const unsigned char*>(signature.data());
  const uint32_t magic = be32(p), block_len = be32(p + 4), strong_len = be32(p + 8);
  const bool blake2 = magic == RS_BLAKE2_SIG_MAGIC || magic == RS_RK_BLAKE2_SIG_MAGIC;
  if (!blake2 && magic != RS_MD4_SIG_MAGIC && magic != RS_RK_MD4_SIG_MAGIC) refuse("unknown magic number");
  const size_t body = signature.size() - 12;
  if (body == 0) return;  // no blocks: the delta is the whole target
  if (block_len == 0 || block_len > (16u << 20)) refuse("block length " + std::to_string(block_len) + " out of range");
  if (strong_len == 0 || strong_len > (blake2 ? 32u : 16u)) refuse("strong sum length " + std::to_string(strong_len));
  const size_t per_block = 4 + strong_len;
  if (body % per_block != 0) refuse("it ends inside a block");
  // Distinct (weak, strong) pairs per weak sum; identical blocks (runs of zeros) are harmless.
  struct Block {
    uint32_t weak;
    std::string_view strong;
  };
  std::vector<Block> blocks;
  blocks.reserve(body / per_block);
  for (size_t at = 12; at < signature.size(); at += per_block)
    blocks.push_back({be32(p + at), signature.substr(at + 4, strong_len)});
  std::sort(blocks.begin(), blocks.end(),
            [](const Block& a, const Block& b) { return a.weak != b.weak ? a.weak < b.weak : a.strong < b.strong; });
  size_t distinct = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (i == 0 || blocks[i].weak != blocks[i - 1].weak) {
      distinct = 1;
    } else if (blocks[i].strong != blocks[i - 1].strong && ++distinct > kMaxWeakCollisions) {
      refuse("more than " + std::to_string(kMaxWeakCollisions) + " different blocks share the weak checksum " +
             std::to_string(blocks[i].weak) + " (a signature made to cost HQ quadratic time)");
    }
  }
}

}  // namespace distd
