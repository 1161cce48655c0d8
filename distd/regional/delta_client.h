// The client side of librsync deltas: the basis signature, the delta request, and the patch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "distd/net/http_client.h"
#include "manifest/digest.h"

namespace distd {

// The most a client ever reads of a delta for a target of target_size bytes (docs/formats/http.md).
uint64_t delta_size_cap(uint64_t target_size);

// A librsync signature (RS_RK_BLAKE2_SIG_MAGIC, block and strong-sum length from rs_sig_args;
// the shortest strong sum that is safe against random collisions, since the patched file is
// verified against the signed digest anyway) of the file at basis_path. Constant memory apart
// from the signature itself (about 0.1% of the basis).
std::string make_signature(const std::string& basis_path);

struct DeltaTicket {
  std::string id;  // hex
  uint64_t size = 0;
};

// Asks HQ for a delta from the basis (by its signature) to target. Returns nullopt with *why
// set when HQ cannot or should not serve one: 404/405/501 (a plain web server), another error
// status, or a delta that is not clearly smaller than the whole object. Throws Error{network}
// when the link fails.
std::optional<DeltaTicket> request_delta(HttpClient& http, const std::string& signature,
                                         const std::string& target_hex, uint64_t target_size, std::string* why);

// Applies the delta file to the basis file, writing the result to out_fd (from offset 0).
// Never writes more than target_size bytes: a delta that would is Error{mismatch}. Returns the
// BLAKE2b-256 of what was written; *written receives its length. A malformed delta is
// Error{mismatch}.
Digest apply_delta(const std::string& basis_path, const std::string& delta_path, int out_fd,
                   const std::string& out_path, uint64_t target_size, uint64_t* written);

}  // namespace distd
