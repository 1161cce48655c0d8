// HQ's signing-key records (docs/formats/keys.md): "key N replaces key N-1", signed by both.
//
//   distd-keys 1
//   version 2
//   key <64 hex digits: the new 32-byte Ed25519 public key>
//   revokes <64 hex digits: a key id>        (one line per revoked key; the previous key first)
//   created <UTC time, 2026-12-02T22:00:00Z>
//   end
//   signature ed25519 <previous key id> <128 hex digits>
//   signature ed25519 <new key id> <128 hex digits>
//
// Both signatures cover the bytes up to and including "end\n". Version 1 is the key a center
// pins in its config; record N (N >= 2) is verified against the key of record N-1.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "manifest/digest.h"
#include "manifest/keys.h"

namespace distd {

inline constexpr uint64_t kMaxKeyRecordBytes = 64 * 1024;

struct KeyRecord {
  uint64_t version = 0;  // >= 2
  PublicKey key;         // the new key
  std::vector<Digest> revokes;
  int64_t created = 0;  // unix seconds
};

// The complete record file, signed by previous (the key it replaces) and next (rec.key's pair).
// REQUIRES: next.public_key() == rec.key, rec.version >= 2.
std::string sign_key_record(const KeyRecord& rec, const SecretKey& previous, const SecretKey& next);

// Parses and verifies a record file: strict syntax (Error{corrupt}), version == expected_version
// (Error{rollback} otherwise), the first signature by `previous` and the second by the record's
// own key (Error{bad_signature} naming the key ids), `previous` among the revoked keys.
// name: the file or URL, for messages.
[[nodiscard]] KeyRecord verify_key_record(std::string_view bytes, const PublicKey& previous,
                                          uint64_t expected_version, const std::string& name);

}  // namespace distd
