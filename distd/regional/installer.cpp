#include "distd/regional/installer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "manifest/digest.h"
#include "manifest/error.h"
#include "manifest/fault.h"
#include "manifest/fs.h"
#include "manifest/path.h"

namespace distd {

namespace {

std::string strip_slashes(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

// Creates the parent directories of rel below root, refusing any component that is a symlink
// or not a directory (a link planted in the tree must not redirect an install).
void make_parents(const std::string& root, const std::string& rel, bool sync = true) {
  size_t pos = 0;
  std::string cur = root;
  for (;;) {
    size_t slash = rel.find('/', pos);
    if (slash == std::string::npos) return;
    cur = root + "/" + rel.substr(0, slash);
    struct stat st {};
    if (::lstat(cur.c_str(), &st) == 0) {
      if (S_ISLNK(st.st_mode))
        throw Error(Errc::unsafe_path, "'" + cur + "' is a symbolic link; refusing to install through it",
                    "replace the link with a real directory (distd never follows links in the tree)");
      if (!S_ISDIR(st.st_mode))
        throw Error(Errc::io, "'" + cur + "' is a file where the new version has a directory",
                    "move it away and run the sync again");
    } else if (errno == ENOENT) {
      if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) throw_errno("cannot create directory", cur, errno);
      if (sync) fsync_dir(dir_name(cur));
    } else {
      throw_errno("cannot stat", cur, errno);
    }
    pos = slash + 1;
  }
}

}  // namespace

Installer::Installer(std::string root, std::string staging_dir)
    : root_(strip_slashes(std::move(root))), staging_(strip_slashes(std::move(staging_dir))) {
  if (staging_.rfind(root_ + "/", 0) == 0 || staging_ == root_)
    throw Error(Errc::usage, "the staging directory '" + staging_ + "' lies inside the channel's tree '" + root_ + "'",
                "set [regional] staging_dir to a directory outside the tree, on the same file system");
  make_dirs(root_);
  make_dirs(staging_, 0700);
  struct stat a {}, b {};
  if (::stat(root_.c_str(), &a) != 0) throw_errno("cannot stat", root_, errno);
  if (::stat(staging_.c_str(), &b) != 0) throw_errno("cannot stat", staging_, errno);
  if (a.st_dev != b.st_dev)
    throw Error(Errc::usage,
                "the staging directory '" + staging_ + "' is on another file system than the channel's tree '" +
                    root_ + "'; files could not be renamed into place atomically",
                "set [regional] staging_dir to a directory on the same file system as '" + root_ + "'");
}

void Installer::verify(const std::string& staged_path, const Digest& digest, uint64_t size,
                       const std::string& what) const {
  UniqueFd fd(::open(staged_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) throw_errno("cannot open staged file", staged_path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat", staged_path, errno);
  if (static_cast<uint64_t>(st.st_size) != size)
    throw Error(Errc::mismatch,
                "'" + what + "': received " + std::to_string(st.st_size) + " bytes, the manifest signs " +
                    std::to_string(size),
                "the bytes are discarded and fetched again");
  uint64_t n = 0;
  Digest d = digest_fd(fd.get(), staged_path, &n);
  if (n != size || d != digest)
    throw Error(Errc::mismatch,
                "'" + what + "': the received bytes do not match the signed digest (got " + digest_hex(d).substr(0, 16) +
                    "..., signed " + digest_hex(digest).substr(0, 16) + "...)",
                "the bytes are discarded and fetched again; if this repeats, HQ's copy is damaged: republish there");
}

std::string Installer::final_path(const std::string& rel) const {
  check_safe_path(rel, "installing into " + root_);
  return root_ + "/" + rel;
}

void Installer::install(const std::string& staged_path, const std::string& rel, uint32_t mode) const {
  {
    UniqueFd fd(::open(staged_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) throw_errno("cannot open staged file", staged_path, errno);
    if (::fchmod(fd.get(), mode & 07777) != 0) throw_errno("cannot chmod", staged_path, errno);
    sync_file(fd.get(), staged_path);
  }
  make_parents(root_, rel);
  std::string dst = final_path(rel);
  fault_point("before_install_rename");
  rename_file(staged_path, dst, "cannot rename into place", dst);
  fsync_dir(dir_name(dst));
  fsync_dir(staging_);
  fault_point("after_install_rename");
}

void Installer::sync_staging() const {
  UniqueFd fd(::open(staging_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw_errno("cannot open", staging_, errno);
  sync_filesystem(fd.get(), staging_);
}

void Installer::install_many(const std::vector<Staged>& files) const {
  if (files.empty()) return;
  for (const auto& f : files)
    if (::chmod(f.staged.c_str(), f.mode & 07777) != 0) throw_errno("cannot chmod", f.staged, errno);
  sync_staging();  // content and modes durable before any rename
  for (const auto& f : files) {
    make_parents(root_, f.rel, false);
    std::string dst = final_path(f.rel);
    fault_point("before_install_rename");
    rename_file(f.staged, dst, "cannot rename into place", dst);
    fault_point("after_install_rename");
  }
  sync_staging();  // same file system as the tree: every new directory and rename durable
}

bool Installer::stage_copy(const std::string& src_rel, const std::string& staged_path, const Digest& digest,
                           uint64_t size, bool sync) const {
  std::string src = final_path(src_rel);
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!in) return false;
  UniqueFd out(::open(staged_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out) throw_errno("cannot create staged file", staged_path, errno);
  Hasher h;
  uint64_t total = 0;
  std::vector<char> buf(256 * 1024);
  bool ok = true;
  for (;;) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size + 1 - total));
    if (want == 0) {
      ok = false;  // longer than signed
      break;
    }
    ssize_t n = ::read(in.get(), buf.data(), want);
    if (n < 0) {
      if (errno == EINTR) continue;
      ok = false;
      break;
    }
    if (n == 0) break;
    write_all(out.get(), std::string_view(buf.data(), static_cast<size_t>(n)), staged_path);
    h.update(buf.data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  if (ok && total == size && h.finish() == digest) {
    if (sync) sync_file(out.get(), staged_path);
    return true;
  }
  discard_file(staged_path);
  return false;
}

bool Installer::final_matches(const std::string& rel, const Digest& digest, uint64_t size) const {
  std::string p = final_path(rel);
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != size)
    return false;
  try {
    uint64_t n = 0;
    return digest_file(p, &n) == digest && n == size;
  } catch (const Error&) {
    return false;
  }
}

void Installer::remove(const std::string& rel) const {
  std::string p = final_path(rel);
  if (int e = try_remove_file(p); e != 0 && e != ENOENT) throw_errno("cannot delete", p, e);
  std::string dir = dir_name(p);
  fsync_dir(dir);
  while (dir.size() > root_.size() && dir.rfind(root_ + "/", 0) == 0) {
    if (try_remove_dir(dir) != 0) break;  // not empty (or not ours): stop
    dir = dir_name(dir);
    fsync_dir(dir);
  }
}

void Installer::clean_staging(const std::vector<std::string>& keep) const {
  DIR* d = ::opendir(staging_.c_str());
  if (!d) return;
  std::vector<std::string> doomed;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (std::find(keep.begin(), keep.end(), name) == keep.end()) doomed.push_back(name);
  }
  ::closedir(d);
  for (auto& n : doomed) discard_file(staging_ + "/" + n);
}

}  // namespace distd
