// Reading and writing Moodle course backups (.mbz) with libarchive: a gzip'ed ustar tar (Moodle's
// default, lib/filestorage/tgz_packer.php) or a zip ($CFG->usezipbackups), told apart by their
// first bytes, never by the file name (Moodle's own mbz_packer does the same).
//
// The reader refuses what must never reach a course tree: links (symbolic or hard), devices,
// FIFOs, sockets, unsafe member paths (manifest/path.h rules: absolute, "..", "." or empty
// components, NUL) and duplicate names. A damaged stream (truncated, bad gzip, bad zip
// directory) is Error{corrupt} naming the archive and the member it broke in.
#pragma once

#include <archive.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace distd::course {

enum class ArchiveFormat { tgz, zip };
const char* format_name(ArchiveFormat f);  // "tar.gz", "zip"

// One member as it appears in the archive.
struct MemberHeader {
  std::string path;   // safe relative path, without the trailing '/' of a directory
  bool dir = false;
  uint32_t mode = 0644;  // permission bits (0644 / 0755 when the archive gives none)
  int64_t mtime = 0;
  uint64_t size = 0;     // as the header says (0 for directories); read() is authoritative
};

// However small a backup, its members may add up to this much (a course of a few KiB of XML
// legitimately expands far beyond any ratio).
constexpr uint64_t kExpansionFloor = uint64_t(64) << 20;

class MbzReader {
 public:
  // Opens path and detects the format from its first bytes. Throws Error{not_found, io} when it
  // cannot be read, Error{corrupt} when it is neither gzip nor zip.
  // The members may add up to at most max(max_ratio x the archive's size, kExpansionFloor)
  // bytes; read() throws Error{unsupported} past that (a zip or gzip bomb).
  explicit MbzReader(const std::string& path, uint64_t max_ratio = 100);
  ~MbzReader();
  MbzReader(const MbzReader&) = delete;
  MbzReader& operator=(const MbzReader&) = delete;

  ArchiveFormat format() const { return format_; }
  uint64_t archive_size() const { return archive_size_; }
  // Advances to the next member. Returns false at the clean end of the archive. Throws
  // Error{corrupt} (damaged), Error{unsafe_path} (bad path, duplicate), Error{unsupported}
  // (link, device, ...).
  bool next(MemberHeader* m);
  // Reads up to n bytes of the current member; 0 at its end. Throws Error{corrupt}.
  size_t read(void* buf, size_t n);

 private:
  [[noreturn]] void fail(const std::string& what);
  std::string path_;
  ArchiveFormat format_ = ArchiveFormat::tgz;
  uint64_t archive_size_ = 0;
  uint64_t max_ratio_ = 100, expanded_ = 0;
  struct archive* a_ = nullptr;
  std::string current_;
  struct Names;
  Names* names_ = nullptr;
};

// Writes an archive of the given format; members are added in order. The file at path is
// created (truncated); callers write to a temporary name and rename after finish().
class MbzWriter {
 public:
  MbzWriter(const std::string& path, ArchiveFormat format);
  ~MbzWriter();
  MbzWriter(const MbzWriter&) = delete;
  MbzWriter& operator=(const MbzWriter&) = delete;
  void add_dir(const MemberHeader& m);
  // Starts a regular file of m.size bytes; then write() exactly that many bytes.
  void begin_file(const MemberHeader& m);
  void write(const void* data, size_t n);
  // Flushes and closes the archive; fsyncs the file. Throws on any failure.
  void finish();

 private:
  [[noreturn]] void fail(const std::string& what);
  std::string path_;
  ArchiveFormat format_;
  struct archive* a_ = nullptr;
  int fd_ = -1;
  bool finished_ = false;
};

}  // namespace distd::course
