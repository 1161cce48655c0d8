// JSON on stdout for scripts (nlohmann::json). Paths appear in the manifest's path encoding
// (see docs/formats/manifest.md), so any byte sequence survives.
#pragma once

#include <nlohmann/json.hpp>

#include "manifest/manifest.h"

namespace distd::cli {

nlohmann::json entry_json(const Entry& e);
// Prints j (one document, newline-terminated); invalid UTF-8 is replaced, never fatal.
void print_json(const nlohmann::json& j);

}  // namespace distd::cli
