// BLAKE2b-256 (libsodium crypto_generichash): the digest of every file, object and manifest.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <sodium.h>

namespace distd {

using Digest = std::array<uint8_t, 32>;

// Streaming hasher. Constant memory for any input size.
class Hasher {
 public:
  Hasher();
  void update(const void* data, size_t len);
  void update(std::string_view s) { update(s.data(), s.size()); }
  Digest finish();  // REQUIRES: called once

 private:
  crypto_generichash_state st_;
};

Digest digest_bytes(std::string_view data);

// Hashes an open file from its current offset to EOF with a 256 KiB buffer (constant memory).
// Returns the digest; *bytes_read receives the byte count. Throws Error{io} naming path_for_errors.
Digest digest_fd(int fd, const std::string& path_for_errors, uint64_t* bytes_read = nullptr);
// Opens path (O_NOFOLLOW: a symlink is refused) and hashes it.
Digest digest_file(const std::string& path, uint64_t* bytes_read = nullptr);

std::string digest_hex(const Digest& d);
std::optional<Digest> parse_digest_hex(std::string_view hex);

}  // namespace distd
