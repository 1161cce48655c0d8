#include "manifest/chain.h"

namespace distd {

std::optional<ChainBreak> check_chain(const std::vector<const SignedManifest*>& run, uint64_t installed_version,
                                      const std::optional<Digest>& installed_digest) {
  for (size_t k = 1; k < run.size(); ++k) {
    const auto& a = *run[k - 1];
    const auto& b = *run[k];
    if (b.manifest.version == a.manifest.version + 1 &&
        (!b.manifest.previous || *b.manifest.previous != a.body_digest))
      return ChainBreak{b.manifest.version, a.manifest.version, false};
  }
  if (!installed_digest) return std::nullopt;
  for (const auto* m : run)
    if (m->manifest.version == installed_version + 1 &&
        (!m->manifest.previous || *m->manifest.previous != *installed_digest))
      return ChainBreak{m->manifest.version, installed_version, true};
  return std::nullopt;
}

}  // namespace distd
