// Small, strict encoders shared by the formats: hex and RFC 3339 UTC timestamps.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace distd {

// Lower-case hex of bytes.
std::string to_hex(const void* data, size_t len);
template <class Bytes>
std::string to_hex(const Bytes& b) { return to_hex(b.data(), b.size()); }

// Decodes lower-case hex of exactly out_len bytes. Returns false on any other input.
bool from_hex(std::string_view hex, void* out, size_t out_len);

// "2026-11-27T06:00:00Z" for seconds since the epoch (UTC).
std::string format_utc(int64_t unix_seconds);
// Parses exactly that form; nullopt otherwise.
std::optional<int64_t> parse_utc(std::string_view text);

// Strict unsigned decimal (no sign, no leading zeros unless "0", fits in uint64).
std::optional<uint64_t> parse_u64(std::string_view text);

// "1.5 MiB", "312 B": for humans.
std::string human_bytes(uint64_t n);

}  // namespace distd
