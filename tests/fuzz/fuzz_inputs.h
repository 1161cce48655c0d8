// Fixed inputs the rsync targets share with their corpus generator (tests/fuzz/make_corpus.cpp):
// the file a center holds (basis) and the file HQ has (target), both made here, deterministically.
#pragma once

#include <cstdint>
#include <string>

namespace distd::fuzz {

// 16 KiB of manifest-like text lines with some binary runs.
inline std::string rsync_basis() {
  std::string s;
  uint32_t x = 12345;
  for (int i = 0; s.size() < 16 * 1024; ++i) {
    x = x * 1103515245 + 12345;
    s += "file moodledata/filedir/" + std::to_string(x % 97) + "/" + std::to_string(x) + " 0644 " +
         std::to_string(i * 4096) + "\n";
    if (i % 16 == 0)
      for (int k = 0; k < 64; ++k) s += static_cast<char>((x >> (k % 24)) & 0xff);
  }
  s.resize(16 * 1024);
  return s;
}

// The basis with an insert, a change and a cut: what a delta turns the basis into.
inline std::string rsync_target() {
  std::string s = rsync_basis();
  s.insert(5000, "a new line of the newest version\n");
  s[9000] ^= 0x55;
  s.erase(12000, 700);
  return s;
}

}  // namespace distd::fuzz
