#include "manifest/key_record.h"

#include "manifest/encoding.h"
#include "manifest/error.h"

namespace distd {
namespace {

std::string sig_line(const SecretKey& k, std::string_view body) {
  Signature s = sign_detached(k, body);
  return "signature ed25519 " + digest_hex(k.public_key().key_id()) + " " + to_hex(s.data(), s.size()) + "\n";
}

// Splits off the next '\n'-terminated line; false when there is none.
bool next_line(std::string_view& rest, std::string_view& line) {
  size_t nl = rest.find('\n');
  if (nl == std::string_view::npos) return false;
  line = rest.substr(0, nl);
  rest.remove_prefix(nl + 1);
  return true;
}

std::string_view after(std::string_view line, std::string_view prefix) {
  return line.substr(0, prefix.size()) == prefix ? line.substr(prefix.size()) : std::string_view{};
}

}  // namespace

std::string sign_key_record(const KeyRecord& rec, const SecretKey& previous, const SecretKey& next) {
  std::string body = "distd-keys 1\nversion " + std::to_string(rec.version) + "\nkey " +
                     to_hex(rec.key.bytes.data(), rec.key.bytes.size()) + "\n";
  for (const Digest& d : rec.revokes) body += "revokes " + digest_hex(d) + "\n";
  body += "created " + format_utc(rec.created) + "\nend\n";
  return body + sig_line(previous, body) + sig_line(next, body);
}

KeyRecord verify_key_record(std::string_view bytes, const PublicKey& previous, uint64_t expected_version,
                            const std::string& name) {
  auto bad = [&](const std::string& what) {
    return Error(Errc::corrupt, "key record " + name + " is malformed: " + what,
                 "fetch it again from HQ (or export the stick again); a record is never edited by hand");
  };
  if (bytes.size() > kMaxKeyRecordBytes) throw bad("larger than 64 KiB");
  std::string_view rest = bytes, line;
  KeyRecord rec;
  if (!next_line(rest, line) || line != "distd-keys 1") throw bad("the first line is not 'distd-keys 1'");
  if (!next_line(rest, line) || after(line, "version ").empty()) throw bad("no 'version' line");
  auto v = parse_u64(after(line, "version "));
  if (!v || *v < 2) throw bad("bad version '" + std::string(line) + "'");
  rec.version = *v;
  if (!next_line(rest, line) || after(line, "key ").size() != 64 ||
      !from_hex(after(line, "key "), rec.key.bytes.data(), rec.key.bytes.size()))
    throw bad("no 'key <64 hex digits>' line");
  while (next_line(rest, line) && !after(line, "revokes ").empty()) {
    auto d = parse_digest_hex(after(line, "revokes "));
    if (!d) throw bad("bad 'revokes' line");
    rec.revokes.push_back(*d);
  }
  auto created = parse_utc(after(line, "created "));
  if (!created) throw bad("no 'created <UTC time>' line after the 'revokes' lines");
  rec.created = *created;
  if (!next_line(rest, line) || line != "end") throw bad("no 'end' line");
  std::string_view body = bytes.substr(0, bytes.size() - rest.size());
  const PublicKey* signers[2] = {&previous, &rec.key};
  for (const PublicKey* k : signers) {
    std::string_view sig_hex;
    if (!next_line(rest, line) || (sig_hex = after(line, "signature ed25519 ")).size() != 64 + 1 + 128 ||
        sig_hex[64] != ' ')
      throw bad("it needs two signature lines (the previous key's, then the new key's)");
    auto id = parse_digest_hex(sig_hex.substr(0, 64));
    Signature sig{};
    if (!id || !from_hex(sig_hex.substr(65), sig.data(), sig.size())) throw bad("bad signature line");
    if (*id != k->key_id())
      throw Error(Errc::bad_signature,
                  "key record " + name + " is signed by key " + digest_hex(*id).substr(0, 16) + ", expected key " +
                      k->short_id() + (k == &previous ? " (the key it replaces)" : " (the key it brings)"),
                  "a key record must be signed by the previous HQ key and the new one; ask HQ's admin");
    if (!verify_detached(*k, body, sig))
      throw Error(Errc::bad_signature, "key record " + name + ": the signature of key " + k->short_id() +
                                           " does not verify", "the record was damaged or forged; ask HQ's admin");
  }
  if (!rest.empty()) throw bad("bytes after the signatures");
  if (rec.version != expected_version)
    throw Error(Errc::rollback,
                "key record " + name + " has version " + std::to_string(rec.version) + ", expected " +
                    std::to_string(expected_version),
                "key records are followed one version at a time; fetch the missing ones");
  bool revokes_previous = false;
  for (const Digest& d : rec.revokes) revokes_previous |= d == previous.key_id();
  if (!revokes_previous) throw bad("it does not revoke the key it replaces");
  return rec;
}

}  // namespace distd
