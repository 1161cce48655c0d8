#include "distd/regional/installer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "manifest/beneath.h"
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

}  // namespace

uint32_t installed_mode(uint32_t signed_mode, FileModes policy) {
  if (policy == FileModes::as_signed) return signed_mode & 0777;
  return (signed_mode & 0111) ? 0755 : 0644;
}

Installer::Installer(std::string root, std::string staging_dir, FileModes modes)
    : root_(strip_slashes(std::move(root))), staging_(strip_slashes(std::move(staging_dir))), modes_(modes) {
  const bool own_staging = staging_ == root_ + "/" + std::string(kStagingDirName);  // the default
  if (!own_staging && (staging_.rfind(root_ + "/", 0) == 0 || staging_ == root_))
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
  check_renames_into_tree();
}

// One file system is not enough: systemd's ReadWritePaths= and StateDirectory= (under
// ProtectSystem=strict) bind-mount each path on its own, and rename() between two mounts of one
// file system fails with EXDEV. A probe file renamed from staging into the tree finds out before
// anything is downloaded.
void Installer::check_renames_into_tree() const {
  const std::string name = ".distd-rename-probe-" + std::to_string(::getpid());
  const std::string from = staging_ + "/" + name, to = root_ + "/" + name;
  UniqueFd fd(::open(from.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) throw_errno("cannot create a probe file in the staging directory", from, errno);
  fd = UniqueFd();
  const int err = try_rename(from, to);
  discard_file(err == 0 ? to : from);
  if (err == EXDEV)
    throw Error(Errc::usage,
                "files cannot be renamed from the staging directory '" + staging_ + "' into the channel's tree '" +
                    root_ + "' (EXDEV: two mounts, e.g. systemd's ReadWritePaths= bind mounts, of one file system)",
                "put [regional] staging_dir on the same mount as the tree: see docs/regional.md \"Staging and "
                "systemd's bind mounts\"");
  if (err != 0) throw_errno("cannot rename a probe file into the channel's tree", to, err);
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
    if (::fchmod(fd.get(), installed_mode(mode, modes_)) != 0) throw_errno("cannot chmod", staged_path, errno);
    sync_file(fd.get(), staged_path);
  }
  fault_point("before_install_rename");
  rename_into_tree(staged_path, root_, rel);  // checks rel (Error{unsafe_path})  // parents created, no link followed, directory fsynced
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
    if (::chmod(f.staged.c_str(), installed_mode(f.mode, modes_)) != 0) throw_errno("cannot chmod", f.staged, errno);
  sync_staging();  // content and modes durable before any rename
  for (const auto& f : files) {
    fault_point("before_install_rename");
    rename_into_tree(f.staged, root_, f.rel, /*sync=*/false);
    fault_point("after_install_rename");
  }
  sync_staging();  // same file system as the tree: every new directory and rename durable
}

bool Installer::stage_copy(const std::string& src_rel, const std::string& staged_path, const Digest& digest,
                           uint64_t size, bool sync) const {
  UniqueFd in = open_in_tree(src_rel);
  if (!in) return false;
  return copy_verified_fd(std::move(in), staged_path, digest, size, sync);
}

bool Installer::stage_copy_from(const std::string& other_root, const std::string& rel, const std::string& staged_path,
                                const Digest& digest, uint64_t size, bool sync) const {
  if (!unsafe_path_reason(rel).empty()) return false;
  UniqueFd in;
  try {
    in = open_file_beneath(strip_slashes(other_root), rel);
  } catch (const Error& e) {
    if (e.code() != Errc::unsafe_path && e.code() != Errc::not_found) throw;
  }
  if (!in) return false;
  return copy_verified_fd(std::move(in), staged_path, digest, size, sync);
}

bool Installer::copy_verified_fd(UniqueFd in, const std::string& staged_path, const Digest& digest, uint64_t size,
                                 bool sync) const {
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
  UniqueFd fd = open_in_tree(rel);
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || static_cast<uint64_t>(st.st_size) != size) return false;
  try {
    uint64_t n = 0;
    return digest_fd(fd.get(), final_path(rel), &n) == digest && n == size;
  } catch (const Error&) {
    return false;
  }
}

void Installer::remove(const std::string& rel) const { remove_beneath(root_, rel); }

UniqueFd Installer::open_in_tree(const std::string& rel) const {
  try {
    return open_file_beneath(root_, rel);
  } catch (const Error& e) {
    if (e.code() != Errc::unsafe_path || unsafe_path_reason(rel).empty()) return UniqueFd();  // a link on the way
    throw;  // rel itself is unsafe
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
