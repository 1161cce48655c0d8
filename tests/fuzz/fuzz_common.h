// Shared by the fuzz targets (tests/fuzz/fuzz_*.cpp): a fixed key pair, a contract check that
// stops the run (libFuzzer and tests/fuzz/fuzz_driver.cpp both save the input), and byte views.
#pragma once

#include <sodium.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "manifest/keys.h"

namespace distd::fuzz {

// The same key pair in every run (seed 0x01 x 32), so that a saved input reproduces.
inline const KeyPair& fixed_keypair() {
  static const KeyPair kp = [] {
    if (sodium_init() < 0) std::abort();
    unsigned char seed[crypto_sign_SEEDBYTES];
    for (auto& b : seed) b = 1;
    KeyPair k;
    crypto_sign_seed_keypair(k.pub.bytes.data(), k.sec.bytes.data(), seed);
    return k;
  }();
  return kp;
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// A broken contract: say which and stop with a trap (the harness saves the input).
[[noreturn]] inline void contract_broken(const char* what, const char* file, int line) {
  std::fprintf(stderr, "==fuzz== contract broken at %s:%d: %s\n", file, line, what);
  __builtin_trap();
}

}  // namespace distd::fuzz

#define FUZZ_CHECK(cond) \
  do { \
    if (!(cond)) ::distd::fuzz::contract_broken(#cond, __FILE__, __LINE__); \
  } while (0)
