#include "distd/regional/trust.h"

#include "distd/net/http_client.h"
#include "distd/regional/channel_install.h"
#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd {
namespace {

std::string trust_dir(const Config& cfg) { return cfg.state_dir + "/trust"; }
std::string record_path(const Config& cfg, uint64_t v) { return trust_dir(cfg) + "/" + std::to_string(v) + ".keys"; }

void advance(TrustedKey& tk, const KeyRecord& rec) {
  for (const Digest& d : rec.revokes) tk.revoked.push_back({d, rec.version});
  tk.key = rec.key;
  tk.version = rec.version;
  tk.chain.push_back(rec.key);
}

}  // namespace

TrustedKey trusted_hq_key(const Config& cfg, const PublicKey& pinned, const LogLineFn& log) {
  TrustedKey tk;
  tk.key = pinned;
  tk.chain.push_back(pinned);
  for (uint64_t v = 2;; ++v) {
    std::string p = record_path(cfg, v);
    std::string bytes;
    try {
      bytes = read_file(p, kMaxKeyRecordBytes, "key record");
    } catch (const Error&) {
      return tk;  // the end of the chain (or no trust/ at all)
    }
    try {
      advance(tk, verify_key_record(bytes, tk.key, v, p));
    } catch (const Error& e) {
      if (log)
        log(std::string("warning: ignoring the stored key records from ") + p +
            " on: " + e.what() + " (a re-pinned hq_public_key starts a new chain)");
      return tk;
    }
  }
}

void follow_key_record(const Config& cfg, TrustedKey& tk, const std::string& bytes, const std::string& name) {
  KeyRecord rec = verify_key_record(bytes, tk.key, tk.version + 1, name);
  make_dirs(trust_dir(cfg), 0755);
  write_file_atomic(record_path(cfg, rec.version), bytes, 0644);
  advance(tk, rec);
}

PublicKey follow_keys_over_link(const Config& cfg, const std::string& hq_url, const HttpOptions& ho,
                                const LogLineFn& log) {
  TrustedKey tk = trusted_hq_key(cfg, regional_pinned_key(cfg), log);
  try {
    HttpClient http(hq_url, ho);
    for (uint64_t n = 0; n < kMaxKeyRecordsPerRun; ++n) {
      std::string path = "/keys/" + std::to_string(tk.version + 1) + ".keys";
      HttpAnswer a = http.get(path, kMaxKeyRecordBytes);
      if (a.status == 404) break;
      if (a.status != 200) {
        if (log) log("warning: HQ answered " + std::to_string(a.status) + " for " + http.url(path) + "; keeping key " +
                     tk.key.short_id());
        break;
      }
      follow_key_record(cfg, tk, a.body, http.url(path));
      if (log) log("HQ's signing key is now " + tk.key.short_id() + " (key record " + std::to_string(tk.version) + ")");
    }
  } catch (const Error& e) {
    if (e.code() != Errc::network) throw;
    if (log) log(std::string("warning: could not ask HQ for new key records: ") + e.what());
  }
  return tk.key;
}

SignedManifest verify_hq_manifest(const Config& cfg, std::string_view bytes, const PublicKey& hq_key,
                                  const VerifyOptions& vo, const std::string& name) {
  try {
    return verify_manifest(bytes, hq_key, vo, name);
  } catch (const Error& e) {
    if (e.code() != Errc::bad_signature) throw;
    Digest signer;
    try {
      signer = parse_manifest(bytes, name).key_id;
    } catch (const Error&) {
      throw e;
    }
    const TrustedKey tk = trusted_hq_key(cfg, regional_pinned_key(cfg));
    for (const TrustedKey::Revoked& r : tk.revoked)
      if (r.key_id == signer)
        throw Error(Errc::bad_signature,
                    name + " is signed by HQ's key " + short_key_id(signer) + ", which HQ revoked in key record " +
                        std::to_string(r.by_version) + " (" + record_path(cfg, r.by_version) +
                        "); this center trusts only HQ's key " + tk.key.short_id() + " now",
                    "nothing was installed. HQ changed its signing key after this manifest was signed: sync "
                    "again, or bring a stick exported after the change; if HQ itself serves it, HQ still "
                    "publishes with the retired key (check [hq] secret_key there)");
    throw;
  }
}

SignedManifest verify_stored_manifest(const Config& cfg, std::string_view bytes, const PublicKey& hq_key,
                                      const VerifyOptions& vo, const std::string& name) {
  try {
    return verify_manifest(bytes, hq_key, vo, name);
  } catch (const Error& e) {
    if (e.code() != Errc::bad_signature) throw;
    TrustedKey tk = trusted_hq_key(cfg, regional_pinned_key(cfg));
    SignedManifest sm = parse_manifest(bytes, name);
    for (const PublicKey& k : tk.chain)
      if (k.key_id() == sm.key_id) return verify_manifest(bytes, k, vo, name);
    throw;
  }
}

}  // namespace distd
