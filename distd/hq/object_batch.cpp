#include "distd/hq/object_batch.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "distd/hq/stored_zstd.h"
#include "distd/io/zstd_stream.h"
#include "manifest/digest.h"
#include "manifest/fs.h"

namespace distd::hq {

namespace {

constexpr size_t kSendChunk = 256 * 1024;

void send_text(httplib::Response& res, int status, const std::string& text) {
  res.status = status;
  res.set_content(text + "\n", "text/plain; charset=utf-8");
}

bool accepts_zstd(const httplib::Request& req) {
  const std::string v = req.get_header_value("Accept-Encoding");
  return v.find("zstd") != std::string::npos;
}

// The objects of one answer, read one after the other from the store.
struct Batch {
  std::vector<std::pair<std::string, uint64_t>> files;  // path, size
  size_t index = 0;      // file being read
  uint64_t in_file = 0;  // bytes of it read
  UniqueFd fd;
  std::vector<char> buf;
  std::optional<ZstdEncoder> zstd;
  int level = 0;                 // of the batch's compressible objects
  bool frame_compressible = false;  // what the open frame holds

  // The next bytes of the concatenation (empty at its end), at most len. nullopt: a file was
  // removed or truncated under us (the connection is then aborted).
  std::optional<std::string_view> next(size_t len) {
    while (index < files.size() && in_file == files[index].second) {
      fd = UniqueFd();
      index++;
      in_file = 0;
    }
    if (index == files.size()) return std::string_view();
    auto& [path, size] = files[index];
    if (!fd) {
      fd = UniqueFd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) return std::nullopt;
      if (zstd && !classify()) return std::nullopt;
    }
    if (buf.empty()) buf.resize(kSendChunk);
    size_t want = static_cast<size_t>(std::min<uint64_t>({len, buf.size(), size - in_file}));
    ssize_t n;
    do {
      n = ::pread(fd.get(), buf.data(), want, static_cast<off_t>(in_file));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return std::nullopt;
    in_file += static_cast<uint64_t>(n);
    return std::string_view(buf.data(), static_cast<size_t>(n));
  }

  // Before the first byte of a file: the frame its bytes go into. Compressible files share a
  // frame at the batch's level; others go into a frame at level 1, which costs no time on
  // photos and archives (level 19 spends 2 MB/s on them for nothing). A change of kind ends the
  // frame (the decoder reads frames back to back). Publish already judged every object of
  // kStoredZstdMin or more: it has a stored form exactly when it compresses. Smaller ones (and
  // all, when HQ stores no forms) are judged here by their first bytes. false: the file cannot
  // be read.
  bool classify() {
    const auto& [path, size] = files[index];
    bool compressible = false;
    if (forms_stored && size >= kStoredZstdMin) {
      struct stat st {};
      compressible = ::stat(zstd_form(path).c_str(), &st) == 0;
    } else {
      char head[64 * 1024];
      ssize_t n;
      do {
        n = ::pread(fd.get(), head, sizeof head, 0);
      } while (n < 0 && errno == EINTR);
      if (n < 0) return false;
      // A file too small to judge joins the frame that is open (a small XML file among others).
      if (n < 512 && zstd->in_frame()) return true;
      compressible = n < 512 || looks_compressible(std::string_view(head, static_cast<size_t>(n)));
    }
    if (zstd->in_frame() && compressible == frame_compressible) return true;
    if (zstd->in_frame()) zstd->finish(*out);
    zstd->set_level(compressible ? level : 1);
    frame_compressible = compressible;
    return true;
  }
  bool forms_stored = false;      // HQ stores zstd forms (its compression_level > 0)
  const ByteSink* out = nullptr;  // where finish() of a frame hands its last bytes
};

}  // namespace

void serve_object_batch(const httplib::Request& req, httplib::Response& res, const Layout& layout, int zstd_level,
                        bool forms_stored) {
  if (req.body.empty() || req.body.size() % 32 != 0 || req.body.size() / 32 > kMaxBatchObjects)
    return send_text(res, 400, "POST /objects needs 1 to " + std::to_string(kMaxBatchObjects) +
                                   " raw 32-byte digests");
  auto b = std::make_shared<Batch>();
  uint64_t total = 0;
  std::set<std::string_view> seen;
  for (size_t i = 0; i < req.body.size(); i += 32) {
    Digest d{};
    std::memcpy(d.data(), req.body.data() + i, 32);
    if (!seen.insert(std::string_view(req.body).substr(i, 32)).second)
      return send_text(res, 400, "POST /objects lists object " + digest_hex(d) + " twice; ask for each object once");
    std::string p = layout.object(d);
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      return send_text(res, 404, "object " + digest_hex(d) + " not found");
    b->files.emplace_back(std::move(p), static_cast<uint64_t>(st.st_size));
    total += static_cast<uint64_t>(st.st_size);
  }
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  if (total == 0) return res.set_content("", "application/octet-stream");
  if (zstd_level > 0 && accepts_zstd(req)) {
    // One stream over every object: chunked, since its length is known only at its end.
    b->zstd.emplace(zstd_level);
    b->level = zstd_level;
    b->forms_stored = forms_stored;
    res.set_header("Content-Encoding", "zstd");
    res.set_chunked_content_provider(
        "application/octet-stream",
        [b](size_t, httplib::DataSink& sink) {
          bool ok = true;
          ByteSink out = [&](const char* p, size_t n) { ok = ok && sink.write(p, n); };
          b->out = &out;
          auto chunk = b->next(kSendChunk);
          if (!chunk) return false;
          if (chunk->empty()) {
            b->zstd->finish(out);
            sink.done();
            return ok;
          }
          b->zstd->write(chunk->data(), chunk->size(), out);
          return ok;
        },
        [b](bool) { b->fd = UniqueFd(); });
    return;
  }
  res.set_content_provider(
      static_cast<size_t>(total), "application/octet-stream",
      [b](size_t, size_t len, httplib::DataSink& sink) {
        auto chunk = b->next(len);
        if (!chunk || chunk->empty()) return false;
        return sink.write(chunk->data(), chunk->size());
      },
      [b](bool) { b->fd = UniqueFd(); });
}

}  // namespace distd::hq
