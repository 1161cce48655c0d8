// The sneakernet formats: the bundle index (signed by HQ) and the request (signed by a site).
// Byte formats are specified in docs/formats/bundle.md; this file is their only reader/writer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "manifest/digest.h"
#include "manifest/keys.h"

namespace distd::bundle {

// Names on the stick (FAT-safe: ASCII letters, digits, '-', '.').
inline constexpr const char* kIndexFile = "distd-bundle.idx";
inline constexpr const char* kRequestFile = "distd-request.txt";
inline constexpr const char* kOutboundDir = "distd-outbound";
inline constexpr const char* kResultFile = "distd-import-result.txt";
// HQ's signing-key records (docs/formats/keys.md) as distd-keys/<N>.keys, N = 2, 3, ...
// consecutive; at most kMaxStickKeyRecords of them, each at most kMaxKeyRecordBytes.
inline constexpr const char* kKeysDir = "distd-keys";
inline constexpr uint64_t kMaxStickKeyRecords = 64;
inline std::string stick_key_record(const std::string& dir, uint64_t n) {
  return dir + "/" + kKeysDir + "/" + std::to_string(n) + ".keys";
}
// "distd-bundle-0001.tar" for volume 1 (1-based).
std::string volume_file(uint32_t volume);
// The first member of every volume: names the bundle and the volume number.
inline constexpr const char* kVolumeHeaderMember = "distd-volume";
std::string volume_header_text(const std::string& bundle_id, uint32_t volume);

inline constexpr uint64_t kFatMaxFile = (uint64_t(4) << 30) - 1;
// 3.9 GiB, rounded down to the tar block size.
inline constexpr uint64_t kDefaultVolumeSize = (uint64_t(39) * (uint64_t(1) << 30) / 10) / 512 * 512;
inline constexpr uint64_t kMinVolumeSize = 64 * 1024;
inline constexpr uint64_t kMaxIndexBytes = uint64_t(512) << 20;
inline constexpr uint64_t kMaxRequestBytes = uint64_t(512) << 20;
inline constexpr size_t kHeldPrefixBytes = 16;
inline constexpr uint64_t kMaxPackObjects = 4096;  // objects in one zpack item  // a held digest is sent as its first 128 bits

// Bytes a ustar member of `size` content bytes occupies (header + content padded to 512).
inline uint64_t tar_member_bytes(uint64_t size) { return 512 + (size + 511) / 512 * 512; }
inline constexpr uint64_t kTarEndBytes = 1024;  // two zero blocks

// One member of a volume holding bytes [offset, offset+size) of an item.
struct Piece {
  uint32_t volume = 0;   // 1-based
  uint64_t offset = 0;   // within the item
  uint64_t size = 0;
  Digest digest{};       // of these bytes
  std::string member;    // name inside the volume
};

// zobject: an object carried as its stored zstd form (HQ's <hex>.zst, docs/formats/compression.md);
// the item's bytes (size, digest, pieces) are the stored form, target and target_size the object.
// mdelta: manifest `version` of `channel` as zstd(librsync delta) from version basis_version
// (the center's installed one, or an earlier manifest of the bundle); target and target_size
// are the manifest file's digest and size.
// zdelta: a delta carried as HQ's stored zstd form of it (<id>.zst); size and digest are the form's.
// zpack: several small objects (`packed`, in order) as one zstd stream of their concatenation, made
// like a batch answer of the link; size and digest are the stream's, target_size the content's.
// mpatch: as mdelta, the bytes a zstd frame with the basis manifest file as its prefix.
enum class ItemKind { manifest, object, delta, zobject, mdelta, zdelta, zpack, mpatch };
inline bool is_delta_kind(ItemKind k) { return k == ItemKind::delta || k == ItemKind::zdelta; }
inline bool is_manifest_delta_kind(ItemKind k) { return k == ItemKind::mdelta || k == ItemKind::mpatch; }
inline bool is_manifest_kind(ItemKind k) { return k == ItemKind::manifest || is_manifest_delta_kind(k); }

struct Item {
  ItemKind kind = ItemKind::object;
  uint64_t size = 0;    // bytes of the item (manifest file, object, delta)
  Digest digest{};      // of those bytes (for an object: its content digest)
  // manifest, mdelta:
  std::string channel;
  uint64_t version = 0;
  uint64_t basis_version = 0;  // mdelta
  // delta (librsync): turns basis (content digest) into target. zobject: decodes to target.
  std::string delta_id;  // 64 hex
  Digest basis{}, target{};
  uint64_t target_size = 0;
  struct Packed {
    Digest digest{};
    uint64_t size = 0;
  };
  std::vector<Packed> packed;  // zpack: the objects of the stream, in order
  std::vector<Piece> pieces;  // in offset order, covering [0, size) exactly
};

struct ChannelSpan {
  std::string name;
  uint64_t from = 0, to = 0;  // the center had `from` (0: nothing); the bundle brings `to`
};

// An entry of the latest version that was left out (did not fit --max-size).
struct Omitted {
  std::string channel, path;
  uint64_t size = 0;
  Digest digest{};
};

struct Index {
  std::string bundle_id;  // 32 hex, random
  int64_t created = 0;
  std::string site = "-";              // the site the bundle answers ("-": none)
  std::string request = "-";           // hex digest of the request file it answers
  uint64_t volume_size = 0;
  std::vector<uint64_t> volume_bytes;  // exact size of each volume file
  std::vector<ChannelSpan> channels;
  std::vector<Item> items;
  std::vector<Omitted> omitted;

  // Member names are fixed by the item: m/<channel>/<version>.manifest, m/<channel>/<version>.mdelta,
  // m/<channel>/<version>.mpatch,
  // o/<hex>, d/<id>, d/<id>.zst, z/<hex>, p/<hex of its first object> (a zpack), with
  // ".<k>" appended (k = 1, 2, ...) when the item has more than one piece.
  static std::string member_name(const Item& it, size_t piece_index);
};

// The index file: the body (docs/formats/bundle.md) and a signature line by HQ's key.
std::string render_index_body(const Index& ix);
std::string sign_text(const std::string& body, const SecretKey& key);
// Verifies the signature with key and parses strictly. Throws Error{bad_signature} (naming
// both key ids), Error{corrupt} with the line number.
Index parse_index(std::string_view file_bytes, const PublicKey& key, const std::string& name_for_errors);

struct RequestChannel {
  std::string name;
  uint64_t installed_version = 0;
  std::string installed_digest = "-";  // hex body digest of the installed manifest, "-" when none
  std::vector<std::array<uint8_t, kHeldPrefixBytes>> held;  // sorted, unique
};

struct OutboundItem {
  std::string name;  // FAT-safe file name in distd-outbound/
  uint64_t size = 0;
  Digest digest{};
};

struct Request {
  std::string site;
  int64_t created = 0;
  std::vector<RequestChannel> channels;
  std::vector<std::string> priority;  // paths or base names to bring first
  std::vector<OutboundItem> outbound;
  // The center's status report (distd/regional/status_report.h), compact JSON on one line of
  // printable ASCII, at most kMaxRequestReportBytes; empty: none. With one the request is
  // "distd-request 2", without one "distd-request 1" (what requests before the report were).
  std::string report;
};
inline constexpr size_t kMaxRequestReportBytes = 64 * 1024;

std::string render_request_body(const Request& r);
// Parses without checking the signature; *key_id receives the signer's key id and *body the
// signed bytes, *sig the signature.
Request parse_request(std::string_view file_bytes, const std::string& name_for_errors, Digest* key_id,
                      std::string* body, Signature* sig);

// Site ids and outbound names become file names: letters, digits, '-', '_', '.', not leading '.'.
bool is_safe_name(std::string_view s);

std::string random_id_hex(size_t bytes);

}  // namespace distd::bundle
