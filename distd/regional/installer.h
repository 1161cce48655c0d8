// The installer: the only code that puts files at their final paths in a channel's tree.
//
// Contract: a file appears at its final path only after its staged copy verified (exact signed
// size, BLAKE2b-256), got its mode and was fsynced; the rename is followed by an fsync of the
// directory. Staging lives on the same file system as the tree, so the rename is atomic.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "manifest/digest.h"
#include "manifest/fs.h"

namespace distd {

// Which mode an installed file gets from the mode HQ signed ([regional] file_modes, docs/config.md).
enum class FileModes {
  safe,       // 0755 when HQ's mode has any execute bit, else 0644 (the default)
  as_signed,  // HQ's permission bits (& 0777)
};
// The mode a file signed with `signed_mode` is installed with. Never setuid, setgid or sticky.
uint32_t installed_mode(uint32_t signed_mode, FileModes policy);

class Installer {
 public:
  // Creates root and staging_dir when missing; throws Error{usage} when they are on different
  // file systems or when staging_dir lies inside root. Every install applies `modes` to the
  // mode it is given.
  Installer(std::string root, std::string staging_dir, FileModes modes = FileModes::safe);

  const std::string& root() const { return root_; }
  const std::string& staging() const { return staging_; }
  FileModes modes() const { return modes_; }
  std::string staged(const std::string& name) const { return staging_ + "/" + name; }
  // The final path of rel in the tree. Throws Error{unsafe_path} when rel could leave the tree
  // ('..', an absolute path, an empty component: manifest/path.h); every method below that takes
  // a rel goes through it, so no caller can install, copy from or remove outside the tree.
  std::string final_path(const std::string& rel) const;

  // Checks that the staged file has exactly `size` bytes and `digest` (reading no further than
  // size). Throws Error{mismatch} naming `what` (the entry's path) otherwise.
  void verify(const std::string& staged_path, const Digest& digest, uint64_t size, const std::string& what) const;

  // Sets mode, fsyncs, creates parent directories (refusing symlinked ones: every component is
  // opened without following links, manifest/beneath.h), renames the staged file to rel, fsyncs
  // the directory. REQUIRES: verify() passed on staged_path.
  void install(const std::string& staged_path, const std::string& rel, uint32_t mode) const;

  struct Staged {
    std::string staged, rel;
    uint32_t mode = 0644;
  };
  // install() for many files at once, with two file-system syncs in all instead of three fsyncs
  // each (a 100,000-file tree would otherwise spend most of its time waiting for the disk):
  // sets the modes, syncfs (every staged byte durable), renames each into place (creating
  // parents), syncfs (every rename durable). REQUIRES: each staged file verified. After a
  // crash, any subset of the renames may have happened, each with verified content.
  void install_many(const std::vector<Staged>& files) const;
  // Makes every write on the staging file system durable (one syncfs).
  void sync_staging() const;

  // Copies the local file src (another final path) into staged_path, reading at most size + 1
  // bytes. Returns true when the copy has exactly size bytes and the digest; false otherwise
  // (the staged file is then removed). Throws Error{io,no_space} on write failures. With
  // sync = false the copy is not fsynced: the caller calls sync_staging() or install_many().
  bool stage_copy(const std::string& src_rel, const std::string& staged_path, const Digest& digest, uint64_t size,
                  bool sync = true) const;
  // The same from another tree of this center (another channel's root), opened beneath it as
  // safely as this tree's files; false also when rel is not there or is reached through a link.
  bool stage_copy_from(const std::string& other_root, const std::string& rel, const std::string& staged_path,
                       const Digest& digest, uint64_t size, bool sync = true) const;

  // True when the file at rel has exactly this size and digest (hashes it when the size fits).
  bool final_matches(const std::string& rel, const Digest& digest, uint64_t size) const;

  // Removes rel (absent is fine) and then its parent directories that became empty. A symbolic
  // link on the way is Error{unsafe_path}: nothing outside the tree is removed (manifest/beneath.h).
  void remove(const std::string& rel) const;

  // Opens the regular file rel in the tree read-only without following any link on the way
  // (a copy source, a delta basis). Invalid when it is missing, not a regular file, or reached
  // through a link; Error{unsafe_path} when rel itself could leave the tree.
  UniqueFd open_in_tree(const std::string& rel) const;

  // Removes every file in the staging directory except those named in keep.
  void clean_staging(const std::vector<std::string>& keep) const;

 private:
  void check_renames_into_tree() const;
  bool copy_verified_fd(UniqueFd in, const std::string& staged_path, const Digest& digest, uint64_t size,
                        bool sync) const;
  std::string root_, staging_;
  FileModes modes_;
};

}  // namespace distd
