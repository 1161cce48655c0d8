// The client side of librsync deltas: the basis signature, the delta request, and the patch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "distd/net/http_client.h"
#include "manifest/digest.h"

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

// The same for bytes in memory (a manifest), and the patch of basis bytes by a delta in memory.
// patch_bytes never produces more than cap bytes (Error{mismatch}, also for a malformed delta).
std::string signature_of_bytes(std::string_view data);
std::string patch_bytes(std::string_view basis, std::string_view delta, uint64_t cap);

struct DeltaTicket {
  std::string id;  // hex
  uint64_t size = 0;
};

// Why HQ gave no delta ticket.
enum class NoDelta {
  unsupported,  // 404/405/501: a plain web server, which never will (stop asking this run)
  refused,      // another error status
  malformed,    // an answer that is not a ticket for this target
  not_smaller,  // a delta that is not clearly smaller than the whole object
};
struct DeltaDeclined {
  NoDelta reason = NoDelta::refused;
  std::string why;  // for the log: "HQ does not compute deltas here (HTTP 405, ...)"
};

// Asks HQ for a delta from the basis (by its signature) to target. Returns nullopt with
// *declined set when HQ cannot or should not serve one. Throws Error{network} when the link fails.
std::optional<DeltaTicket> request_delta(HttpClient& http, const std::string& signature,
                                         const std::string& target_hex, uint64_t target_size, DeltaDeclined* declined);

// Applies the delta file to the basis file, writing the result to out_fd (from offset 0).
// Never writes more than target_size bytes: a delta that would is Error{mismatch}. Returns the
// BLAKE2b-256 of what was written; *written receives its length. A malformed delta is
// Error{mismatch}.
Digest apply_delta(const std::string& basis_path, const std::string& delta_path, int out_fd,
                   const std::string& out_path, uint64_t target_size, uint64_t* written);

}  // namespace distd
