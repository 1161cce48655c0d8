#include "distd/hq/stored_zstd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <thread>
#include <vector>

#include "distd/hq/layout.h"
#include "distd/io/zstd_stream.h"
#include "manifest/error.h"
#include "manifest/fault.h"
#include "manifest/fs.h"

namespace distd::hq {

namespace {

constexpr size_t kReadChunk = 1 << 20;
constexpr size_t kProbeBytes = 128 * 1024;

size_t read_some(int fd, char* buf, size_t n, const std::string& path) {
  for (;;) {
    ssize_t got = ::read(fd, buf, n);
    if (got >= 0) return static_cast<size_t>(got);
    if (errno != EINTR) throw_errno("cannot read", path, errno);
  }
}

}  // namespace

uint64_t store_zstd_form(const std::string& path, uint64_t size, int level, uint64_t min_size) {
  if (level <= 0 || size < min_size || size < 512) return 0;
  UniqueFd in(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in) throw_errno("cannot open", path, errno);
  std::vector<char> buf(kReadChunk);
  size_t head = read_some(in.get(), buf.data(), kProbeBytes, path);
  if (!looks_compressible(std::string_view(buf.data(), head))) return 0;  // photos, videos, archives

  const std::string form = zstd_form(path), dir = dir_name(form);
  const std::string tmp = store_temp(dir, form.substr(dir.size() + 1));
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!out) throw_errno("cannot create", tmp, errno);
  const uint64_t worth = size - size / 16;  // keep the form only when it saves 1/16
  uint64_t written = 0;
  bool pays = true;
  try {
    const unsigned cores = std::thread::hardware_concurrency();
    ZstdEncoder enc(level, size >= (uint64_t(8) << 20) && cores > 1 ? static_cast<int>(cores) : 0, size);
    ByteSink sink = [&](const char* p, size_t n) {
      written += n;
      if (written > worth) {
        pays = false;
        return;
      }
      write_all(out.get(), std::string_view(p, n), tmp);
    };
    size_t n = head;
    uint64_t total = 0;
    while (n > 0 && pays) {
      if (total + n > size) break;  // longer than stored: reported below
      enc.write(buf.data(), n, sink);
      total += n;
      n = read_some(in.get(), buf.data(), buf.size(), path);
    }
    if (pays && total != size)
      throw Error(Errc::mismatch, "object '" + path + "' has " + std::to_string(total) + " bytes, not " +
                                      std::to_string(size), "nothing was published; publish again");
    if (pays) enc.finish(sink);
    if (!pays) {
      out = UniqueFd();
      discard_file(tmp);
      return 0;
    }
    sync_file(out.get(), tmp);
    out = UniqueFd();
    fault_point("zstd_form_before_rename");
    rename_file(tmp, zstd_form(path), "cannot rename into", zstd_form(path));
  } catch (...) {
    out = UniqueFd();
    discard_file(tmp);
    throw;
  }
  return written;
}

}  // namespace distd::hq
