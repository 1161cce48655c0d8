#include "manifest/keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>

#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd {

Digest PublicKey::key_id() const { return digest_bytes({reinterpret_cast<const char*>(bytes.data()), bytes.size()}); }

std::string PublicKey::short_id() const { return short_key_id(key_id()); }

std::string short_key_id(const Digest& key_id) {
  std::string hex = digest_hex(key_id).substr(0, 16);
  return hex.substr(0, 4) + " " + hex.substr(4, 4) + " " + hex.substr(8, 4) + " " + hex.substr(12, 4);
}

PublicKey SecretKey::public_key() const {
  PublicKey p;
  crypto_sign_ed25519_sk_to_pk(p.bytes.data(), bytes.data());
  return p;
}

KeyPair generate_keypair() {
  KeyPair kp;
  crypto_sign_keypair(kp.pub.bytes.data(), kp.sec.bytes.data());
  return kp;
}

std::string format_public_key(const PublicKey& k) {
  return "# distd public key (Ed25519), key id " + k.short_id() +
         "\n# Install it at each regional center as [regional] hq_public_key.\n"
         "ed25519-public " + to_hex(k.bytes) + "\n";
}

std::string format_secret_key(const SecretKey& k) {
  return "# distd SECRET key (Ed25519), key id " + k.public_key().short_id() +
         "\n# Keep it private: whoever holds it can publish to every regional center.\n"
         "ed25519-secret " + to_hex(k.bytes) + "\n";
}

// Returns the hex after `tag ` on the first non-comment line, or throws.
static std::string key_line(const std::string& text, const std::string& tag, const std::string& path) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind(tag + " ", 0) == 0) return line.substr(tag.size() + 1);
    break;
  }
  throw Error(Errc::corrupt, "'" + path + "' is not a distd " + (tag == "ed25519-public" ? "public" : "secret") + " key file",
              "expected a line '" + tag + " <hex>'; create keys with 'distctl keygen'");
}

PublicKey parse_public_key(const std::string& text, const std::string& path) {
  PublicKey k;
  std::string hex = key_line(text, "ed25519-public", path);
  if (!from_hex(hex, k.bytes.data(), k.bytes.size()))
    throw Error(Errc::corrupt, "public key file '" + path + "' holds no valid 32-byte key",
                "copy the file again from HQ and compare its key id by eye");
  return k;
}

PublicKey load_public_key(const std::string& path) {
  return parse_public_key(read_file(path, 64 * 1024, "public key file"), path);
}

SecretKey load_secret_key(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_errno("cannot read secret key", path, errno);
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    throw Error(Errc::usage, "secret key '" + path + "' is readable by others (mode " + mode + ")",
                "run: chmod 600 '" + path + "' (and consider the key exposed if others could read it)");
  }
  std::string text = read_file(path, 64 * 1024, "secret key file");
  SecretKey k;
  std::string hex = key_line(text, "ed25519-secret", path);
  if (!from_hex(hex, k.bytes.data(), k.bytes.size()))
    throw Error(Errc::corrupt, "secret key file '" + path + "' holds no valid 64-byte key",
                "restore it from your backup, or create a new one with 'distctl keygen' and re-enroll the "
                "public key at every center");
  // The stored public half must match the seed: a damaged file would sign with the wrong key.
  unsigned char pk[32], sk[64];
  crypto_sign_seed_keypair(pk, sk, k.bytes.data());
  if (sodium_memcmp(sk, k.bytes.data(), 64) != 0)
    throw Error(Errc::corrupt, "secret key file '" + path + "' is damaged (its two halves disagree)",
                "restore it from your backup");
  sodium_memzero(sk, sizeof sk);
  return k;
}

void write_keypair(const KeyPair& kp, const std::string& secret_path, const std::string& public_path) {
  struct stat st {};
  if (::stat(secret_path.c_str(), &st) == 0)
    throw Error(Errc::usage, "secret key '" + secret_path + "' already exists; refusing to overwrite it",
                "move the old key away first if you really mean to replace it (every center pins the old "
                "public key)");
  write_file_atomic(secret_path, format_secret_key(kp.sec), 0600);
  write_file_atomic(public_path, format_public_key(kp.pub), 0644);
}

Signature sign_detached(const SecretKey& k, std::string_view message) {
  Signature sig;
  crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       k.bytes.data());
  return sig;
}

bool verify_detached(const PublicKey& k, std::string_view message, const Signature& sig) {
  return crypto_sign_verify_detached(sig.data(), reinterpret_cast<const unsigned char*>(message.data()),
                                     message.size(), k.bytes.data()) == 0;
}

}  // namespace distd
