// Ed25519 keys (libsodium) and their files.
//
// Public key file (safe to copy around, compare the key id by eye):
//   # distd public key (Ed25519), key id 9f2c 41aa 07de 5b13
//   ed25519-public <64 hex digits>
// Secret key file (mode 0600; refused when group- or world-readable):
//   # distd SECRET key (Ed25519), key id ... Keep it private.
//   ed25519-secret <128 hex digits>
// Key id = BLAKE2b-256 of the 32 public key bytes.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "manifest/digest.h"

namespace distd {

struct PublicKey {
  std::array<uint8_t, 32> bytes{};
  Digest key_id() const;
  std::string short_id() const;  // "9f2c 41aa 07de 5b13": the first 8 bytes, grouped
};

// A key id's short form, as PublicKey::short_id() prints it.
std::string short_key_id(const Digest& key_id);

struct SecretKey {
  std::array<uint8_t, 64> bytes{};  // libsodium's seed || public key
  PublicKey public_key() const;
};

struct KeyPair {
  PublicKey pub;
  SecretKey sec;
};

KeyPair generate_keypair();

// Writes both files (secret 0600, public 0644). Refuses to overwrite an existing secret key.
void write_keypair(const KeyPair& kp, const std::string& secret_path, const std::string& public_path);

PublicKey load_public_key(const std::string& path);
// Throws Error{usage} when the file is readable by group or others, with the chmod to run.
SecretKey load_secret_key(const std::string& path);

std::string format_public_key(const PublicKey& k);
std::string format_secret_key(const SecretKey& k);
PublicKey parse_public_key(const std::string& text, const std::string& path_for_errors);

using Signature = std::array<uint8_t, 64>;
Signature sign_detached(const SecretKey& k, std::string_view message);
bool verify_detached(const PublicKey& k, std::string_view message, const Signature& sig);

}  // namespace distd
