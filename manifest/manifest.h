// The signed manifest: "this is exactly the content HQ published for channel C, version N".
// The byte format is specified in docs/formats/manifest.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "manifest/digest.h"
#include "manifest/keys.h"

namespace distd {

constexpr uint64_t kMaxEntrySize = uint64_t(1) << 50;      // 1 PiB: anything larger is absurd
constexpr uint64_t kMaxManifestBytes = uint64_t(1) << 30;  // 1 GiB on disk
constexpr uint64_t kMaxEntries = 20'000'000;

struct Entry {
  std::string path;  // raw bytes, safe (see path.h)
  uint64_t size = 0;
  uint32_t mode = 0644;  // permission bits only (no setuid/setgid/sticky)
  Digest digest{};
};

struct Manifest {
  std::string channel;
  uint64_t version = 0;
  int64_t created = 0;  // seconds since the epoch, UTC
  int64_t expires = 0;
  std::optional<Digest> previous;  // digest of the previous version's signed body
  std::vector<Entry> entries;      // sorted by path bytes, no duplicates

  uint64_t total_bytes() const;
  // Sorts entries, then validate().
  void normalize();
  // Checks every rule (channel, version, dates, sorted unique safe paths, sizes, modes) without
  // copying anything. Throws Error{unsafe_path, usage} naming the offending entry.
  void validate() const;
  const Entry* find(std::string_view path) const;  // binary search
};

// The canonical, signed bytes. REQUIRES: entries sorted (normalize()); validated here.
std::string canonical_body(const Manifest& m);

// Signs m: returns the complete manifest file (body + signature line).
std::string sign_manifest(const Manifest& m, const SecretKey& key);

struct SignedManifest {
  Manifest manifest;
  Digest body_digest{};  // BLAKE2b-256 of the signed body: what the next version's "previous" names
  Digest key_id{};       // the key that signed it
};

// Parses a manifest file without checking the signature (for `show` and tools). Strict:
// every deviation from the canonical form is Error{corrupt} with the line number.
SignedManifest parse_manifest(std::string_view file_bytes, const std::string& name_for_errors);

struct VerifyOptions {
  int64_t now = 0;                 // 0: the current time
  int64_t expiry_slack_seconds = 0;  // accepted past `expires`
  bool check_expiry = true;
};

// Parses and verifies signature, key and expiry. Throws Error{bad_signature} (mis-signed or a
// different key, naming both key ids), Error{expired}, or Error{corrupt}.
SignedManifest verify_manifest(std::string_view file_bytes, const PublicKey& key, const VerifyOptions& opts,
                               const std::string& name_for_errors);

}  // namespace distd
