// Simulated power cuts for tests (DISTD_FAULT=powercut:NAME:N, manifest/fault.h).
//
// kill -9 keeps the page cache: every write(2), rename(2) and unlink(2) the process made is still
// there after it dies, so a missing fsync passes a kill test. In this mode the file seam
// (manifest/fs.cpp) also keeps a log, in this process's memory, of what is not yet durable, and
// at the crash point the process forgets it before it SIGKILLs itself, as a power cut would:
//   - data: for each regular file written through write_all() since its last fsync (sync_file,
//     try_sync_file) or syncfs (sync_filesystem), the length it had when it was first written
//     after that sync; the file is cut back to that length (a file created and written but never
//     synced ends up empty). Modelled after LevelDB's FaultInjectionTestEnv
//     (DropUnsyncedFileData) and SQLite's crash tests (src/test6.c), at whole-file granularity.
//   - names: each rename, unlink, rmdir, mkdir and file creation made through the seam since its
//     directory was last fsynced (fsync_dir, or sync_file on a directory's descriptor; a syncfs
//     covers the whole file system) is undone, newest first: a rename goes back and the file it
//     replaced returns (a hard link of it is kept, under DISTD_POWERCUT_DIR, until the rename is
//     durable); an unlinked file returns; a created directory goes with everything in it. A rename
//     is durable once the directory it moved into is synced (as on ext4 and XFS, where a rename is
//     one journal transaction), everything else once its own directory is.
// What it does not model (see docs/architecture.md, "Crash safety"): writes made outside the
// seam (files created with open(O_CREAT), written with pwrite, ftruncate, libarchive or stdio
// are only seen when they later pass through sync_file, write_all or a seam rename; a file the
// seam never saw keeps its name and bytes); SQLite, trusted to have made each committed
// transaction durable itself (WAL, synchronous=FULL); writes of earlier processes (a crash
// forgets only this process's writes); torn or reordered writes inside a file, overwrites in the
// synced part of a file, and lost metadata (modes, times); other processes' writes.
#pragma once

#include <string>

namespace distd::powercut {

// True when DISTD_FAULT selects the power-cut mode (read once). Every other function here
// does nothing when it is false. All are safe for concurrent use (one lock).
bool on();

// Data: before bytes are written to fd / after fd (a file or a directory) was fsynced / after
// the file system holding fd was synced.
void before_write(int fd);
void synced(int fd);
void synced_filesystem(int fd);
// After the directory at path was fsynced.
void synced_dir(const std::string& path);

// Names. A path relative to a directory descriptor is (dir_fd, name); AT_FDCWD or an absolute
// name for plain paths. before_* returns a token to pass to the matching after_* (with the
// call's result), which records the operation when it succeeded.
struct Pending {
  std::string keep;  // hard link of the file about to be replaced or removed ("" for none)
  bool active = false;
};
Pending before_replace(int dir_fd, const std::string& name);
void after_rename(Pending p, int from_dir, const std::string& from, int to_dir, const std::string& to, int err);
void after_remove(Pending p, int dir_fd, const std::string& name, bool as_dir, int err);
// After a directory or a file was created at (dir_fd, name).
void created(int dir_fd, const std::string& name, bool is_dir);

// The power cut: forgets everything not durable (above), then SIGKILLs this process. Called by
// fault_point() at the chosen point; never returns.
[[noreturn]] void cut();

}  // namespace distd::powercut
