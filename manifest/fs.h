// The file-system seam: every durable write in distd goes through these few functions, so the
// crash-safety rules live in one place and tests can inject faults (see fault.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace distd {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  int release() { int f = fd_; fd_ = -1; return f; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Reads a whole file. Throws Error{corrupt} when it is larger than max_size bytes
// (naming `what`, e.g. "manifest"), Error{io,not_found} when it cannot be read.
std::string read_file(const std::string& path, uint64_t max_size, std::string_view what = "file");

// Bytes this user may still write on the file system holding path (statvfs f_bavail); none
// when it cannot be measured (errno set).
std::optional<uint64_t> available_bytes(const std::string& path);

// Writes data to path atomically and durably: a temporary file in the same directory, fsync,
// rename over path, fsync of the directory. Readers see the old or the new content, never a mix.
void write_file_atomic(const std::string& path, std::string_view data, unsigned mode = 0644);

// Writes all of data to fd at its current offset; throws on failure (ENOSPC -> Errc::no_space).
void write_all(int fd, std::string_view data, std::string_view path_for_errors);

// fsync(2) a directory so that renames and creations in it survive a power cut.
void fsync_dir(const std::string& dir);

// The raw durable-write calls, in one place (.ci/check-file-seam keeps every other file from
// making them), so that a test can make the process forget what they did not make durable
// (DISTD_FAULT=powercut, manifest/powercut.h: each of them reports to that log while it is on).
// Each throws Error{io or no_space} "<what> '<path>': <strerror>" on failure.
//
// fsync(2) of an open file; path names it in the error.
void sync_file(int fd, std::string_view path, std::string_view what = "cannot fsync");
// syncfs(2): every dirty page of the file system that holds fd (one flush for many files).
void sync_filesystem(int fd, std::string_view path, std::string_view what = "cannot sync the file system of");
// rename(2) from -> to; the error is "<what> '<path_for_errors>': <strerror>".
void rename_file(const std::string& from, const std::string& to, std::string_view what,
                 std::string_view path_for_errors);
// rename(2) without throwing: 0 on success, else the errno (for callers that fall back).
[[nodiscard]] int try_rename(const std::string& from, const std::string& to);
// fsync(2) without throwing: 0 on success, else the errno.
[[nodiscard]] int try_sync_file(int fd);
// unlink(2) of a file or a link (never its target); 0 on success, else the errno (ENOENT included,
// so a caller decides whether "already gone" is fine). Not durable until the directory is synced.
[[nodiscard]] int try_remove_file(const std::string& path);
// unlink(2), best effort, for temporaries whose leftover is harmless (the next run removes it).
void discard_file(const std::string& path) noexcept;
// rmdir(2) of an empty directory; 0 on success, else the errno (ENOTEMPTY when it is not empty).
[[nodiscard]] int try_remove_dir(const std::string& path);

// mkdir -p with the given mode for directories it creates; each one it creates is durable on
// return (its parent is fsynced), so what is later made durable inside it cannot vanish with it.
void make_dirs(const std::string& path, unsigned mode = 0755);

// The names in a directory (no "." or ".."), unsorted; empty when it does not exist. Throws
// Error{io} naming the directory when it cannot be read.
std::vector<std::string> list_dir(const std::string& dir);

// Removes a directory tree, best effort (temporary trees): links are removed, never followed.
void remove_tree(const std::string& dir);

// The directory part of a path ("." when there is none).
std::string dir_name(const std::string& path);

// The same calls relative to open directories (manifest/beneath.h walks a tree with them, one
// component at a time, so that no path operation in a tree can follow a planted link out of it).
// Each returns 0 on success, else the errno.
[[nodiscard]] int try_rename_at(int from_dir, const std::string& from, int to_dir, const std::string& to);
// unlinkat(2); as_dir removes an empty directory (AT_REMOVEDIR).
[[nodiscard]] int try_remove_at(int dir, const std::string& name, bool as_dir = false);
// mkdirat(2); not durable until dir is synced (sync_file on its descriptor).
[[nodiscard]] int try_make_dir_at(int dir, const std::string& name, unsigned mode = 0755);

}  // namespace distd
