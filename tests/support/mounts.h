// Mounts a test makes as root, undone when it ends: a small tmpfs (a full disk on demand) and a
// bind mount (what systemd's ReadWritePaths= and StateDirectory= make). `mounted` is false when
// the kernel or the sandbox refuses; tests then skip.
#pragma once

#include <sys/mount.h>

#include <filesystem>
#include <string>

namespace distd::test {

struct Tmpfs {
  std::string dir;
  bool mounted = false;
  Tmpfs(const std::string& d, const std::string& size) : dir(d) {
    std::filesystem::create_directories(dir);
    mounted = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  bool resize(const std::string& size) {
    return ::mount("tmpfs", dir.c_str(), "tmpfs", MS_REMOUNT, ("size=" + size).c_str()) == 0;
  }
  ~Tmpfs() {
    if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
  }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;
};

struct BindMount {
  std::string at;
  bool mounted = false;
  BindMount(const std::string& from, const std::string& to) : at(to) {
    std::filesystem::create_directories(to);
    mounted = ::mount(from.c_str(), to.c_str(), nullptr, MS_BIND, nullptr) == 0;
  }
  ~BindMount() {
    if (mounted) ::umount2(at.c_str(), MNT_DETACH);
  }
  BindMount(const BindMount&) = delete;
  BindMount& operator=(const BindMount&) = delete;
};

}  // namespace distd::test
