#include "distd/hq/batch_stream.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "distd/hq/stored_zstd.h"

namespace distd::hq {

namespace {
constexpr size_t kChunk = 256 * 1024;
}  // namespace

std::optional<bool> object_compresses(int fd, const std::string& path, uint64_t size, bool forms_stored) {
  if (forms_stored && size >= kStoredZstdMin) {
    struct stat st {};
    return ::stat(zstd_form(path).c_str(), &st) == 0;
  }
  char head[64 * 1024];
  ssize_t n;
  do {
    n = ::pread(fd, head, sizeof head, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return std::nullopt;
  return n < 512 || looks_compressible(std::string_view(head, static_cast<size_t>(n)));
}

BatchStream::BatchStream(std::vector<std::pair<std::string, uint64_t>> files, int level, bool forms_stored)
    : files_(std::move(files)), level_(level), forms_stored_(forms_stored) {
  if (level_ > 0) zstd_.emplace(level_);
}

std::optional<std::string_view> BatchStream::next(size_t len) {
  while (index_ < files_.size() && in_file_ == files_[index_].second) {
    fd_ = UniqueFd();
    index_++;
    in_file_ = 0;
  }
  if (index_ == files_.size()) return std::string_view();
  auto& [path, size] = files_[index_];
  if (!fd_) {
    fd_ = UniqueFd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd_) return std::nullopt;
    if (zstd_ && !classify(*out_)) return std::nullopt;
  }
  if (buf_.empty()) buf_.resize(kChunk);
  size_t want = static_cast<size_t>(std::min<uint64_t>({len, buf_.size(), size - in_file_}));
  ssize_t n;
  do {
    n = ::pread(fd_.get(), buf_.data(), want, static_cast<off_t>(in_file_));
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return std::nullopt;
  in_file_ += static_cast<uint64_t>(n);
  return std::string_view(buf_.data(), static_cast<size_t>(n));
}

int BatchStream::pump(const ByteSink& out) {
  out_ = &out;
  auto chunk = next(kChunk);
  if (!chunk) return -1;
  if (chunk->empty()) {
    zstd_->finish(out);
    return 0;
  }
  zstd_->write(chunk->data(), chunk->size(), out);
  return 1;
}

// Before the first byte of a file: the frame its bytes go into. Compressible files share a
// frame at the batch's level; others go into a frame at level 1, which costs no time on photos
// and archives (level 19 spends 2 MB/s on them for nothing). A change of kind ends the frame
// (the decoder reads frames back to back). Publish already judged every object of
// kStoredZstdMin or more: it has a stored form exactly when it compresses. Smaller ones (and
// all, when HQ stores no forms) are judged here by their first bytes. false: the file cannot be
// read.
bool BatchStream::classify(const ByteSink& out) {
  const auto& [path, size] = files_[index_];
  // A file too small to judge joins the frame that is open (a small XML file among others).
  if (size < 512 && zstd_->in_frame()) return true;
  const std::optional<bool> c = object_compresses(fd_.get(), path, size, forms_stored_);
  if (!c) return false;
  const bool compressible = *c;
  if (zstd_->in_frame() && compressible == frame_compressible_) return true;
  if (zstd_->in_frame()) zstd_->finish(out);
  zstd_->set_level(compressible ? level_ : 1);
  frame_compressible_ = compressible;
  return true;
}

}  // namespace distd::hq
