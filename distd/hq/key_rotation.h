// Rotating HQ's signing key (docs/hq.md "Rotating the signing key", docs/formats/keys.md).
//
// rotate_signing_key() replaces the pair at [hq] secret_key / public_key with a new one and
// publishes key record N ("key N replaces key N-1", signed by both) so that centers follow it,
// over the link (GET /keys/<N>.keys) and by stick. Order of durable steps, under publish.lock:
//   1. the new secret key is written to <secret_key>.next (0600);
//   2. public/keys/<N>.keys, signed by the old and the new key: from here on a center that
//      follows it refuses what the old key signs;
//   3. the old secret key is kept as <secret_key>.retired-<key id> (0600);
//   4. the new public key replaces [hq] public_key, then the new secret replaces secret_key;
//   5. every published channel is re-signed with the new key (a publish re-signs an unchanged
//      channel whose manifest another key signed, so distd's periodic publish also finishes it);
//   6. <secret_key>.next is removed: the rotation is complete.
// A crash before 2 leaves the old key in force (the .next file is discarded by the next run);
// a crash after 2 is finished by running the rotation again, which then rotates no further.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "distd/config/config.h"
#include "distd/hq/publisher.h"
#include "manifest/keys.h"

namespace distd::hq {

struct RotationResult {
  uint64_t record_version = 0;  // N, the record that brings the new key
  std::string record_path;      // public/keys/<N>.keys
  Digest old_key_id;            // the key it replaces (revoked by the record)
  PublicKey new_key;
  std::string retired_secret;   // where the old secret key is kept
  bool resumed = false;         // finished a rotation a crash had interrupted after step 2
  std::vector<PublishResult> channels;  // the re-signed channels (never-published ones are skipped)
};

// Rotates HQ's signing key. Throws Error{usage} without [hq] secret_key, Error{io} while a
// publish runs, Error{corrupt} when the newest key record does not name the installed key (a
// rotation done by hand and left half-way: the hint says what to restore).
RotationResult rotate_signing_key(const Config& cfg, const std::function<void(const std::string&)>& log = {});

}  // namespace distd::hq
