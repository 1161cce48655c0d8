#include "distd/bundle/manifest_delta.h"

#include "distd/delta/rsync.h"
#include "distd/io/zstd_stream.h"
#include "manifest/error.h"

namespace distd::bundle {

std::optional<std::string> manifest_delta_bytes(std::string_view basis, std::string_view target) {
  std::string z = zstd_patch(basis, target, kZstdDefaultLevel);
  if (z.size() * 10 > target.size() * 9) return std::nullopt;
  return z;
}

std::string apply_manifest_delta(std::string_view basis, std::string_view mdelta, bool patch, uint64_t target_size,
                                 const std::string& what) {
  if (patch) return zstd_unpatch(basis, mdelta, target_size, what);
  std::string delta = zstd_decompress(mdelta, delta_size_cap(target_size), what);
  try {
    return patch_bytes(basis, delta, target_size);
  } catch (const Error& e) {
    throw Error(Errc::mismatch, what + " does not apply to the installed manifest: " + e.what(),
                "copy the whole bundle again, or let the network sync bring the manifest");
  }
}

}  // namespace distd::bundle
