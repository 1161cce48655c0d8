#include "manifest/digest.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd {

namespace {
struct SodiumInit {
  SodiumInit() {
    if (sodium_init() < 0) throw Error(Errc::internal, "libsodium failed to initialise");
  }
};
const SodiumInit sodium_init_once;
constexpr size_t kBufferBytes = 256 * 1024;
}  // namespace

Hasher::Hasher() { crypto_generichash_init(&st_, nullptr, 0, 32); }

void Hasher::update(const void* data, size_t len) {
  crypto_generichash_update(&st_, static_cast<const unsigned char*>(data), len);
}

Digest Hasher::finish() {
  Digest d;
  crypto_generichash_final(&st_, d.data(), d.size());
  return d;
}

Digest digest_bytes(std::string_view data) {
  Digest d;
  crypto_generichash(d.data(), d.size(), reinterpret_cast<const unsigned char*>(data.data()), data.size(), nullptr, 0);
  return d;
}

Digest digest_fd(int fd, const std::string& path_for_errors, uint64_t* bytes_read) {
  Hasher h;
  std::unique_ptr<char[]> buf(new char[kBufferBytes]);
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.get(), kBufferBytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read", path_for_errors, errno);
    }
    if (n == 0) break;
    h.update(buf.get(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  if (bytes_read) *bytes_read = total;
  return h.finish();
}

Digest digest_file(const std::string& path, uint64_t* bytes_read) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) throw_errno("cannot open", path, errno);
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  return digest_fd(fd.get(), path, bytes_read);
}

std::string digest_hex(const Digest& d) { return to_hex(d.data(), d.size()); }

std::optional<Digest> parse_digest_hex(std::string_view hex) {
  Digest d;
  if (!from_hex(hex, d.data(), d.size())) return std::nullopt;
  return d;
}

}  // namespace distd
