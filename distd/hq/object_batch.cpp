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

#include "distd/hq/batch_stream.h"
#include "manifest/digest.h"
#include "manifest/fs.h"

namespace distd::hq {

namespace {

void send_text(httplib::Response& res, int status, const std::string& text) {
  res.status = status;
  res.set_content(text + "\n", "text/plain; charset=utf-8");
}

bool accepts_zstd(const httplib::Request& req) {
  const std::string v = req.get_header_value("Accept-Encoding");
  return v.find("zstd") != std::string::npos;
}

}  // namespace

void serve_object_batch(const httplib::Request& req, httplib::Response& res, const Layout& layout, int zstd_level,
                        bool forms_stored) {
  if (req.body.empty() || req.body.size() % 32 != 0 || req.body.size() / 32 > kMaxBatchObjects)
    return send_text(res, 400, "POST /objects needs 1 to " + std::to_string(kMaxBatchObjects) +
                                   " raw 32-byte digests");
  std::vector<std::pair<std::string, uint64_t>> files;
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
    files.emplace_back(std::move(p), static_cast<uint64_t>(st.st_size));
    total += static_cast<uint64_t>(st.st_size);
  }
  const bool zstd = zstd_level > 0 && accepts_zstd(req);
  auto b = std::make_shared<BatchStream>(std::move(files), zstd ? zstd_level : 0, forms_stored);
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  if (total == 0) return res.set_content("", "application/octet-stream");
  if (zstd) {
    // One stream over every object: chunked, since its length is known only at its end.
    res.set_header("Content-Encoding", "zstd");
    res.set_chunked_content_provider(
        "application/octet-stream",
        [b](size_t, httplib::DataSink& sink) {
          bool ok = true;
          ByteSink out = [&](const char* p, size_t n) { ok = ok && sink.write(p, n); };
          const int r = b->pump(out);
          if (r < 0) return false;
          if (r == 0) sink.done();
          return ok;
        },
        [b](bool) { b->close(); });
    return;
  }
  res.set_content_provider(
      static_cast<size_t>(total), "application/octet-stream",
      [b](size_t, size_t len, httplib::DataSink& sink) {
        auto chunk = b->next(len);
        if (!chunk || chunk->empty()) return false;
        return sink.write(chunk->data(), chunk->size());
      },
      [b](bool) { b->close(); });
}

}  // namespace distd::hq
