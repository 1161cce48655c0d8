// POST /objects: many small objects in one answer (docs/formats/http.md), raw or as one zstd
// stream (docs/formats/compression.md).
#pragma once

#include <httplib.h>

#include "distd/hq/layout.h"

namespace distd::hq {

constexpr size_t kMaxBatchObjects = 4096;  // digests in one POST /objects

// Answers POST /objects: the objects whose raw digests the body lists, concatenated in that order
// and streamed from the store. When the request accepts zstd ("Accept-Encoding: zstd") and
// zstd_level > 0, the concatenation goes as one zstd stream (one context for every object, so
// many small XML files compress like one file), "Content-Encoding: zstd", chunked. 400 for a
// malformed list or one that names an object twice, 404 naming the first object not stored.
// forms_stored: publish stores zstd forms ([hq] compression_level > 0), so whether an object of
// kStoredZstdMin or more compresses is already known (it has a form).
void serve_object_batch(const httplib::Request& req, httplib::Response& res, const Layout& layout, int zstd_level,
                        bool forms_stored);

}  // namespace distd::hq
