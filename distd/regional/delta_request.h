// The center asks HQ for a librsync delta (POST /deltas, docs/formats/http.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "distd/net/http_client.h"

namespace distd {

struct DeltaTicket {
  std::string id;  // hex
  uint64_t size = 0;
  uint64_t zsize = 0;  // its stored zstd form (GET /deltas/<id>.zst) when smaller; 0: none
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

// How often a delta request that HQ answers 503 (busy: [hq] max_delta_jobs) is sent again, and the
// pause before each (HQ's Retry-After).
constexpr int kBusyRetries = 3;
constexpr double kBusyPauseSeconds = 5.0;

// Asks HQ for a delta from the basis (by its signature) to target. A 503 is asked again
// kBusyRetries times, kBusyPauseSeconds apart. Returns nullopt with
// *declined set when HQ cannot or should not serve one. Throws Error{network} when the link fails.
std::optional<DeltaTicket> request_delta(HttpClient& http, const std::string& signature,
                                         const std::string& target_hex, uint64_t target_size, DeltaDeclined* declined);

}  // namespace distd
