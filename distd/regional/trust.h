// The HQ key a center trusts: the key pinned in its config ([regional] hq_public_key, "version
// 1") followed through the key records it has verified (docs/formats/keys.md), kept under
// <state_dir>/trust/<N>.keys. A record that does not verify against the key before it ends the
// chain there; a chain stored for another pinned key (an admin re-pinned by hand) is ignored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "distd/config/config.h"
#include "distd/net/http_client.h"
#include "distd/regional/sync.h"
#include "manifest/key_record.h"
#include "manifest/manifest.h"

namespace distd {

struct TrustedKey {
  PublicKey key;         // the key manifests must be signed with
  uint64_t version = 1;  // 1: the pinned key itself
  struct Revoked {
    Digest key_id;
    uint64_t by_version;  // the record that revoked it
  };
  std::vector<Revoked> revoked;
  std::vector<PublicKey> chain;  // every key followed, the pinned one first, `key` last
};

inline constexpr uint64_t kMaxKeyRecordsPerRun = 16;

// The pinned key followed through <state_dir>/trust/. log (may be empty) hears why a stored
// record was ignored.
TrustedKey trusted_hq_key(const Config& cfg, const PublicKey& pinned, const LogLineFn& log = {});

// Verifies bytes as record tk.version + 1 (throws as verify_key_record does; nothing stored
// then), stores it durably under <state_dir>/trust/ and advances tk.
void follow_key_record(const Config& cfg, TrustedKey& tk, const std::string& bytes, const std::string& name);

// Asks HQ for /keys/<version+1>.keys until a 404 (at most kMaxKeyRecordsPerRun), following each.
// A network failure is logged and leaves tk as it is (the manifest fetch reports the link).
// REQUIRES: the regional state lock is held. Returns the key to verify manifests with.
PublicKey follow_keys_over_link(const Config& cfg, const std::string& hq_url, const HttpOptions& ho,
                                const LogLineFn& log);

// Verifies a manifest that arrived (over the link or on a stick) with hq_key, as verify_manifest
// does; one signed by a key HQ revoked in a record this center follows is refused with
// Error{bad_signature} naming the key and the record (not merely "bad signature").
SignedManifest verify_hq_manifest(const Config& cfg, std::string_view bytes, const PublicKey& hq_key,
                                  const VerifyOptions& vo, const std::string& name);

// Verifies a manifest this center stored itself (installed.manifest): by hq_key, or, when that
// fails, by an earlier key of the chain (a version installed before a rotation was signed by the
// key it replaced; it was verified when it arrived). Throws as verify_manifest does. A bundle's
// older manifests (links of the version chain from the installed version to the newest, which
// must verify by hq_key; only the newest is installed) are verified this way too.
SignedManifest verify_stored_manifest(const Config& cfg, std::string_view bytes, const PublicKey& hq_key,
                                      const VerifyOptions& vo, const std::string& name);

}  // namespace distd
