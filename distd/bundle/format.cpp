#include "distd/bundle/format.h"
#include "manifest/manifest.h"

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/path.h"

namespace distd::bundle {

std::string volume_file(uint32_t volume) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "distd-bundle-%04u.tar", volume);
  return buf;
}

std::string volume_header_text(const std::string& bundle_id, uint32_t volume) {
  return "distd-bundle-volume 1\nbundle " + bundle_id + "\nvolume " + std::to_string(volume) + "\n";
}

bool is_safe_name(std::string_view s) {
  if (s.empty() || s.size() > 128 || s[0] == '.') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
          c == '.'))
      return false;
  return true;
}

std::string random_id_hex(size_t bytes) {
  std::string b(bytes, '\0');
  randombytes_buf(b.data(), b.size());
  return to_hex(b.data(), b.size());
}

std::string Index::member_name(const Item& it, size_t piece_index) {
  std::string base;
  switch (it.kind) {
    case ItemKind::manifest: base = "m/" + it.channel + "/" + std::to_string(it.version) + ".manifest"; break;
    case ItemKind::object: base = "o/" + digest_hex(it.digest); break;
    case ItemKind::delta: base = "d/" + it.delta_id; break;
    case ItemKind::zdelta: base = "d/" + it.delta_id + ".zst"; break;
    case ItemKind::zobject: base = "z/" + digest_hex(it.target); break;
    case ItemKind::zpack: base = "p/" + (it.packed.empty() ? std::string("-") : digest_hex(it.packed[0].digest)); break;
    case ItemKind::mdelta: base = "m/" + it.channel + "/" + std::to_string(it.version) + ".mdelta"; break;
    case ItemKind::mpatch: base = "m/" + it.channel + "/" + std::to_string(it.version) + ".mpatch"; break;
  }
  if (it.pieces.size() > 1) base += "." + std::to_string(piece_index + 1);
  return base;
}

namespace {

// Splits a line on single spaces; empty fields are an error for the caller to see.
std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  for (;;) {
    size_t sp = line.find(' ', pos);
    out.push_back(line.substr(pos, sp == std::string_view::npos ? std::string_view::npos : sp - pos));
    if (sp == std::string_view::npos) return out;
    pos = sp + 1;
  }
}

// Line-by-line reader with strict error messages.
class Lines {
 public:
  Lines(std::string_view text, std::string name, std::string what)
      : text_(text), name_(std::move(name)), what_(std::move(what)) {}
  bool done() const { return pos_ >= text_.size(); }
  std::string_view next() {
    if (done()) fail("ends early");
    size_t nl = text_.find('\n', pos_);
    if (nl == std::string_view::npos) fail("has no newline at the end");
    std::string_view l = text_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    ++line_;
    return l;
  }
  // The next line split into fields, the first of which must be `key`, with n fields in all.
  std::vector<std::string_view> expect(std::string_view key, size_t n) {
    auto f = fields(next());
    if (f[0] != key || f.size() != n)
      fail("expected '" + std::string(key) + "' with " + std::to_string(n - 1) + " fields");
    for (auto& x : f)
      if (x.empty()) fail("has an empty field");
    return f;
  }
  std::vector<std::string_view> peek_fields() {
    size_t save = pos_;
    int l = line_;
    auto f = fields(next());
    pos_ = save;
    line_ = l;
    return f;
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(Errc::corrupt, what_ + " " + name_ + ": line " + std::to_string(line_) + " " + why,
                "the file is damaged or not a distd " + what_ + "; make a new one");
  }
  uint64_t u64(std::string_view s) const {
    auto v = parse_u64(s);
    if (!v) fail("has a bad number '" + std::string(s) + "'");
    return *v;
  }
  int64_t time(std::string_view s) const {
    uint64_t v = u64(s);
    if (v > static_cast<uint64_t>(INT64_MAX)) fail("has a time out of range '" + std::string(s) + "'");
    return static_cast<int64_t>(v);
  }
  Digest digest(std::string_view s) const {
    auto d = parse_digest_hex(s);
    if (!d || digest_hex(*d) != s) fail("has a bad digest '" + std::string(s) + "'");
    return *d;
  }
  int line() const { return line_; }

 private:
  std::string_view text_;
  std::string name_, what_;
  size_t pos_ = 0;
  int line_ = 0;
};

bool is_hex(std::string_view s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// Splits "body + signature line". Returns false when there is no well-formed signature line.
bool split_signed(std::string_view file, std::string_view* body, Digest* key_id, Signature* sig) {
  if (file.empty() || file.back() != '\n') return false;
  size_t start = file.rfind('\n', file.size() - 2);
  start = start == std::string_view::npos ? 0 : start + 1;
  std::string_view line = file.substr(start, file.size() - 1 - start);
  auto f = fields(line);
  if (f.size() != 4 || f[0] != "signature" || f[1] != "ed25519" || !is_hex(f[2], 64) || !is_hex(f[3], 128))
    return false;
  if (!from_hex(f[2], key_id->data(), key_id->size()) || !from_hex(f[3], sig->data(), sig->size())) return false;
  *body = file.substr(0, start);
  return true;
}

const char* kind_word(ItemKind k) {
  switch (k) {
    case ItemKind::manifest: return "manifest";
    case ItemKind::object: return "object";
    case ItemKind::delta: return "delta";
    case ItemKind::zobject: return "zobject";
    case ItemKind::mdelta: return "mdelta";
    case ItemKind::mpatch: return "mpatch";
    case ItemKind::zdelta: return "zdelta";
    case ItemKind::zpack: return "zpack";
  }
  return "?";
}

}  // namespace

std::string sign_text(const std::string& body, const SecretKey& key) {
  Signature s = sign_detached(key, body);
  return body + "signature ed25519 " + digest_hex(key.public_key().key_id()) + " " + to_hex(s) + "\n";
}

std::string render_index_body(const Index& ix) {
  std::string o;
  o.reserve(256 + ix.items.size() * 256);
  o += "distd-bundle 1\n";
  o += "bundle " + ix.bundle_id + "\n";
  o += "created " + std::to_string(ix.created) + "\n";
  o += "site " + ix.site + "\n";
  o += "request " + ix.request + "\n";
  o += "volume-size " + std::to_string(ix.volume_size) + "\n";
  o += "volumes " + std::to_string(ix.volume_bytes.size()) + "\n";
  for (size_t i = 0; i < ix.volume_bytes.size(); ++i)
    o += "volume " + std::to_string(i + 1) + " " + std::to_string(ix.volume_bytes[i]) + "\n";
  o += "channels " + std::to_string(ix.channels.size()) + "\n";
  for (auto& c : ix.channels)
    o += "channel " + c.name + " " + std::to_string(c.from) + " " + std::to_string(c.to) + "\n";
  o += "items " + std::to_string(ix.items.size()) + "\n";
  for (auto& it : ix.items) {
    std::string n = std::to_string(it.pieces.size());
    switch (it.kind) {
      case ItemKind::manifest:
        o += "manifest " + it.channel + " " + std::to_string(it.version) + " " + std::to_string(it.size) + " " +
             digest_hex(it.digest) + " " + n + "\n";
        break;
      case ItemKind::object:
        o += "object " + digest_hex(it.digest) + " " + std::to_string(it.size) + " " + n + "\n";
        break;
      case ItemKind::delta:
      case ItemKind::zdelta:
        o += std::string(it.kind == ItemKind::delta ? "delta " : "zdelta ") + it.delta_id + " " + digest_hex(it.basis) + " " + digest_hex(it.target) + " " +
             std::to_string(it.target_size) + " " + std::to_string(it.size) + " " + digest_hex(it.digest) + " " + n +
             "\n";
        break;
      case ItemKind::mdelta:
      case ItemKind::mpatch:
        o += std::string(it.kind == ItemKind::mdelta ? "mdelta " : "mpatch ") + it.channel + " " + std::to_string(it.version) + " " + std::to_string(it.target_size) + " " +
             digest_hex(it.target) + " " + std::to_string(it.basis_version) + " " + std::to_string(it.size) + " " +
             digest_hex(it.digest) + " " + n + "\n";
        break;
      case ItemKind::zobject:
        o += "zobject " + digest_hex(it.target) + " " + std::to_string(it.target_size) + " " + std::to_string(it.size) +
             " " + digest_hex(it.digest) + " " + n + "\n";
        break;
      case ItemKind::zpack:
        o += "zpack " + std::to_string(it.packed.size()) + " " + std::to_string(it.target_size) + " " +
             std::to_string(it.size) + " " + digest_hex(it.digest) + " " + n + "\n";
        for (auto& m : it.packed) o += "packed " + digest_hex(m.digest) + " " + std::to_string(m.size) + "\n";
        break;
    }
    for (auto& p : it.pieces)
      o += "piece " + std::to_string(p.volume) + " " + std::to_string(p.offset) + " " + std::to_string(p.size) + " " +
           digest_hex(p.digest) + " " + p.member + "\n";
  }
  o += "omitted " + std::to_string(ix.omitted.size()) + "\n";
  for (auto& m : ix.omitted)
    o += "omit " + m.channel + " " + std::to_string(m.size) + " " + digest_hex(m.digest) + " " + encode_path(m.path) +
         "\n";
  o += "end\n";
  return o;
}

namespace {

// Returns the signed body of a bundle index file. Throws when it has no signature line, is signed by
// another key than `key`, or its signature does not verify.
std::string_view verified_body(std::string_view file, const PublicKey& key, const std::string& name) {
  std::string_view body;
  Digest kid{};
  Signature sig{};
  if (!split_signed(file, &body, &kid, &sig))
    throw Error(Errc::corrupt, "bundle index " + name + " has no signature line at its end",
                "the index is damaged or truncated; export the bundle again at HQ");
  if (kid != key.key_id())
    throw Error(Errc::bad_signature,
                "bundle index " + name + " is signed by key " + digest_hex(kid).substr(0, 16) +
                    "..., not by the pinned HQ key " + digest_hex(key.key_id()).substr(0, 16) + "...",
                "this bundle was not made by your HQ (or HQ's key changed): nothing was installed");
  if (!verify_detached(key, body, sig))
    throw Error(Errc::bad_signature, "bundle index " + name + ": the signature does not verify (the index was altered)",
                "nothing was installed; export the bundle again at HQ");
  return body;
}

// Reads the header lines, from "distd-bundle 1" to "volume-size", into ix.
void read_header(Lines& L, Index& ix) {
  if (L.next() != "distd-bundle 1") L.fail("is not 'distd-bundle 1' (another format or version)");
  auto f = L.expect("bundle", 2);
  if (!is_hex(f[1], 32)) L.fail("has a bad bundle id");
  ix.bundle_id = std::string(f[1]);
  f = L.expect("created", 2);
  ix.created = L.time(f[1]);
  f = L.expect("site", 2);
  ix.site = std::string(f[1]);
  if (ix.site != "-" && !is_safe_name(ix.site)) L.fail("has a bad site id");
  f = L.expect("request", 2);
  ix.request = std::string(f[1]);
  if (ix.request != "-" && !is_hex(ix.request, 64)) L.fail("has a bad request digest");
  ix.volume_size = L.u64(L.expect("volume-size", 2)[1]);
  if (ix.volume_size < kMinVolumeSize || ix.volume_size > kFatMaxFile) L.fail("has a volume size out of range");
}

// Reads the "volumes" count and its "volume" lines into ix.volume_bytes. REQUIRES: ix.volume_size read.
void read_volumes(Lines& L, Index& ix) {
  uint64_t nvol = L.u64(L.expect("volumes", 2)[1]);
  if (nvol > 100000) L.fail("lists too many volumes");
  for (uint64_t v = 1; v <= nvol; ++v) {
    auto f = L.expect("volume", 3);
    if (L.u64(f[1]) != v) L.fail("is out of order");
    uint64_t b = L.u64(f[2]);
    if (b > ix.volume_size || b < 1024 + 512) L.fail("gives a volume size beyond the volume size");
    ix.volume_bytes.push_back(b);
  }
}

// Reads the "channels" count and its "channel" lines into ix.channels. Returns the channel names.
std::set<std::string> read_channels(Lines& L, Index& ix) {
  uint64_t nch = L.u64(L.expect("channels", 2)[1]);
  if (nch > 10000) L.fail("lists too many channels");
  std::set<std::string> chans;
  for (uint64_t i = 0; i < nch; ++i) {
    auto f = L.expect("channel", 4);
    ChannelSpan c{std::string(f[1]), L.u64(f[2]), L.u64(f[3])};
    if (!is_safe_name(c.name) || !chans.insert(c.name).second) L.fail("has a bad or duplicate channel");
    ix.channels.push_back(c);
  }
  return chans;
}

// Reads a zpack line and its "packed" lines into it: 1 to kMaxPackObjects objects, none twice,
// whose sizes add up to the content size.
void read_pack(Lines& L, Item& it, uint64_t* npieces) {
  auto f = L.expect("zpack", 6);
  it.kind = ItemKind::zpack;
  const uint64_t count = L.u64(f[1]);
  it.target_size = L.u64(f[2]);
  it.size = L.u64(f[3]);
  it.digest = L.digest(f[4]);
  *npieces = L.u64(f[5]);
  if (count == 0 || count > kMaxPackObjects) L.fail("has a pack of 0 or more than 4096 objects");
  std::set<Digest> seen;
  uint64_t sum = 0;
  for (uint64_t k = 0; k < count; ++k) {
    auto g = L.expect("packed", 3);
    Item::Packed m{L.digest(g[1]), L.u64(g[2])};
    if (m.size > (uint64_t(1) << 40) || !seen.insert(m.digest).second) L.fail("lists a packed object twice or of absurd size");
    sum += m.size;
    it.packed.push_back(m);
  }
  if (sum != it.target_size) L.fail("has packed objects whose sizes do not add up to the pack's content size");
}

// Reads one item line (manifest, object or delta) into an Item without pieces; sets *npieces to
// the count of piece lines that follow it. A manifest must name one of chans.
Item read_item_line(Lines& L, const std::set<std::string>& chans, uint64_t* npieces) {
  Item it;
  auto g = L.peek_fields();
  if (g[0] == "manifest") {
    auto f = L.expect("manifest", 6);
    it.kind = ItemKind::manifest;
    it.channel = std::string(f[1]);
    if (!chans.count(it.channel)) L.fail("names a channel not listed above");
    it.version = L.u64(f[2]);
    it.size = L.u64(f[3]);
    it.digest = L.digest(f[4]);
    *npieces = L.u64(f[5]);
  } else if (g[0] == "object") {
    auto f = L.expect("object", 4);
    it.kind = ItemKind::object;
    it.digest = L.digest(f[1]);
    it.size = L.u64(f[2]);
    *npieces = L.u64(f[3]);
  } else if (g[0] == "delta" || g[0] == "zdelta") {
    auto f = L.expect(g[0] == "delta" ? "delta" : "zdelta", 8);
    it.kind = g[0] == "delta" ? ItemKind::delta : ItemKind::zdelta;
    if (!is_hex(f[1], 64)) L.fail("has a bad delta id");
    it.delta_id = std::string(f[1]);
    it.basis = L.digest(f[2]);
    it.target = L.digest(f[3]);
    it.target_size = L.u64(f[4]);
    it.size = L.u64(f[5]);
    it.digest = L.digest(f[6]);
    *npieces = L.u64(f[7]);
  } else if (g[0] == "mdelta" || g[0] == "mpatch") {
    auto f = L.expect(g[0] == "mdelta" ? "mdelta" : "mpatch", 9);
    it.kind = g[0] == "mdelta" ? ItemKind::mdelta : ItemKind::mpatch;
    it.channel = std::string(f[1]);
    if (!chans.count(it.channel)) L.fail("names a channel not listed above");
    it.version = L.u64(f[2]);
    it.target_size = L.u64(f[3]);
    it.target = L.digest(f[4]);
    it.basis_version = L.u64(f[5]);
    it.size = L.u64(f[6]);
    it.digest = L.digest(f[7]);
    *npieces = L.u64(f[8]);
    if (it.basis_version == 0 || it.basis_version >= it.version) L.fail("has a manifest delta from a bad version");
    if (it.target_size > kMaxManifestBytes) L.fail("has a manifest larger than 1 GiB");
  } else if (g[0] == "zobject") {
    auto f = L.expect("zobject", 6);
    it.kind = ItemKind::zobject;
    it.target = L.digest(f[1]);
    it.target_size = L.u64(f[2]);
    it.size = L.u64(f[3]);
    it.digest = L.digest(f[4]);
    *npieces = L.u64(f[5]);
    if (it.target_size > (uint64_t(1) << 50)) L.fail("has an absurd object size");
  } else if (g[0] == "zpack") {
    read_pack(L, it, npieces);
  } else {
    L.fail("is not an item line (manifest, mpatch, mdelta, object, delta, zdelta, zobject or zpack)");
  }
  return it;
}

// Reads npieces "piece" lines into it.pieces; they must lie in volumes 1..nvol and cover the item
// in order, without gaps.
void read_pieces(Lines& L, Item& it, uint64_t npieces, uint64_t nvol) {
  if (npieces == 0 || npieces > 1'000'000 || it.size > (uint64_t(1) << 50)) L.fail("has a bad piece count or size");
  uint64_t off = 0;
  for (uint64_t k = 0; k < npieces; ++k) {
    auto f = L.expect("piece", 6);
    Piece p;
    p.volume = static_cast<uint32_t>(L.u64(f[1]));
    p.offset = L.u64(f[2]);
    p.size = L.u64(f[3]);
    p.digest = L.digest(f[4]);
    p.member = std::string(f[5]);
    if (p.volume < 1 || p.volume > nvol) L.fail("names a volume that does not exist");
    if (p.offset != off || (p.size == 0 && it.size != 0) || p.size > it.size - off)
      L.fail("has a piece that does not continue its item");
    off += p.size;
    it.pieces.push_back(std::move(p));
  }
  if (off != it.size) L.fail("has pieces that do not cover their item");
}

// Reads the "items" count and its items with their pieces into ix, then checks that each volume's
// size is what its pieces fill. REQUIRES: volumes read; chans are the channels read.
void read_items(Lines& L, Index& ix, const std::set<std::string>& chans) {
  const uint64_t nvol = ix.volume_bytes.size();
  uint64_t nitems = L.u64(L.expect("items", 2)[1]);
  if (nitems > 100'000'000) L.fail("lists too many items");
  std::set<std::string> members;
  std::vector<uint64_t> used(nvol, 512 + 512 + kTarEndBytes);  // header member (< 512 bytes) + end
  for (uint64_t i = 0; i < nitems; ++i) {
    uint64_t npieces = 0;
    Item it = read_item_line(L, chans, &npieces);
    read_pieces(L, it, npieces, nvol);
    for (size_t k = 0; k < it.pieces.size(); ++k) {
      if (it.pieces[k].member != Index::member_name(it, k)) L.fail("has a member name that does not fit its item");
      if (!members.insert(it.pieces[k].member).second) L.fail("lists a member twice");
      used[it.pieces[k].volume - 1] += tar_member_bytes(it.pieces[k].size);
    }
    if (it.pieces.size() == 1 && it.pieces[0].digest != it.digest) L.fail("has a piece digest unlike its item's");
    ix.items.push_back(std::move(it));
  }
  for (uint64_t v = 0; v < nvol; ++v)
    if (used[v] != ix.volume_bytes[v]) L.fail("gives volume " + std::to_string(v + 1) + " a size unlike its pieces");
}

// Reads the "omitted" count and its "omit" lines into ix.omitted.
void read_omitted(Lines& L, Index& ix) {
  uint64_t nom = L.u64(L.expect("omitted", 2)[1]);
  for (uint64_t i = 0; i < nom; ++i) {
    auto f = L.expect("omit", 5);
    Omitted m;
    m.channel = std::string(f[1]);
    m.size = L.u64(f[2]);
    m.digest = L.digest(f[3]);
    auto p = decode_path(f[4]);
    if (!p || !unsafe_path_reason(*p).empty()) L.fail("has a bad path");
    m.path = *p;
    ix.omitted.push_back(std::move(m));
  }
}

}  // namespace

Index parse_index(std::string_view file, const PublicKey& key, const std::string& name) {
  std::string_view body = verified_body(file, key, name);
  Lines L(body, name, "bundle index");
  Index ix;
  read_header(L, ix);
  read_volumes(L, ix);
  std::set<std::string> chans = read_channels(L, ix);
  read_items(L, ix, chans);
  read_omitted(L, ix);
  if (L.next() != "end" || !L.done()) L.fail("has data after the items (expected 'end')");
  (void)kind_word;
  return ix;
}

std::string render_request_body(const Request& r) {
  std::string o;
  o += r.report.empty() ? "distd-request 1\n" : "distd-request 2\n";
  o += "site " + r.site + "\n";
  o += "created " + std::to_string(r.created) + "\n";
  o += "channels " + std::to_string(r.channels.size()) + "\n";
  for (auto& c : r.channels) {
    o += "channel " + c.name + " " + std::to_string(c.installed_version) + " " + c.installed_digest + " " +
         std::to_string(c.held.size()) + "\n";
    for (auto& h : c.held) {
      o += to_hex(h.data(), h.size());
      o += '\n';
    }
  }
  o += "priority " + std::to_string(r.priority.size()) + "\n";
  for (auto& p : r.priority) o += "p " + encode_path(p) + "\n";
  o += "outbound " + std::to_string(r.outbound.size()) + "\n";
  for (auto& ob : r.outbound)
    o += "file " + std::to_string(ob.size) + " " + digest_hex(ob.digest) + " " + ob.name + "\n";
  if (!r.report.empty()) o += "report " + r.report + "\n";
  o += "end\n";
  return o;
}

Request parse_request(std::string_view file, const std::string& name, Digest* key_id, std::string* body_out,
                      Signature* sig) {
  std::string_view body;
  if (!split_signed(file, &body, key_id, sig))
    throw Error(Errc::corrupt, "request " + name + " has no signature line at its end",
                "the request is damaged or truncated; make a new one at the center ('distctl bundle request')");
  *body_out = std::string(body);
  Lines L(body, name, "request");
  Request r;
  const std::string_view head = L.next();
  if (head != "distd-request 1" && head != "distd-request 2") L.fail("is not 'distd-request 1' or 'distd-request 2'");
  auto f = L.expect("site", 2);
  r.site = std::string(f[1]);
  if (!is_safe_name(r.site)) L.fail("has a bad site id");
  r.created = L.time(L.expect("created", 2)[1]);
  uint64_t nch = L.u64(L.expect("channels", 2)[1]);
  if (nch > 10000) L.fail("lists too many channels");
  for (uint64_t i = 0; i < nch; ++i) {
    f = L.expect("channel", 5);
    RequestChannel c;
    c.name = std::string(f[1]);
    c.installed_version = L.u64(f[2]);
    c.installed_digest = std::string(f[3]);
    if (!is_safe_name(c.name) || (c.installed_digest != "-" && !is_hex(c.installed_digest, 64)))
      L.fail("has a bad channel line");
    uint64_t n = L.u64(f[4]);
    if (n > 100'000'000) L.fail("lists too many digests");
    c.held.reserve(std::min<uint64_t>(n, body.size() / (2 * kHeldPrefixBytes + 1)));  // what the body can hold
    for (uint64_t k = 0; k < n; ++k) {
      std::string_view l = L.next();
      std::array<uint8_t, kHeldPrefixBytes> h{};
      if (!is_hex(l, 2 * kHeldPrefixBytes) || !from_hex(l, h.data(), h.size())) L.fail("has a bad held digest");
      if (!c.held.empty() && !(c.held.back() < h)) L.fail("has held digests out of order");
      c.held.push_back(h);
    }
    r.channels.push_back(std::move(c));
  }
  uint64_t np = L.u64(L.expect("priority", 2)[1]);
  for (uint64_t i = 0; i < np; ++i) {
    f = L.expect("p", 2);
    auto p = decode_path(f[1]);
    if (!p) L.fail("has a bad priority path");
    r.priority.push_back(*p);
  }
  uint64_t no = L.u64(L.expect("outbound", 2)[1]);
  for (uint64_t i = 0; i < no; ++i) {
    f = L.expect("file", 4);
    OutboundItem ob;
    ob.size = L.u64(f[1]);
    ob.digest = L.digest(f[2]);
    ob.name = std::string(f[3]);
    if (!is_safe_name(ob.name)) L.fail("has a bad outbound file name");
    r.outbound.push_back(std::move(ob));
  }
  if (head == "distd-request 2") {  // the status report: a JSON object, checked by whoever stores it
    std::string_view l = L.next();
    std::string_view j = l.substr(std::min<size_t>(l.size(), 7));
    bool ok = l.substr(0, 7) == "report " && j.size() >= 2 && j.size() <= kMaxRequestReportBytes &&
              j.front() == '{' && j.back() == '}';
    for (char c : j) ok = ok && c >= 0x20 && c <= 0x7e;
    if (!ok) L.fail("expected 'report' with a status report (one line of JSON, at most 64 KiB)");
    r.report = std::string(j);
  }
  if (L.next() != "end" || !L.done()) L.fail("has data after 'end'");
  return r;
}

}  // namespace distd::bundle
