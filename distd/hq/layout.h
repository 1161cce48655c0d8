// Where HQ keeps things under its state directory. The public/ subtree is exactly what
// docs/formats/http.md serves (and what plain nginx can serve); everything else is private.
//
//   <state_dir>/public/channels/<ch>/latest.manifest
//   <state_dir>/public/channels/<ch>/manifests/<N>.manifest
//   <state_dir>/public/objects/<hex[0:2]>/<hex>       (and <hex>.zst, its stored zstd form)
//   <state_dir>/public/deltas/<id>                    (and <id>.zst)
//   <state_dir>/public/keys/<N>.keys        signing-key records (docs/formats/keys.md)
//   <state_dir>/delta-targets/<id>          "<target hex> <target size>\n" (for gc)
//   <state_dir>/statcache/<ch>.sqlite
//   <state_dir>/publish.lock
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "manifest/digest.h"

namespace distd::hq {

struct Layout {
  std::string state_dir;

  std::string public_dir() const { return state_dir + "/public"; }
  std::string channels_dir() const { return public_dir() + "/channels"; }
  std::string channel_dir(const std::string& ch) const { return channels_dir() + "/" + ch; }
  std::string latest_manifest(const std::string& ch) const { return channel_dir(ch) + "/latest.manifest"; }
  std::string manifests_dir(const std::string& ch) const { return channel_dir(ch) + "/manifests"; }
  std::string manifest(const std::string& ch, uint64_t v) const {
    return manifests_dir(ch) + "/" + std::to_string(v) + ".manifest";
  }
  std::string objects_dir() const { return public_dir() + "/objects"; }
  std::string object(const Digest& d) const {
    std::string hex = digest_hex(d);
    return objects_dir() + "/" + hex.substr(0, 2) + "/" + hex;
  }
  std::string deltas_dir() const { return public_dir() + "/deltas"; }
  std::string delta(const std::string& id_hex) const { return deltas_dir() + "/" + id_hex; }
  std::string keys_dir() const { return public_dir() + "/keys"; }
  std::string key_record(uint64_t v) const { return keys_dir() + "/" + std::to_string(v) + ".keys"; }
  std::string delta_targets_dir() const { return state_dir + "/delta-targets"; }
  std::string delta_target(const std::string& id_hex) const { return delta_targets_dir() + "/" + id_hex; }
  std::string stat_cache(const std::string& ch) const { return state_dir + "/statcache/" + ch + ".sqlite"; }
  std::string publish_lock() const { return state_dir + "/publish.lock"; }
};

// "12.manifest" -> 12; anything else (temporaries, "012.manifest", "x") -> nullopt.
std::optional<uint64_t> manifest_file_version(std::string_view file_name);

// True for a name of exactly 64 lower-case hex digits.
bool is_hex64(std::string_view s);
// A temporary for a file HQ renames into dir (objects, deltas, stored forms):
// "<dir>/.<name>.tmp.<pid>.<n>", what retention removes as a temporary.
std::string store_temp(const std::string& dir, const std::string& name);
// "<hex>.zst" (a stored zstd form, stored_zstd.h): its 64-character stem; else name itself.
std::string_view form_stem(std::string_view name);

}  // namespace distd::hq
