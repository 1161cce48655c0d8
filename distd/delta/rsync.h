// librsync glue shared by HQ and the center: the basis signature, the patch, the size rules.
// (HQ computes deltas in distd/hq/delta_service.h; the center requests them in
// distd/regional/delta_request.h.)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "manifest/digest.h"
#include "manifest/fs.h"

namespace distd {

// The most a client ever reads of a delta for a target of target_size bytes (docs/formats/http.md).
uint64_t delta_size_cap(uint64_t target_size);

// The block and strong-sum lengths make_signature uses for a basis of basis_size bytes:
// block = sqrt(size * 8) (multiple of 256, 1 KiB .. 1 MiB), strong sum 4 bytes. See the .cpp.
void signature_params(uint64_t basis_size, size_t* block_len, size_t* strong_len);

// A librsync signature (RS_RK_BLAKE2_SIG_MAGIC, lengths from signature_params: short, since the
// patched file is verified against the signed digest anyway) of the file at basis_path.
// Constant memory apart from the signature itself (about 8 / sqrt(8 * size) of the basis).
std::string make_signature(const std::string& basis_path);
// The same for a basis already open (the center opens it beneath its tree: manifest/beneath.h);
// basis_path names it in errors.
std::string make_signature(UniqueFd basis, const std::string& basis_path);

// The same for bytes in memory (a manifest), and the patch of basis bytes by a delta in memory.
// patch_bytes never produces more than cap bytes (Error{mismatch}, also for a malformed delta).
std::string signature_of_bytes(std::string_view data);
std::string patch_bytes(std::string_view basis, std::string_view delta, uint64_t cap);

// Checks a librsync signature from an untrusted client before librsync loads it: a known magic,
// a block length from 1 byte to 16 MiB, a strong-sum length librsync accepts, whole blocks, and
// no more than kMaxWeakCollisions different blocks sharing one weak checksum — librsync searches
// such blocks one by one at every position of the target, so a signature made of colliding
// blocks costs time quadratic in its size (10,000 of them against a 1 MiB target: 85 s of CPU).
// Throws Error{corrupt} saying which rule the signature breaks.
constexpr size_t kMaxWeakCollisions = 64;
void check_signature(std::string_view signature);

// The "delta pays" rule, the same at HQ (bundle export) and at the center (delta request): a
// delta is used only when it and the signature that went up for it are clearly smaller (under
// 90 %) than the whole target.
bool delta_pays(uint64_t delta_size, uint64_t signature_size, uint64_t target_size);

// Applies the delta file to the basis file, writing the result to out_fd (from offset 0).
// Never writes more than target_size bytes: a delta that would is Error{mismatch}. Returns the
// BLAKE2b-256 of what was written; *written receives its length. A malformed delta is
// Error{mismatch}.
Digest apply_delta(const std::string& basis_path, const std::string& delta_path, int out_fd,
                   const std::string& out_path, uint64_t target_size, uint64_t* written);
// The same with the basis already open (read from its start).
Digest apply_delta(UniqueFd basis, const std::string& basis_path, const std::string& delta_path, int out_fd,
                   const std::string& out_path, uint64_t target_size, uint64_t* written);

}  // namespace distd
