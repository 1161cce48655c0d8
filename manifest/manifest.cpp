#include "manifest/manifest.h"

#include <algorithm>
#include <ctime>

#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/path.h"

namespace distd {

namespace {

constexpr std::string_view kMagic = "distd-manifest 1";

bool valid_channel(std::string_view c) {
  if (c.empty() || c.size() > 64) return false;
  for (char ch : c)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_')) return false;
  return true;
}

std::string octal4(uint32_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777u);
  return buf;
}

// A cursor over the file's lines that knows the line number for messages.
class Lines {
 public:
  Lines(std::string_view data, const std::string& name) : data_(data), name_(name) {}
  // Returns the next line without its '\n'; throws "truncated" when the data ends first.
  std::string_view next(std::string_view expecting) {
    ++line_no_;
    if (pos_ >= data_.size())
      fail("is truncated: it ends before " + std::string(expecting) + " (line " + std::to_string(line_no_) + ")");
    size_t nl = data_.find('\n', pos_);
    if (nl == std::string_view::npos)
      fail("is truncated: line " + std::to_string(line_no_) + " has no end of line");
    std::string_view line = data_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    return line;
  }
  size_t pos() const { return pos_; }
  size_t line_no() const { return line_no_; }
  bool at_end() const { return pos_ == data_.size(); }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(Errc::corrupt, "manifest " + name_ + " " + what,
                "the file is damaged or not a distd manifest; fetch it again from HQ or a fresh bundle");
  }
  [[noreturn]] void fail_line(const std::string& what) const {
    fail("line " + std::to_string(line_no_) + ": " + what);
  }
  // Parses "key value" and returns value.
  std::string_view field(std::string_view key) {
    std::string_view line = next("the '" + std::string(key) + "' line");
    if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != ' ')
      fail_line("expected '" + std::string(key) + " ...'");
    return line.substr(key.size() + 1);
  }

 private:
  std::string_view data_;
  const std::string& name_;
  size_t pos_ = 0;
  size_t line_no_ = 0;
};

}  // namespace

uint64_t Manifest::total_bytes() const {
  uint64_t t = 0;
  for (const auto& e : entries) t += e.size;
  return t;
}

const Entry* Manifest::find(std::string_view path) const {
  auto it = std::lower_bound(entries.begin(), entries.end(), path,
                             [](const Entry& e, std::string_view p) { return std::string_view(e.path) < p; });
  if (it != entries.end() && it->path == path) return &*it;
  return nullptr;
}

void Manifest::normalize() {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.path < b.path; });
  validate();
}

void Manifest::validate() const {
  if (!valid_channel(channel))
    throw Error(Errc::usage, "channel name '" + channel + "' is not valid",
                "use 1-64 letters, digits, '-' or '_'");
  if (version == 0) throw Error(Errc::usage, "manifest version must be 1 or more");
  if (expires <= created) throw Error(Errc::usage, "manifest must expire after it is created");
  if (entries.size() > kMaxEntries) throw Error(Errc::usage, "too many entries (" + std::to_string(entries.size()) + ")");
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    check_safe_path(e.path, "manifest entry");
    if (i > 0 && !(entries[i - 1].path < e.path)) {
      if (entries[i - 1].path == e.path)
        throw Error(Errc::unsafe_path, "manifest entry " + quote_path(e.path) + " appears twice",
                    "a tree cannot hold two files at one path; check the source");
      throw Error(Errc::internal, "manifest entries are not sorted (call normalize() first)");
    }
    if (e.size > kMaxEntrySize)
      throw Error(Errc::usage, "manifest entry " + quote_path(e.path) + " is larger than 1 PiB");
    if (e.mode & ~0777u)
      throw Error(Errc::usage, "manifest entry " + quote_path(e.path) + " has mode " + octal4(e.mode) +
                                   "; only permission bits (no setuid/setgid/sticky) are carried");
  }
}

std::string canonical_body(const Manifest& m) {
  m.validate();
  std::string out;
  out.reserve(200 + m.entries.size() * 120);
  out += kMagic;
  out += "\nchannel " + m.channel;
  out += "\nversion " + std::to_string(m.version);
  out += "\ncreated " + format_utc(m.created);
  out += "\nexpires " + format_utc(m.expires);
  out += "\nprevious " + (m.previous ? digest_hex(*m.previous) : std::string("none"));
  out += "\nentries " + std::to_string(m.entries.size()) + "\n";
  for (const Entry& e : m.entries) {
    out += digest_hex(e.digest);
    out += ' ';
    out += std::to_string(e.size);
    out += ' ';
    out += octal4(e.mode);
    out += ' ';
    out += encode_path(e.path);
    out += '\n';
  }
  out += "end\n";
  return out;
}

std::string sign_manifest(const Manifest& m, const SecretKey& key) {
  std::string file = canonical_body(m);
  Signature sig = sign_detached(key, file);
  file += "signature ed25519 " + digest_hex(key.public_key().key_id()) + " " + to_hex(sig) + "\n";
  return file;
}

namespace {

struct Parsed {
  SignedManifest sm;
  std::string_view body;
  Signature sig{};
};

Parsed parse_impl(std::string_view data, const std::string& name) {
  Lines in(data, name);
  if (data.empty()) in.fail("is empty");
  if (data.size() > kMaxManifestBytes) in.fail("is larger than 1 GiB");
  Parsed p;
  Manifest& m = p.sm.manifest;
  if (in.next("the header") != kMagic) in.fail("does not start with '" + std::string(kMagic) + "' (not a distd manifest, or a newer format)");
  m.channel = std::string(in.field("channel"));
  if (!valid_channel(m.channel)) in.fail_line("invalid channel name");
  auto version = parse_u64(in.field("version"));
  if (!version || *version == 0) in.fail_line("invalid version");
  m.version = *version;
  auto created = parse_utc(in.field("created"));
  if (!created) in.fail_line("invalid 'created' time (expected YYYY-MM-DDTHH:MM:SSZ)");
  m.created = *created;
  auto expires = parse_utc(in.field("expires"));
  if (!expires) in.fail_line("invalid 'expires' time (expected YYYY-MM-DDTHH:MM:SSZ)");
  m.expires = *expires;
  if (m.expires <= m.created) in.fail_line("expires before it was created");
  std::string_view prev = in.field("previous");
  if (prev != "none") {
    auto d = parse_digest_hex(prev);
    if (!d) in.fail_line("invalid previous-manifest digest");
    m.previous = *d;
  }
  auto count = parse_u64(in.field("entries"));
  if (!count || *count > kMaxEntries) in.fail_line("invalid entry count");
  // Each entry line is at least 64+1+1+1+4+1+1+1 bytes: a count the file cannot hold is a lie.
  if (*count > data.size() / 75) in.fail_line("entry count " + std::to_string(*count) + " is more than the file can hold (truncated?)");
  m.entries.reserve(*count);
  for (uint64_t i = 0; i < *count; ++i) {
    std::string_view line = in.next("entry " + std::to_string(i + 1) + " of " + std::to_string(*count));
    // <digest> <size> <mode> <path>
    if (line.size() < 64 + 1 + 1 + 1 + 4 + 1 + 1 || line[64] != ' ') in.fail_line("malformed entry");
    Entry e;
    auto d = parse_digest_hex(line.substr(0, 64));
    if (!d) in.fail_line("malformed digest");
    e.digest = *d;
    std::string_view rest = line.substr(65);
    size_t sp = rest.find(' ');
    if (sp == std::string_view::npos) in.fail_line("malformed entry");
    auto size = parse_u64(rest.substr(0, sp));
    if (!size) in.fail_line("malformed size");
    if (*size > kMaxEntrySize) in.fail_line("absurd size " + std::string(rest.substr(0, sp)) + " (over 1 PiB)");
    e.size = *size;
    rest = rest.substr(sp + 1);
    if (rest.size() < 6 || rest[4] != ' ') in.fail_line("malformed mode");
    uint32_t mode = 0;
    for (int k = 0; k < 4; ++k) {
      char c = rest[k];
      if (c < '0' || c > '7') in.fail_line("malformed mode");
      mode = mode * 8 + static_cast<uint32_t>(c - '0');
    }
    if (mode & ~0777u) in.fail_line("mode " + std::string(rest.substr(0, 4)) + " carries setuid/setgid/sticky bits");
    e.mode = mode;
    auto path = decode_path(rest.substr(5));
    if (!path) in.fail_line("path is not in canonical encoding");
    std::string why = unsafe_path_reason(*path);
    if (!why.empty())
      throw Error(Errc::unsafe_path,
                  "manifest " + name + " line " + std::to_string(in.line_no()) + ": path " + quote_path(*path) + " " + why,
                  "refused: a genuine manifest never names such a path; do not install from this source");
    if (!m.entries.empty() && !(m.entries.back().path < *path)) {
      if (m.entries.back().path == *path)
        throw Error(Errc::unsafe_path,
                    "manifest " + name + " line " + std::to_string(in.line_no()) + ": path " + quote_path(*path) +
                        " appears twice",
                    "refused: a genuine manifest lists each path once");
      in.fail_line("entries are not sorted by path");
    }
    e.path = std::move(*path);
    m.entries.push_back(std::move(e));
  }
  if (in.next("the 'end' line") != "end") in.fail_line("expected 'end' after " + std::to_string(*count) + " entries");
  p.body = data.substr(0, in.pos());
  std::string_view sig_line = in.next("the signature line");
  constexpr std::string_view kSigPrefix = "signature ed25519 ";
  if (sig_line.substr(0, kSigPrefix.size()) != kSigPrefix || sig_line.size() != kSigPrefix.size() + 64 + 1 + 128 ||
      sig_line[kSigPrefix.size() + 64] != ' ')
    in.fail_line("malformed signature line");
  auto kid = parse_digest_hex(sig_line.substr(kSigPrefix.size(), 64));
  if (!kid) in.fail_line("malformed key id");
  p.sm.key_id = *kid;
  if (!from_hex(sig_line.substr(kSigPrefix.size() + 65), p.sig.data(), p.sig.size())) in.fail_line("malformed signature");
  if (!in.at_end()) in.fail("has data after the signature line");
  p.sm.body_digest = digest_bytes(p.body);
  return p;
}

}  // namespace

SignedManifest parse_manifest(std::string_view file_bytes, const std::string& name) {
  return parse_impl(file_bytes, name).sm;
}

SignedManifest verify_manifest(std::string_view file_bytes, const PublicKey& key, const VerifyOptions& opts,
                               const std::string& name) {
  Parsed p = parse_impl(file_bytes, name);
  Digest want = key.key_id();
  auto short_of = [](const Digest& d) {
    std::string h = digest_hex(d).substr(0, 16);
    return h.substr(0, 4) + " " + h.substr(4, 4) + " " + h.substr(8, 4) + " " + h.substr(12, 4);
  };
  if (p.sm.key_id != want)
    throw Error(Errc::bad_signature,
                "manifest " + name + " is signed by key " + short_of(p.sm.key_id) + ", but this site trusts key " +
                    short_of(want),
                "it was not published by your HQ (or HQ changed its key): check the pinned public key; nothing was "
                "installed");
  if (!verify_detached(key, p.body, p.sig))
    throw Error(Errc::bad_signature, "manifest " + name + " has a bad signature: its content was altered after signing",
                "do not use it; fetch it again from HQ or a fresh bundle; nothing was installed");
  if (opts.check_expiry) {
    int64_t now = opts.now ? opts.now : static_cast<int64_t>(std::time(nullptr));
    if (now > p.sm.manifest.expires + opts.expiry_slack_seconds) {
      int64_t days = (now - p.sm.manifest.expires) / 86400;
      throw Error(Errc::expired,
                  "manifest " + name + " (channel " + p.sm.manifest.channel + ", version " +
                      std::to_string(p.sm.manifest.version) + ") expired on " + format_utc(p.sm.manifest.expires) +
                      " (" + std::to_string(days) + " days ago; allowed slack " +
                      std::to_string(opts.expiry_slack_seconds / 86400) + " days)",
                  "get a newer manifest from HQ or a fresh bundle; if this center was offline longer than the "
                  "slack, raise [regional] expiry_slack_days");
    }
  }
  return std::move(p.sm);
}

}  // namespace distd
