// Path operations inside a tree that never leave it: every directory on the way is opened one
// component at a time with O_NOFOLLOW | O_DIRECTORY, starting from the tree's root, so a link
// planted anywhere in the tree (a file or a directory) is refused instead of followed. Install,
// delete, copy-from and delta-basis at the center all go through here (docs/security.md).
//
// rel is a manifest path (manifest/path.h rules: relative, no '..', '.', empty components);
// each function checks it again (Error{unsafe_path}).
#pragma once

#include <string>
#include <string_view>

#include "manifest/fs.h"

namespace distd {

// An open directory of the tree and the tree-relative path it was reached by ("" for the root).
struct TreeDir {
  UniqueFd fd;
  std::string rel;
};

// Opens the directory rel_dir ("" for the root itself) beneath root. With create, missing
// directories are made (mode 0755) and, with sync, each creation made durable (fsync of its
// parent). Throws Error{unsafe_path} when a component is a symbolic link, Error{io} when it is
// not a directory or cannot be opened; without create, a missing component is Error{not_found}.
// `action` names what is refused in the message ("refusing to install through it").
TreeDir open_dir_beneath(const std::string& root, std::string_view rel_dir, bool create, bool sync = true,
                         std::string_view action = "install");

// Opens the regular file rel beneath root read-only, following no link on the way (the last
// component included). Returns an invalid UniqueFd with errno set when it does not exist or is
// not a regular file (ELOOP for a link, ENOENT, EISDIR ...); throws Error{unsafe_path} for a bad rel.
UniqueFd open_file_beneath(const std::string& root, const std::string& rel);

// Renames the file `from` (any path, normally in the staging directory on the same file system)
// to rel beneath root, creating parent directories as open_dir_beneath(create) does. With sync,
// the directory that received it is fsynced. Throws Error{io,no_space,unsafe_path}.
void rename_into_tree(const std::string& from, const std::string& root, const std::string& rel, bool sync = true);

// Removes the file or link rel beneath root (absent, or a parent missing, is fine) and then each
// parent directory that became empty, up to (not including) root; every directory it changed is
// fsynced. A link on the way is Error{unsafe_path}: nothing outside the tree is touched.
void remove_beneath(const std::string& root, const std::string& rel);

// The directory part and the last component of rel ("a/b/c" -> "a/b", "c"; "c" -> "", "c").
std::pair<std::string, std::string> split_parent(std::string_view rel);

}  // namespace distd
