#include "distd/hq/manifest_zstd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "distd/io/zstd_stream.h"
#include "manifest/error.h"
#include "manifest/fs.h"
#include "manifest/manifest.h"

namespace distd::hq {

std::shared_ptr<const std::string> CompressedManifests::get(const std::string& path) {
  if (level_ <= 0) return nullptr;
  try {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return nullptr;
    const int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    std::lock_guard<std::mutex> g(mu_);  // one compression per version, whoever asks first
    Entry& e = cache_[path];
    if (e.z && e.ino == st.st_ino && e.size == static_cast<uint64_t>(st.st_size) && e.mtime_ns == mtime_ns) return e.z;
    // (Publish replaces the file by a rename: bytes of a newer version under this stat are
    // harmless, the next request sees the new stat and compresses again.)
    std::string bytes = read_file(path, kMaxManifestBytes, "manifest");
    if (bytes.size() != static_cast<uint64_t>(st.st_size)) return nullptr;
    e.z = std::make_shared<const std::string>(zstd_compress(bytes, std::min(level_, 9)));
    e.ino = st.st_ino;
    e.size = bytes.size();
    e.mtime_ns = mtime_ns;
    return e.z;
  } catch (const Error&) {
    return nullptr;
  }
}

}  // namespace distd::hq
