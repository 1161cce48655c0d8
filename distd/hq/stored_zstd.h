// The compressed form HQ keeps beside an object or a delta: <file>.zst, one zstd stream of
// exactly its bytes (docs/formats/compression.md). Made once, when it pays; served statically
// like the file itself, so a cut download resumes by Range on the stored form.
#pragma once

#include <cstdint>
#include <string>

#include "distd/io/zstd_stream.h"

namespace distd::hq {


// Writes zstd_form(path) (atomically: a temporary in the same directory, fsynced, renamed) when the
// file at path, `size` bytes, looks compressible (its first 128 KiB) and its zstd stream at
// `level` saves at least 1/16 of it; else leaves none. The caller fsyncs the directory. Returns
// the stored form's size, 0 when there is none. Throws Error{io, no_space}.
// min_size: smaller files get no form (objects: kStoredZstdMin; deltas have their own).
uint64_t store_zstd_form(const std::string& path, uint64_t size, int level, uint64_t min_size = kStoredZstdMin);

// The path of the stored form of path.
inline std::string zstd_form(const std::string& path) { return path + ".zst"; }

}  // namespace distd::hq
