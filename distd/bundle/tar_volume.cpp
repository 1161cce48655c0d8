#include "distd/bundle/tar_volume.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "manifest/fs.h"
#include "manifest/error.h"

namespace distd::bundle {

TarVolumeWriter::TarVolumeWriter(const std::string& path, int64_t mtime) : path_(path), mtime_(mtime) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw_errno("cannot create bundle volume", path, errno);
  a_ = archive_write_new();
  if (!a_) throw Error(Errc::internal, "archive_write_new failed");
  if (archive_write_set_format_ustar(a_) != ARCHIVE_OK || archive_write_set_bytes_per_block(a_, 256 * 1024) != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(a_, 1) != ARCHIVE_OK || archive_write_open_fd(a_, fd_) != ARCHIVE_OK)
    fail("cannot start");
}

TarVolumeWriter::~TarVolumeWriter() {
  if (a_) archive_write_free(a_);  // may write the end marker; harmless for an abandoned volume
  if (fd_ >= 0) ::close(fd_);
}

void TarVolumeWriter::fail(const char* what) {
  int err = a_ ? archive_errno(a_) : 0;
  std::string msg = a_ && archive_error_string(a_) ? archive_error_string(a_) : "unknown error";
  if (err == ENOSPC || err == EDQUOT)
    throw Error(Errc::no_space, "bundle volume " + path_ + ": the stick is full (" + msg + ")",
                "use a bigger stick or --max-size to make the bundle fit");
  throw Error(Errc::io, std::string("bundle volume ") + path_ + ": " + what + ": " + msg,
              "check the stick (was it pulled out?) and export again");
}

void TarVolumeWriter::begin(const std::string& name, uint64_t size) {
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_size(e, static_cast<la_int64_t>(size));
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_mtime(e, mtime_, 0);
  archive_entry_set_uid(e, 0);
  archive_entry_set_gid(e, 0);
  int r = archive_write_header(a_, e);
  archive_entry_free(e);
  if (r != ARCHIVE_OK) fail("cannot write a header");
}

void TarVolumeWriter::write(const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    la_ssize_t n = archive_write_data(a_, p, len);
    if (n <= 0) fail("cannot write");
    p += n;
    len -= static_cast<size_t>(n);
    unsynced_ += static_cast<uint64_t>(n);
  }
  if (unsynced_ >= kWritebackEvery) {
    // Start writing what is in the page cache to the stick now (asynchronously): the device
    // works while the next members are read and hashed, and close()'s fsync has little left.
    ::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
    unsynced_ = 0;
  }
}

void TarVolumeWriter::close() {
  if (archive_write_close(a_) != ARCHIVE_OK) fail("cannot finish");
  archive_write_free(a_);
  a_ = nullptr;
  sync_file(fd_, path_, "cannot fsync bundle volume");
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw_errno("cannot close bundle volume", path_, errno);
}

}  // namespace distd::bundle
