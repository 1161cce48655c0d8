#include "distd/course/mbz_archive.h"

#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <unordered_set>

#include "manifest/fs.h"
#include "manifest/error.h"
#include "manifest/path.h"

namespace distd::course {

const char* format_name(ArchiveFormat f) { return f == ArchiveFormat::zip ? "zip" : "tar.gz"; }

struct MbzReader::Names {
  std::unordered_set<std::string> files, dirs;
  std::unordered_set<std::string> parents;  // every directory some member lies in, listed or not
};

MbzReader::MbzReader(const std::string& path, uint64_t max_ratio)
    : path_(path), max_ratio_(max_ratio), names_(new Names) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT)
      throw Error(Errc::not_found, "course backup '" + path + "' does not exist", "check the path of the .mbz file");
    throw_errno("cannot open course backup", path, err);
  }
  unsigned char magic[4] = {0, 0, 0, 0};
  ssize_t got = ::read(fd, magic, sizeof magic);
  struct stat st {};
  if (::fstat(fd, &st) == 0) archive_size_ = static_cast<uint64_t>(st.st_size);
  ::close(fd);
  if (got >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    format_ = ArchiveFormat::tgz;
  } else if (got == 4 && magic[0] == 'P' && magic[1] == 'K' &&
             ((magic[2] == 3 && magic[3] == 4) || (magic[2] == 5 && magic[3] == 6))) {
    format_ = ArchiveFormat::zip;
  } else {
    delete names_;
    names_ = nullptr;
    throw Error(Errc::corrupt,
                "'" + path + "' is not a Moodle course backup: it is neither gzip (tar.gz) nor zip data" +
                    (got <= 0 ? " (the file is empty)" : ""),
                "give the .mbz file that Moodle's backup produced (Course > Backup, or admin/cli/backup.php)");
  }
  a_ = archive_read_new();
  if (format_ == ArchiveFormat::tgz) {
    archive_read_support_filter_gzip(a_);
    archive_read_support_format_tar(a_);
  } else {
    archive_read_support_format_zip_seekable(a_);
  }
  if (archive_read_open_filename(a_, path.c_str(), 256 * 1024) != ARCHIVE_OK) fail("cannot open it");
}

MbzReader::~MbzReader() {
  if (a_) archive_read_free(a_);
  delete names_;
}

void MbzReader::fail(const std::string& what) {
  std::string detail = a_ && archive_error_string(a_) ? archive_error_string(a_) : "unknown error";
  throw Error(Errc::corrupt,
              "course backup '" + path_ + "' (" + format_name(format_) + ") is damaged: " + what +
                  (current_.empty() ? "" : " (member " + quote_path(current_) + ")") + ": " + detail,
              "the file is truncated or corrupt; make the backup again (or copy it again) and retry");
}

bool MbzReader::next(MemberHeader* m) {
  struct archive_entry* e = nullptr;
  int r = archive_read_next_header(a_, &e);
  if (r == ARCHIVE_EOF) {
    current_.clear();
    return false;
  }
  if (r != ARCHIVE_OK && r != ARCHIVE_WARN) fail("cannot read the next member header");
  const char* name = archive_entry_pathname(e);
  std::string raw = name ? name : "";
  current_ = raw;
  const mode_t type = archive_entry_filetype(e);
  if (archive_entry_hardlink(e))
    throw Error(Errc::unsupported,
                "course backup '" + path_ + "' has a hard link member " + quote_path(raw) + " (to " +
                    quote_path(archive_entry_hardlink(e)) + "); Moodle never writes links, refusing the archive",
                "make the backup with Moodle itself; nothing was published");
  if (type != AE_IFREG && type != AE_IFDIR) {
    const char* kind = type == AE_IFLNK ? "symbolic link" : type == AE_IFCHR || type == AE_IFBLK ? "device"
                       : type == AE_IFIFO ? "FIFO" : type == AE_IFSOCK ? "socket" : "special file";
    throw Error(Errc::unsupported,
                "course backup '" + path_ + "' has a " + kind + " member " + quote_path(raw) +
                    "; a Moodle backup holds only files and directories, refusing the archive",
                "make the backup with Moodle itself; nothing was published");
  }
  std::string p = raw;
  if (type == AE_IFDIR)
    while (!p.empty() && p.back() == '/') p.pop_back();
  std::string why = unsafe_path_reason(p);
  if (!why.empty())
    throw Error(Errc::unsafe_path,
                "course backup '" + path_ + "' has an unsafe member path " + quote_path(raw) + ": " + why +
                    "; refusing the archive",
                "a Moodle backup never has such paths; the file was tampered with or made by another tool. "
                "Nothing was published");
  const bool dir = type == AE_IFDIR;
  if (names_->files.count(p) || names_->dirs.count(p)) {
    if (dir && names_->dirs.count(p)) {  // a repeated directory entry is harmless but pointless
      throw Error(Errc::unsafe_path, "course backup '" + path_ + "' lists directory " + quote_path(raw) + " twice",
                  "the archive is not one Moodle wrote; nothing was published");
    }
    throw Error(Errc::unsafe_path, "course backup '" + path_ + "' has two members named " + quote_path(p),
                "the archive is not one Moodle wrote; nothing was published");
  }
  // No member may sit below a file member, and no file may have the name of a directory seen
  // (listed, or implied by a member below it: "x/y" then "x").
  if (!dir && names_->parents.count(p))
    throw Error(Errc::unsafe_path,
                "course backup '" + path_ + "' has a file member " + quote_path(p) +
                    " with the name of a directory that holds earlier members",
                "the archive is not one Moodle wrote; nothing was published");
  for (size_t s = p.find('/'); s != std::string::npos; s = p.find('/', s + 1)) {
    if (names_->files.count(p.substr(0, s)))
      throw Error(Errc::unsafe_path,
                  "course backup '" + path_ + "' has member " + quote_path(p) + " below the file member " +
                      quote_path(p.substr(0, s)),
                  "the archive is not one Moodle wrote; nothing was published");
    names_->parents.insert(p.substr(0, s));
  }
  (dir ? names_->dirs : names_->files).insert(p);
  m->path = std::move(p);
  m->dir = dir;
  uint32_t perm = archive_entry_perm(e) & 0777;
  m->mode = perm ? perm : (dir ? 0755 : 0644);
  m->mtime = archive_entry_mtime_is_set(e) ? archive_entry_mtime(e) : 0;
  m->size = dir ? 0 : static_cast<uint64_t>(archive_entry_size(e) > 0 ? archive_entry_size(e) : 0);
  return true;
}

size_t MbzReader::read(void* buf, size_t n) {
  la_ssize_t r = archive_read_data(a_, buf, n);
  if (r < 0) fail("cannot read member data");
  expanded_ += static_cast<uint64_t>(r);
  const uint64_t limit = std::max(kExpansionFloor, max_ratio_ * archive_size_);
  if (expanded_ > limit)
    throw Error(Errc::unsupported,
                "course backup '" + path_ + "' (" + std::to_string(archive_size_) + " bytes) expands to more than " +
                    std::to_string(limit) + " bytes (member " + quote_path(current_) + "), over " +
                    std::to_string(max_ratio_) + " times its size: refusing it as an archive bomb",
                "nothing was published; if the backup is genuine, raise [hq] max_expansion_ratio");
  return static_cast<size_t>(r);
}

MbzWriter::MbzWriter(const std::string& path, ArchiveFormat format) : path_(path), format_(format) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw_errno("cannot create", path, errno);
  a_ = archive_write_new();
  int r;
  if (format == ArchiveFormat::tgz) {
    r = archive_write_add_filter_gzip(a_);
    if (r == ARCHIVE_OK) r = archive_write_set_format_pax_restricted(a_);  // ustar unless a name needs more
  } else {
    r = archive_write_set_format_zip(a_);
  }
  if (r == ARCHIVE_OK) r = archive_write_open_fd(a_, fd_);
  if (r != ARCHIVE_OK) fail("cannot start the archive");
}

MbzWriter::~MbzWriter() {
  if (a_) archive_write_free(a_);
  if (fd_ >= 0) ::close(fd_);
}

void MbzWriter::fail(const std::string& what) {
  std::string detail = a_ && archive_error_string(a_) ? archive_error_string(a_) : "unknown error";
  int err = a_ ? archive_errno(a_) : 0;
  if (err == ENOSPC || err == EDQUOT)
    throw Error(Errc::no_space, "disk full while writing '" + path_ + "': " + detail, "free space and run again");
  throw Error(Errc::io, "cannot write course backup '" + path_ + "': " + what + ": " + detail,
              "check the disk and the directory's permissions");
}

namespace {
struct EntryGuard {
  struct archive_entry* e = archive_entry_new();
  ~EntryGuard() { archive_entry_free(e); }
};
void fill(struct archive_entry* e, const MemberHeader& m, bool dir) {
  archive_entry_set_pathname(e, dir ? (m.path + "/").c_str() : m.path.c_str());
  archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
  archive_entry_set_perm(e, m.mode);
  archive_entry_set_mtime(e, m.mtime, 0);
  archive_entry_set_uid(e, 0);
  archive_entry_set_gid(e, 0);
  archive_entry_set_size(e, dir ? 0 : static_cast<la_int64_t>(m.size));
}
}  // namespace

void MbzWriter::add_dir(const MemberHeader& m) {
  EntryGuard g;
  fill(g.e, m, true);
  if (archive_write_header(a_, g.e) != ARCHIVE_OK) fail("cannot add directory " + quote_path(m.path));
}

void MbzWriter::begin_file(const MemberHeader& m) {
  EntryGuard g;
  fill(g.e, m, false);
  if (archive_write_header(a_, g.e) != ARCHIVE_OK) fail("cannot add member " + quote_path(m.path));
}

void MbzWriter::write(const void* data, size_t n) {
  if (n == 0) return;
  la_ssize_t r = archive_write_data(a_, data, n);
  if (r < 0 || static_cast<size_t>(r) != n) fail("cannot write member data");
}

void MbzWriter::finish() {
  if (archive_write_close(a_) != ARCHIVE_OK) fail("cannot finish the archive");
  sync_file(fd_, path_);
  if (::close(fd_) != 0) {
    fd_ = -1;
    throw_errno("cannot close", path_, errno);
  }
  fd_ = -1;
  finished_ = true;
}

}  // namespace distd::course
