// Path safety and the manifest's path encoding.
//
// A manifest path is relative, '/'-separated, and made of raw bytes (UTF-8 names are kept
// byte-exact). It never starts or ends with '/', has no empty, "." or ".." component, no NUL,
// is at most 4096 bytes, and each component at most 255 bytes. These rules are enforced when a
// manifest is built AND when one is parsed, so nothing from the wire can name a file outside
// the tree.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace distd {

constexpr size_t kMaxPathBytes = 4096;
constexpr size_t kMaxComponentBytes = 255;
// The top-level directory of a center's tree where its downloads wait, verified, to be renamed into
// place (when [regional] staging_dir is unset; docs/regional.md). Scans skip it, and no manifest may
// name a path in it.
constexpr std::string_view kStagingDirName = ".distd-staging";

// Returns an empty string when path is safe, otherwise the reason ("contains '..'", ...).
std::string unsafe_path_reason(std::string_view path);
// Throws Error{unsafe_path} naming the path (escaped) and the reason.
void check_safe_path(std::string_view path, std::string_view context);

// In a manifest line a path is written with bytes 0x00-0x20, 0x7F and '%' as %XX (upper-case
// hex); every other byte (including UTF-8) is written as itself. The encoding is canonical:
// decode_path() rejects any other spelling.
std::string encode_path(std::string_view raw);
std::optional<std::string> decode_path(std::string_view encoded);

// Printable form for messages: the encoded path in single quotes.
std::string quote_path(std::string_view raw);

}  // namespace distd
