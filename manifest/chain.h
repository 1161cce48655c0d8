// Version chains: every manifest names the signed body of the version before it, so versions that
// arrive together (a bundle) or one at a time (sync) can be checked to continue each other and
// the installed version. Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "manifest/digest.h"
#include "manifest/manifest.h"

namespace distd {

// Where a chain breaks: `version` does not name the body of `follows`.
struct ChainBreak {
  uint64_t version = 0;
  uint64_t follows = 0;
  bool of_installed = false;  // follows is the installed version (not one of the run)
};

// REQUIRES: run holds verified manifests of one channel, sorted by version (gaps allowed: only
// consecutive versions are compared). installed: the installed version and its body digest
// (version 0 / nullopt: nothing installed, nothing to continue). Returns the first break, or
// nullopt when every consecutive pair, and the version after the installed one, continue.
std::optional<ChainBreak> check_chain(const std::vector<const SignedManifest*>& run, uint64_t installed_version,
                                      const std::optional<Digest>& installed_digest);

}  // namespace distd
