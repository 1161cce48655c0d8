#include "manifest/beneath.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "manifest/error.h"
#include "manifest/path.h"

namespace distd {

namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

UniqueFd open_root(const std::string& root) {
  UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw_errno("cannot open the tree", root, errno);
  return fd;
}

// Explains why openat(parent, name, O_NOFOLLOW | O_DIRECTORY) failed with err.
// `action` is what was refused ("install", "delete", "read").
[[noreturn]] void refuse_component(const std::string& root, const std::string& rel, int parent, const std::string& name,
                                   int err, std::string_view action) {
  std::string full = root + "/" + rel;
  struct stat st {};
  if ((err == ELOOP || err == ENOTDIR) && ::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode))
      throw Error(Errc::unsafe_path, "'" + full + "' is a symbolic link; refusing to " + std::string(action) + " through it",
                  "replace the link with a real directory (distd never follows links in the tree)");
    throw Error(Errc::io, "'" + full + "' is a file where the new version has a directory",
                "move it away and run the sync again");
  }
  if (err == ENOENT) throw Error(Errc::not_found, "'" + full + "' does not exist", "");
  throw_errno("cannot open directory", full, err);
}

}  // namespace

std::pair<std::string, std::string> split_parent(std::string_view rel) {
  size_t slash = rel.rfind('/');
  if (slash == std::string_view::npos) return {std::string(), std::string(rel)};
  return {std::string(rel.substr(0, slash)), std::string(rel.substr(slash + 1))};
}

TreeDir open_dir_beneath(const std::string& root, std::string_view rel_dir, bool create, bool sync,
                         std::string_view action) {
  if (!rel_dir.empty()) check_safe_path(rel_dir, "opening a directory in " + root);
  TreeDir cur{open_root(root), std::string()};
  size_t pos = 0;
  while (pos < rel_dir.size()) {
    size_t slash = rel_dir.find('/', pos);
    if (slash == std::string_view::npos) slash = rel_dir.size();
    std::string name(rel_dir.substr(pos, slash - pos));
    std::string rel(rel_dir.substr(0, slash));
    int fd = ::openat(cur.fd.get(), name.c_str(), kDirFlags);
    if (fd < 0 && errno == ENOENT && create) {
      int e = try_make_dir_at(cur.fd.get(), name, 0755);
      if (e != 0 && e != EEXIST) throw_errno("cannot create directory", root + "/" + rel, e);
      if (e == 0 && sync) sync_file(cur.fd.get(), root + (cur.rel.empty() ? "" : "/" + cur.rel));
      fd = ::openat(cur.fd.get(), name.c_str(), kDirFlags);
    }
    if (fd < 0) refuse_component(root, rel, cur.fd.get(), name, errno, action);
    cur = TreeDir{UniqueFd(fd), std::move(rel)};
    pos = slash + 1;
  }
  return cur;
}

UniqueFd open_file_beneath(const std::string& root, const std::string& rel) {
  check_safe_path(rel, "opening a file in " + root);
  auto [dir, leaf] = split_parent(rel);
  TreeDir d;
  try {
    d = open_dir_beneath(root, dir, false, false, "read");
  } catch (const Error& e) {
    if (e.code() == Errc::unsafe_path) throw;
    errno = e.code() == Errc::not_found ? ENOENT : ENOTDIR;
    return UniqueFd();
  }
  UniqueFd fd(::openat(d.fd.get(), leaf.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return fd;  // errno from openat (ELOOP for a link)
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    return UniqueFd();
  }
  int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl >= 0) (void)::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK);
  return fd;
}

void rename_into_tree(const std::string& from, const std::string& root, const std::string& rel, bool sync) {
  check_safe_path(rel, "installing into " + root);
  auto [dir, leaf] = split_parent(rel);
  TreeDir d = open_dir_beneath(root, dir, true, sync);
  std::string dst = root + "/" + rel;
  int e = try_rename_at(AT_FDCWD, from, d.fd.get(), leaf);
  if (e != 0) throw_errno("cannot rename into place", dst, e);
  if (sync) sync_file(d.fd.get(), dir_name(dst));
}

void remove_beneath(const std::string& root, const std::string& rel) {
  check_safe_path(rel, "deleting in " + root);
  auto [dir, leaf] = split_parent(rel);
  // The chain of open directories from the root down to rel's parent, for removing the ones
  // that become empty without ever naming them by path again.
  std::vector<TreeDir> chain;
  chain.push_back(TreeDir{open_root(root), std::string()});
  size_t pos = 0;
  while (pos < dir.size()) {
    size_t slash = dir.find('/', pos);
    if (slash == std::string::npos) slash = dir.size();
    std::string name = dir.substr(pos, slash - pos);
    std::string sub = dir.substr(0, slash);
    int fd = ::openat(chain.back().fd.get(), name.c_str(), kDirFlags);
    if (fd < 0) {
      if (errno == ENOENT) return;  // the parent is gone, so is the file
      refuse_component(root, sub, chain.back().fd.get(), name, errno, "delete");
    }
    chain.push_back(TreeDir{UniqueFd(fd), std::move(sub)});
    pos = slash + 1;
  }
  auto path_of = [&](const TreeDir& d) { return d.rel.empty() ? root : root + "/" + d.rel; };
  if (int e = try_remove_at(chain.back().fd.get(), leaf); e != 0 && e != ENOENT) {
    if (e == EISDIR) {
      throw Error(Errc::io, "'" + root + "/" + rel + "' is a directory where the manifest had a file",
                  "move it away; distd does not delete directories it did not create");
    }
    throw_errno("cannot delete", root + "/" + rel, e);
  }
  sync_file(chain.back().fd.get(), path_of(chain.back()));
  while (chain.size() > 1) {
    std::string name = split_parent(chain.back().rel).second;
    chain.pop_back();
    if (try_remove_at(chain.back().fd.get(), name, /*as_dir=*/true) != 0) break;  // not empty: stop
    sync_file(chain.back().fd.get(), path_of(chain.back()));
  }
}

}  // namespace distd
