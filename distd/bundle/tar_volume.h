// Writing one bundle volume: a POSIX ustar archive (libarchive) of regular-file members with
// fixed metadata, 256 KiB writes, no padding after the end marker, so its size is exactly
// the sum of tar_member_bytes() of its members plus kTarEndBytes (see format.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

struct archive;

namespace distd::bundle {

class TarVolumeWriter {
 public:
  // Creates (truncates) path. mtime: the time stamped on every member.
  TarVolumeWriter(const std::string& path, int64_t mtime);
  ~TarVolumeWriter();  // abandons an unclosed volume (the file stays, truncated)
  TarVolumeWriter(const TarVolumeWriter&) = delete;
  TarVolumeWriter& operator=(const TarVolumeWriter&) = delete;

  // Starts a member of exactly size bytes; write() must then supply all of them.
  void begin(const std::string& name, uint64_t size);
  void write(const void* data, size_t len);
  void add(const std::string& name, std::string_view data) {
    begin(name, data.size());
    write(data.data(), data.size());
  }
  // Writes the end marker, fsyncs and closes. Throws Error{io, no_space}.
  void close();

 private:
  [[noreturn]] void fail(const char* what);
  std::string path_;
  int fd_ = -1;
  int64_t mtime_;
  struct archive* a_ = nullptr;
  static constexpr uint64_t kWritebackEvery = 8 << 20;
  uint64_t unsynced_ = 0;  // bytes written since writeback was last started
};

}  // namespace distd::bundle
