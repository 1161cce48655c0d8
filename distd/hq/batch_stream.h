// The concatenation of several stored objects, read one after the other, raw or as one zstd
// stream whose frames follow the batch rules (docs/formats/compression.md "Batch answers"):
// compressible objects share frames at the batch's level, others go into frames at level 1. Used
// by POST /objects (object_batch.cpp) and by bundle export for its zpack items (a stick carries
// the same stream as the link's answer).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "distd/io/zstd_stream.h"
#include "manifest/fs.h"

namespace distd::hq {

// Whether the object at path (open as fd, size bytes) compresses: with forms_stored (publish
// stores zstd forms), one of kStoredZstdMin or more does exactly when it has a form; others are
// judged by their first 64 KiB at zstd level 1 (under 512 bytes: yes). nullopt: unreadable.
std::optional<bool> object_compresses(int fd, const std::string& path, uint64_t size, bool forms_stored);

class BatchStream {
 public:
  // files: path and size of each object, in order. level > 0: compressed (pump()); 0: raw
  // (next()). forms_stored: publish stores zstd forms, so an object of kStoredZstdMin or more
  // compresses exactly when it has one (no probe of its bytes).
  BatchStream(std::vector<std::pair<std::string, uint64_t>> files, int level, bool forms_stored);

  // Raw: the next bytes of the concatenation, at most len (empty at its end). nullopt: a file was
  // removed, truncated or unreadable.
  std::optional<std::string_view> next(size_t len);
  // Compressed: reads the next chunk and hands what the encoder has ready to out; at the end it
  // ends the stream. Returns 1 while there is more, 0 when the stream is complete, -1 when a file
  // was removed, truncated or unreadable.
  int pump(const ByteSink& out);
  // Closes the file being read (the stream is abandoned).
  void close() { fd_ = UniqueFd(); }

 private:
  bool classify(const ByteSink& out);

  std::vector<std::pair<std::string, uint64_t>> files_;
  size_t index_ = 0;      // file being read
  uint64_t in_file_ = 0;  // bytes of it read
  UniqueFd fd_;
  std::vector<char> buf_;
  std::optional<ZstdEncoder> zstd_;
  int level_ = 0;                   // of the batch's compressible objects
  bool forms_stored_ = false;
  bool frame_compressible_ = false;  // what the open frame holds
  const ByteSink* out_ = nullptr;   // where classify() ends a frame
};

}  // namespace distd::hq
