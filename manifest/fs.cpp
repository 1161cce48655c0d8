#include "manifest/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <utility>

#include "manifest/error.h"
#include "manifest/fault.h"
#include "manifest/powercut.h"

namespace distd {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

std::optional<uint64_t> available_bytes(const std::string& path) {
  struct statvfs v {};
  if (::statvfs(path.c_str(), &v) != 0) return std::nullopt;
  return static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
}

std::string read_file(const std::string& path, uint64_t max_size, std::string_view what) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("cannot open " + std::string(what), path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat", path, errno);
  if (static_cast<uint64_t>(st.st_size) > max_size)
    throw Error(Errc::corrupt, std::string(what) + " '" + path + "' is " + std::to_string(st.st_size) +
                                   " bytes, more than the limit of " + std::to_string(max_size),
                "this is not a valid " + std::string(what) + "; fetch it again from a trusted source");
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read", path, errno);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

void write_all(int fd, std::string_view data, std::string_view path_for_errors) {
  powercut::before_write(fd);
  while (!data.empty()) {
    fault_point("write");
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write", path_for_errors, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string dir_name(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return out;
    throw_errno("cannot list directory", dir, errno);
  }
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(std::move(n));
  }
  ::closedir(d);
  return out;
}

void remove_tree(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  std::vector<std::pair<std::string, bool>> names;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    names.emplace_back(n, e->d_type == DT_DIR);
  }
  ::closedir(d);
  for (auto& [n, is_dir] : names) {
    std::string p = dir + "/" + n;
    if (is_dir) remove_tree(p);
    else ::unlink(p.c_str());
  }
  ::rmdir(dir.c_str());
}

void fsync_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw_errno("cannot open directory", dir, errno);
  if (::fsync(fd.get()) != 0 && errno != EINVAL) throw_errno("cannot fsync directory", dir, errno);
  powercut::synced(fd.get());
}

void sync_file(int fd, std::string_view path, std::string_view what) {
  if (::fsync(fd) != 0) throw_errno(what, path, errno);
  powercut::synced(fd);
}

void sync_filesystem(int fd, std::string_view path, std::string_view what) {
  if (::syncfs(fd) != 0) throw_errno(what, path, errno);
  powercut::synced_filesystem(fd);
}

void rename_file(const std::string& from, const std::string& to, std::string_view what,
                 std::string_view path_for_errors) {
  powercut::Pending p = powercut::before_replace(AT_FDCWD, to);
  int err = ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
  powercut::after_rename(std::move(p), AT_FDCWD, from, AT_FDCWD, to, err);
  if (err != 0) throw_errno(what, path_for_errors, err);
}

int try_rename(const std::string& from, const std::string& to) {
  powercut::Pending p = powercut::before_replace(AT_FDCWD, to);
  int err = ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
  powercut::after_rename(std::move(p), AT_FDCWD, from, AT_FDCWD, to, err);
  return err;
}

int try_sync_file(int fd) {
  if (::fsync(fd) != 0) return errno;
  powercut::synced(fd);
  return 0;
}

int try_remove_file(const std::string& path) {
  powercut::Pending p = powercut::before_replace(AT_FDCWD, path);
  int err = ::unlink(path.c_str()) == 0 ? 0 : errno;
  powercut::after_remove(std::move(p), AT_FDCWD, path, false, err);
  return err;
}

void discard_file(const std::string& path) noexcept { (void)::unlink(path.c_str()); }

int try_remove_dir(const std::string& path) {
  powercut::Pending p = powercut::on() ? powercut::Pending{"", true} : powercut::Pending{};
  int err = ::rmdir(path.c_str()) == 0 ? 0 : errno;
  powercut::after_remove(std::move(p), AT_FDCWD, path, true, err);
  return err;
}

void write_file_atomic(const std::string& path, std::string_view data, unsigned mode) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(rng() % 1000000);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd) throw_errno("cannot create", tmp, errno);
  powercut::created(AT_FDCWD, tmp, false);
  try {
    write_all(fd.get(), data, tmp);
    if (::fchmod(fd.get(), mode) != 0) throw_errno("cannot chmod", tmp, errno);
    sync_file(fd.get(), tmp);
    fd = UniqueFd();
    fault_point("before_rename");
    rename_file(tmp, path, "cannot rename into", path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  fsync_dir(dir_name(path));
}

void make_dirs(const std::string& path, unsigned mode) {
  if (path.empty()) return;
  std::string cur;
  size_t i = 0;
  while (i <= path.size()) {
    size_t next = path.find('/', i);
    if (next == std::string::npos) next = path.size();
    cur = path.substr(0, next);
    if (!cur.empty() && ::mkdir(cur.c_str(), mode) == 0) {
      powercut::created(AT_FDCWD, cur, true);
      fsync_dir(dir_name(cur));  // the new entry is durable only once its parent is synced
    } else if (!cur.empty() && errno != EEXIST) {
      throw_errno("cannot create directory", cur, errno);
    }
    i = next + 1;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw Error(Errc::io, "'" + path + "' exists but is not a directory", "move it away or pick another path");
}

int try_rename_at(int from_dir, const std::string& from, int to_dir, const std::string& to) {
  powercut::Pending p = powercut::before_replace(to_dir, to);
  int err = ::renameat(from_dir, from.c_str(), to_dir, to.c_str()) == 0 ? 0 : errno;
  powercut::after_rename(std::move(p), from_dir, from, to_dir, to, err);
  return err;
}

int try_remove_at(int dir, const std::string& name, bool as_dir) {
  powercut::Pending p = !as_dir ? powercut::before_replace(dir, name)
                                : powercut::on() ? powercut::Pending{"", true} : powercut::Pending{};
  int err = ::unlinkat(dir, name.c_str(), as_dir ? AT_REMOVEDIR : 0) == 0 ? 0 : errno;
  powercut::after_remove(std::move(p), dir, name, as_dir, err);
  return err;
}

int try_make_dir_at(int dir, const std::string& name, unsigned mode) {
  if (::mkdirat(dir, name.c_str(), mode) != 0) return errno;
  powercut::created(dir, name, true);
  return 0;
}

}  // namespace distd
