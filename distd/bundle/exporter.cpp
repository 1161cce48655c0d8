#include "distd/bundle/exporter.h"
#include "distd/bundle/hooks.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <set>
#include <unordered_map>

#include "distd/bundle/bundle_writer.h"
#include "distd/bundle/export_packs.h"
#include "distd/bundle/export_side_files.h"
#include "distd/bundle/manifest_delta.h"
#include "distd/bundle/request.h"
#include "distd/hq/stored_zstd.h"
#include "distd/hq/delta_service.h"
#include "distd/hq/object_store.h"
#include "distd/hq/publisher.h"
#include "distd/hq/settings.h"
#include "distd/delta/rsync.h"
#include "distd/regional/planner.h"
#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/fs.h"
#include "manifest/key_record.h"

namespace distd::bundle {

namespace {

using export_detail::Cand;

// Assigns pieces and volumes to cands in order. Returns the exact size of each volume.
std::vector<uint64_t> layout(const std::vector<Cand*>& order, uint64_t volume_size) {
  std::vector<uint64_t> vols;
  const uint64_t cap = volume_size - kTarEndBytes;
  const uint64_t header = tar_member_bytes(1);  // the volume header member
  uint64_t used = header;
  auto close_volume = [&] {
    vols.push_back(used + kTarEndBytes);
    used = header;
  };
  for (Cand* c : order) {
    Item& it = c->item;
    it.pieces.clear();
    uint64_t off = 0;
    for (;;) {
      uint64_t rest = it.size - off;
      uint64_t free = cap - used;
      if (tar_member_bytes(rest) <= free) {
        it.pieces.push_back(Piece{static_cast<uint32_t>(vols.size() + 1), off, rest, {}, {}});
        used += tar_member_bytes(rest);
        break;
      }
      // Small items move to the next volume whole; big ones fill this volume's end.
      bool empty = used == header;
      uint64_t fit = free > 1024 ? (free - 512) / 512 * 512 : 0;
      if (!empty && (it.size <= (uint64_t(1) << 20) || fit < (uint64_t(64) << 10))) {
        close_volume();
        continue;
      }
      it.pieces.push_back(Piece{static_cast<uint32_t>(vols.size() + 1), off, fit, {}, {}});
      used += 512 + fit;
      off += fit;
      close_volume();
    }
    for (size_t k = 0; k < it.pieces.size(); ++k) it.pieces[k].member = Index::member_name(it, k);
  }
  if (used > header || vols.empty()) close_volume();
  return vols;
}

constexpr uint64_t kSignatureLineBytes = 18 + 64 + 1 + 128 + 1;

uint64_t exact_total(Index& ix, const std::vector<Cand*>& order) {
  ix.items.clear();
  for (Cand* c : order) ix.items.push_back(c->item);
  uint64_t t = render_index_body(ix).size() + kSignatureLineBytes;
  for (auto b : ix.volume_bytes) t += b;
  return t;
}

// Digests of byte ranges of a file (the pieces of a split item).
void hash_pieces(Item& it, const std::string& source) {
  UniqueFd fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("cannot open", source, errno);
  std::vector<char> buf(1 << 20);
  for (auto& p : it.pieces) {
    Hasher h;
    uint64_t left = p.size, off = p.offset;
    while (left) {
      ssize_t n = ::pread(fd.get(), buf.data(), std::min<uint64_t>(left, buf.size()), static_cast<off_t>(off));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw Error(Errc::mismatch, "'" + source + "' is shorter than its recorded size", "check HQ's store");
      h.update(buf.data(), static_cast<size_t>(n));
      left -= static_cast<uint64_t>(n);
      off += static_cast<uint64_t>(n);
    }
    p.digest = h.finish();
  }
}

bool held_has(const std::vector<std::array<uint8_t, kHeldPrefixBytes>>& held, const Digest& d) {
  std::array<uint8_t, kHeldPrefixBytes> k{};
  std::copy_n(d.begin(), kHeldPrefixBytes, k.begin());
  return std::binary_search(held.begin(), held.end(), k);
}

std::optional<SignedManifest> load_manifest(const hq::Layout& L, const std::string& ch, uint64_t v) {
  std::string p = L.manifest(ch, v);
  struct stat st {};
  if (v == 0 || ::stat(p.c_str(), &st) != 0) return std::nullopt;
  return parse_manifest(read_file(p, kMaxManifestBytes, "manifest"), p);
}

// A channel to bring, and what the center has of it.
struct Want {
  const ChannelConfig* ch;
  uint64_t from = 0;
  std::string from_digest = "-";
  const RequestChannel* rc = nullptr;
};

// Returns the channels to bring: opts.channel or all of HQ's, and of those only the ones the
// request asks for. Throws Error{not_found} when opts.channel is not among them; a channel the
// request names that HQ does not publish is a warning in res.
std::vector<Want> wanted_channels(const Config& cfg, const ExportOptions& opts, const std::optional<Request>& req,
                                  ExportResult& res) {
  std::vector<Want> wants;
  for (const auto& ch : cfg.channels) {
    if (!opts.channel.empty() && ch.name != opts.channel) continue;
    Want w{&ch};
    if (req) {
      auto it = std::find_if(req->channels.begin(), req->channels.end(), [&](auto& c) { return c.name == ch.name; });
      if (it == req->channels.end()) continue;  // the center does not receive it
      w.rc = &*it;
      w.from = it->installed_version;
      w.from_digest = it->installed_digest;
    } else if (opts.since) {
      w.from = *opts.since;
    }
    wants.push_back(w);
  }
  if (!opts.channel.empty() && wants.empty()) {
    cfg.channel(opts.channel);  // throws not_found listing the names
    throw Error(Errc::not_found, "the request does not ask for channel '" + opts.channel + "'",
                "export without --channel, or make a request at a center that receives it");
  }
  if (req)
    for (auto& c : req->channels)
      if (std::none_of(cfg.channels.begin(), cfg.channels.end(), [&](auto& x) { return x.name == c.name; }))
        res.warnings.push_back("the request names channel '" + c.name + "', which HQ does not publish");
  return wants;
}

using HeldPrefixes = std::vector<std::array<uint8_t, kHeldPrefixBytes>>;

// The items a bundle could bring, gathered channel by channel: each content digest comes once,
// noting every entry it serves. Adds each channel's span to ix and counts what it finds into res.
struct Gatherer {
  Gatherer(const hq::ObjectStore& s, hq::DeltaService& d, const std::set<std::string>& p, const ExportOptions& o,
           ExportResult& r, Index& i)
      : store(s), L(s.layout()), deltas(d), priority(p), opts(o), res(r), ix(i) {}

  const hq::ObjectStore& store;
  const hq::Layout& L;
  hq::DeltaService& deltas;
  const std::set<std::string>& priority;
  const ExportOptions& opts;
  ExportResult& res;
  Index& ix;
  std::vector<std::unique_ptr<Cand>> cands;
  std::unordered_map<std::string, Cand*> by_digest;  // content digests already brought
  // What the center holds in any of its channels (the request's held summaries, merged): content
  // there is not brought again, the import copies it from that channel's tree.
  HeldPrefixes held_anywhere;

  // Adds what the center lacks of w's channel: the manifests after its version, then an object
  // or delta for each entry of the latest it does not hold. Throws Error{not_found} for a version
  // --since that HQ does not have.
  void add_channel(const Want& w);
  // Adds manifest versions first..last of channel ch, each as it was signed; a version retired
  // by [hq] keep_versions is skipped.
  // held: HQ's copy of the center's version w.from (none when HQ no longer has it).
  void add_manifests(const std::string& ch, uint64_t first, uint64_t last, const Want& w,
                     const std::optional<SignedManifest>& held);
  std::string scratch;  // where manifest deltas are written for the volumes (removed after the export)
  // Returns what the center holds of w's channel: its request's digest summary, or the entries of
  // version --since (old). Drops old when the center's version is not HQ's.
  HeldPrefixes held_by_center(const Want& w, std::optional<SignedManifest>& old);
  // Adds entry e of channel ch unless the center holds it or another entry brings its content:
  // a delta against old's entry at its path when that pays, else its object.
  void add_entry(const std::string& ch, const Entry& e, const HeldPrefixes& held,
                 const std::optional<SignedManifest>& old);
  // Makes c a librsync delta from base to e when one pays for itself; a failure is logged and c
  // stays as it was (the whole file goes instead).
  void try_delta(Cand& c, const std::string& ch, const Entry& e, const Entry& base);
  // Makes object item c a zobject when HQ stores a smaller zstd form of it.
  void carry_compressed(Cand& c);
  void log(const std::string& s) const {
    if (opts.log) opts.log(s);
  }
};

void Gatherer::add_channel(const Want& w) {
  const std::string& ch = w.ch->name;
  auto latest = hq::read_latest_manifest(L, ch);
  if (!latest) {
    res.warnings.push_back("channel '" + ch + "' has no published version yet: nothing to bring");
    return;
  }
  const Manifest& m = latest->manifest;
  if (w.from > m.version && !w.rc)
    throw Error(Errc::not_found,
                "channel '" + ch + "' has no version " + std::to_string(w.from) + " (HQ's latest is " +
                    std::to_string(m.version) + ")",
                "check --since: it is the version the center has installed ('distctl status' there)");
  if (w.from > m.version) {
    res.warnings.push_back("channel '" + ch + "': the center has version " + std::to_string(w.from) +
                           ", newer than HQ's latest " + std::to_string(m.version) + "; nothing brought");
    return;
  }
  ix.channels.push_back(ChannelSpan{ch, w.from, m.version});
  if (w.from == m.version) return;  // up to date

  // HQ's copy of the center's version, read once: the first manifest delta's basis, and what the
  // center holds (with its request's digest summary) and the file deltas' bases.
  std::optional<SignedManifest> old = load_manifest(L, ch, w.from);

  // Manifests: from the center's version (exclusive) to the latest, each as it was signed.
  add_manifests(ch, w.from == 0 ? m.version : w.from + 1, m.version, w, old);

  // What the center holds: its request's digest summary, or version --since.
  const HeldPrefixes held = held_by_center(w, old);
  if (!old && w.from) log(ch + ": HQ no longer has the center's version " + std::to_string(w.from) + "; no deltas");

  for (const auto& e : m.entries) add_entry(ch, e, held, old);
}

void Gatherer::add_manifests(const std::string& ch, uint64_t first, uint64_t last, const Want& w,
                             const std::optional<SignedManifest>& held) {
  // The file of the version before v as the center will hold it when it reads v: its installed
  // one (HQ's file of it, when its body digest is what the request says), then each version of
  // this bundle. A version retired at HQ breaks the chain: the next goes whole.
  std::optional<std::string> before;
  if (w.from != 0 && first == w.from + 1)
    if (held && digest_hex(held->body_digest) == w.from_digest)
      before = read_file(L.manifest(ch, w.from), kMaxManifestBytes, "manifest");
  for (uint64_t v = first; v <= last; ++v) {
    std::string p = L.manifest(ch, v);
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {  // retired by [hq] keep_versions
      before.reset();
      continue;
    }
    std::string bytes = read_file(p, kMaxManifestBytes, "manifest");
    auto c = std::make_unique<Cand>();
    c->item.kind = ItemKind::manifest;
    c->item.channel = ch;
    c->item.version = v;
    c->item.digest = digest_bytes(bytes);
    c->item.size = bytes.size();
    c->source = p;
    c->mandatory = true;
    if (std::optional<std::string> z = before ? manifest_delta_bytes(*before, bytes) : std::nullopt) {
      c->item.kind = ItemKind::mpatch;
      c->item.basis_version = v - 1;
      c->item.target = c->item.digest;
      c->item.target_size = c->item.size;
      c->item.digest = digest_bytes(*z);
      c->item.size = z->size();
      c->source = scratch + "/" + ch + "." + std::to_string(v) + ".mpatch";
      write_file_atomic(c->source, *z, 0600);
      res.manifest_deltas++;
    }
    before = std::move(bytes);
    cands.push_back(std::move(c));
    res.manifests++;
  }
}

HeldPrefixes Gatherer::held_by_center(const Want& w, std::optional<SignedManifest>& old) {
  const std::string& ch = w.ch->name;
  HeldPrefixes held;
  if (w.rc) {
    held = w.rc->held;
    if (old && digest_hex(old->body_digest) != w.from_digest) {
      res.warnings.push_back("channel '" + ch + "': the center's version " + std::to_string(w.from) +
                             " is not HQ's; no deltas against it");
      old.reset();
    }
  } else if (w.from) {
    if (!old)
      throw Error(Errc::not_found,
                  "HQ no longer has version " + std::to_string(w.from) + " of channel '" + ch +
                      "' ([hq] keep_versions), so it cannot tell what a center at that version lacks",
                  "export with a request from the center, or without --since (everything)");
    for (auto& e : old->manifest.entries) {
      std::array<uint8_t, kHeldPrefixBytes> k{};
      std::copy_n(e.digest.begin(), kHeldPrefixBytes, k.begin());
      held.push_back(k);
    }
    std::sort(held.begin(), held.end());
  }
  return held;
}

void Gatherer::add_entry(const std::string& ch, const Entry& e, const HeldPrefixes& held,
                         const std::optional<SignedManifest>& old) {
  Omitted serve{ch, e.path, e.size, e.digest};
  if (held_has(held, e.digest)) {
    res.held_entries++;
    return;
  }
  if (held_has(held_anywhere, e.digest)) {
    res.held_entries++;
    res.held_elsewhere_entries++;
    return;
  }
  std::string hex = digest_hex(e.digest);
  if (auto f = by_digest.find(hex); f != by_digest.end()) {
    res.shared_entries++;
    f->second->serves.push_back(serve);
    f->second->priority = f->second->priority || is_priority(e.path, priority);
    return;
  }
  auto c = std::make_unique<Cand>();
  c->priority = is_priority(e.path, priority);
  c->sort_size = e.size;
  c->sort_path = ch + "/" + e.path;
  c->serves.push_back(serve);
  // A librsync delta against the old version at the same path, when the center has it.
  const Entry* base = old ? old->manifest.find(e.path) : nullptr;
  if (base && base->digest != e.digest && e.size >= kDeltaMinSize && base->size >= kDeltaMinSize &&
      held_has(held, base->digest) && store.contains(base->digest, base->size))
    try_delta(*c, ch, e, *base);
  if (c->item.kind != ItemKind::delta && c->item.kind != ItemKind::zdelta) {
    if (!store.contains(e.digest, e.size)) {
      res.warnings.push_back("channel '" + ch + "': object " + hex + " of '" + e.path +
                             "' is missing from HQ's store; left out (republish to repair)");
      res.omitted.push_back(serve);
      res.omitted_bytes += e.size;
      return;
    }
    c->item.kind = ItemKind::object;
    c->item.digest = e.digest;
    c->item.size = e.size;
    c->source = store.path_of(e.digest);
    carry_compressed(*c);
  }
  by_digest.emplace(hex, c.get());
  cands.push_back(std::move(c));
}

// An object with a stored zstd form at HQ travels as that form (a zobject item): hashed here, as
// the index signs every item's bytes.
void Gatherer::carry_compressed(Cand& c) {
  const std::string form = hq::zstd_form(c.source);
  struct stat st {};
  if (::stat(form.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) >= c.item.size)
    return;
  uint64_t n = 0;
  Digest d = digest_file(form, &n);
  c.item.kind = ItemKind::zobject;
  c.item.target = c.item.digest;
  c.item.target_size = c.item.size;
  c.item.digest = d;
  c.item.size = n;
  c.source = form;
}

void Gatherer::try_delta(Cand& c, const std::string& ch, const Entry& e, const Entry& base) {
  try {
    std::string sig = make_signature(store.path_of(base.digest));
    hq::DeltaInfo di = deltas.get_or_compute(e.digest, sig);
    // Declined (it cannot pay, or no room): nothing was stored, the object goes instead.
    if (di.outcome != hq::DeltaOutcome::ready) return;
    // Its stored zstd form when HQ has one (a zdelta item), else the delta as it is.
    const bool form = di.zsize > 0 && di.zsize < di.size;
    if (!delta_pays(form ? di.zsize : di.size, sig.size(), e.size)) return;
    const std::string source = form ? hq::zstd_form(L.delta(di.id)) : L.delta(di.id);
    uint64_t n = 0;
    const Digest d = digest_file(source, &n);  // before c changes: a failure leaves it whole
    c.item.kind = form ? ItemKind::zdelta : ItemKind::delta;
    c.item.delta_id = di.id;
    c.item.basis = base.digest;
    c.item.target = e.digest;
    c.item.target_size = e.size;
    c.source = source;
    c.item.digest = d;
    c.item.size = n;
  } catch (const Error& err) {
    log(ch + ": '" + e.path + "': no delta (" + err.what() + "); the whole file goes instead");
  }
}

// Returns cands in the order they go on the stick: manifests, then like sync: priority first,
// then small files first (then by path).
std::vector<Cand*> export_order(const std::vector<std::unique_ptr<Cand>>& cands) {
  std::vector<Cand*> order;
  for (auto& c : cands) order.push_back(c.get());
  std::stable_sort(order.begin(), order.end(), [](const Cand* a, const Cand* b) {
    if (a->mandatory != b->mandatory) return a->mandatory;
    if (a->mandatory) return false;
    if (a->priority != b->priority) return a->priority;
    if (a->sort_size != b->sort_size) return a->sort_size < b->sort_size;
    return a->sort_path < b->sort_path;
  });
  return order;
}

// --max-size, first cut: returns the candidates of order that fit opts.max_size by a safe (high)
// estimate, manifests always; the others go to *left_out, in order.
std::vector<Cand*> greedy_choice(const std::vector<Cand*>& order, const ExportOptions& opts,
                                 std::vector<Cand*>* left_out) {
  std::vector<Cand*> chosen;
  uint64_t est = 4096 + 3 * 1024;  // index head, signature, first volume's header and end
  for (Cand* c : order) {
    uint64_t cost = tar_member_bytes(c->item.size) + 512 + 400 + 300 * (c->item.size / opts.volume_size + 1);
    cost += (c->item.size / opts.volume_size + 1) * 2048;  // volumes it may open
    if (c->mandatory || est + cost <= opts.max_size) {
      chosen.push_back(c);
      est += cost;
    } else {
      left_out->push_back(c);
    }
  }
  return chosen;
}

// Lists the entries the candidates of left_out serve in res.omitted and ix.omitted.
void set_omitted(const std::vector<Cand*>& left_out, Index& ix, ExportResult& res) {
  res.omitted.clear();
  res.omitted_bytes = 0;
  for (Cand* c : left_out)
    for (auto& sv : c->serves) {
      res.omitted.push_back(sv);
      res.omitted_bytes += sv.size;
    }
  ix.omitted = res.omitted;
}

// Lays chosen out in volumes (ix.volume_bytes), moving its last candidates to left_out until the
// bundle's exact size fits opts.max_size (0: no limit). Returns that size. Throws Error{usage}
// when not even the manifests fit.
uint64_t trim_to_fit(Index& ix, std::vector<Cand*>& chosen, std::vector<Cand*>& left_out, const ExportOptions& opts,
                     ExportResult& res) {
  for (;;) {
    set_omitted(left_out, ix, res);
    ix.volume_bytes = layout(chosen, opts.volume_size);
    uint64_t total = exact_total(ix, chosen);
    if (!opts.max_size || total <= opts.max_size) return total;
    if (chosen.empty() || chosen.back()->mandatory)
      throw Error(Errc::usage,
                  "--max-size " + human_bytes(opts.max_size) + " is too small even for the manifests (" +
                      human_bytes(total) + ")",
                  "use a bigger stick");
    left_out.push_back(chosen.back());
    chosen.pop_back();
  }
}

// Gives each chosen item its piece digests (hashing the pieces of a split one), counts it into
// res, and makes the chosen items the index's.
void seal_items(const std::vector<Cand*>& chosen, Index& ix, ExportResult& res) {
  for (Cand* c : chosen) {
    if (c->item.pieces.size() == 1)
      c->item.pieces[0].digest = c->item.digest;
    else
      hash_pieces(c->item, c->source);
    if (c->item.kind == ItemKind::object || c->item.kind == ItemKind::zobject) res.objects++, res.object_bytes += c->item.size;
    if (c->item.kind == ItemKind::zobject) res.zstd_objects++, res.zstd_object_content_bytes += c->item.target_size;
    if (c->item.kind == ItemKind::zpack) res.objects += c->item.packed.size(), res.object_bytes += c->item.size;
    if (c->item.kind == ItemKind::delta || c->item.kind == ItemKind::zdelta)
      res.deltas++, res.delta_bytes += c->item.size, res.delta_target_bytes += c->item.target_size;
  }
  ix.items.clear();
  for (Cand* c : chosen) ix.items.push_back(c->item);
}

}  // namespace

using namespace export_detail;

ExportResult export_bundle(const Config& cfg, const std::string& dir, const ExportOptions& opts) {
  cfg.require_role("hq", "bundles are exported at HQ");
  if (opts.volume_size < kMinVolumeSize || opts.volume_size > kFatMaxFile)
    throw Error(Errc::usage, "volume size " + std::to_string(opts.volume_size) + " is out of range",
                "use between 64k and 4G-1 (FAT32's limit); the default is 3.9G");
  if (!opts.request_path.empty() && opts.since)
    throw Error(Errc::usage, "--request and --since do not go together", "the request says which version the center has");
  auto log = [&](const std::string& s) {
    if (opts.log) opts.log(s);
  };
  hq::HqSettings hs = hq::hq_settings(cfg);
  if (hs.secret_key.empty())
    throw Error(Errc::usage, "config " + cfg.file + ": [hq] secret_key is not set; bundles are signed with it",
                "set [hq] secret_key to the path of HQ's secret key");
  SecretKey sk = load_secret_key(cfg.resolve(hs.secret_key));
  hq::ObjectStore store(cfg.state_dir);
  ExportResult res;
  res.dir = dir;

  std::optional<Request> req;
  std::string req_digest = "-";
  if (!opts.request_path.empty()) {
    req = read_verified_request(cfg, opts.request_path, &req_digest);
    res.site = req->site;
    res.request_report = req->report;
    log("request from site '" + req->site + "' verified (made " + format_utc(req->created) + ")");
  }

  // Which channels, and what the center has of each.
  const std::vector<Want> wants = wanted_channels(cfg, opts, req, res);

  std::set<std::string> priority;
  if (req) priority.insert(req->priority.begin(), req->priority.end());
  hq::DeltaService deltas(cfg.state_dir, 1, hs.delta_cache_bytes, hs.compression_level);
  Index ix;
  ix.bundle_id = random_id_hex(16);
  ix.created = static_cast<int64_t>(std::time(nullptr));
  ix.site = res.site;
  ix.request = req_digest;
  ix.volume_size = opts.volume_size;

  Gatherer gather(store, deltas, priority, opts, res, ix);
  // Manifest deltas are made here and copied into the volumes; nothing of it outlives the export.
  struct Scratch {
    std::string dir;
    ~Scratch() {
      try {
        remove_tree(dir);
      } catch (...) {
      }
    }
  } scratch{cfg.state_dir + "/bundle-scratch-" + ix.bundle_id};
  for (const auto& name : list_dir(cfg.state_dir)) {  // left by an export that was killed
    struct stat st {};
    const std::string p = cfg.state_dir + "/" + name;
    if (name.rfind("bundle-scratch-", 0) == 0 && ::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode) &&
        st.st_mtime + 86400 < ix.created)
      remove_tree(p);
  }
  make_dirs(scratch.dir, 0700);
  gather.scratch = scratch.dir;
  if (req) {
    for (const auto& rc : req->channels) gather.held_anywhere.insert(gather.held_anywhere.end(), rc.held.begin(), rc.held.end());
    std::sort(gather.held_anywhere.begin(), gather.held_anywhere.end());
    gather.held_anywhere.erase(std::unique(gather.held_anywhere.begin(), gather.held_anywhere.end()),
                               gather.held_anywhere.end());
  }
  for (const auto& w : wants) gather.add_channel(w);

  // Order: manifests, then like sync: priority first, then small files first; runs of small
  // objects packed into one zstd stream each.
  std::vector<Cand*> order = export_order(gather.cands);
  pack_small_objects(order, gather.cands, store, {hs.batch_compression_level, hs.compression_level > 0, scratch.dir, opts.volume_size},
                     res);

  // --max-size: greedy by that order with a safe estimate, then exact trimming.
  std::vector<Cand*> left_out;
  std::vector<Cand*> chosen = opts.max_size ? greedy_choice(order, opts, &left_out) : order;
  res.bytes = trim_to_fit(ix, chosen, left_out, opts, res);
  seal_items(chosen, ix, res);
  res.bundle_id = ix.bundle_id;
  res.channels = ix.channels;
  res.volumes = static_cast<uint32_t>(ix.volume_bytes.size());

  // Outbound items the center sent along (the sealed forum posts): verified and kept per site.
  std::vector<std::string> received;
  if (req && !req->outbound.empty()) received = receive_outbound(cfg, opts.request_path, *req, res);

  // Plug-ins answer what came along (the forum: its answers for this site, sealed to it).
  std::vector<StickFile> extras;
  if (req) extras = run_export_hooks(cfg, *req, received, res);

  // Write: HQ's key records and the signed index first (a stick pulled later still says what is
  // missing), then the volumes in order, each member checked against its digest as it is copied.
  const std::vector<std::string> key_records = stick_key_records(store.layout(), sk.public_key(), res);
  if (!key_records.empty())
    log("HQ's key records 2.." + std::to_string(key_records.size() + 1) + " go along (" + kKeysDir + "/)");
  const uint64_t done = write_index(dir, ix, sk, key_records, extras, &res.extra_files);
  if (opts.progress) opts.progress(done, res.bytes);
  BundleVolumeWriter volumes(dir, ix, opts.progress, done, res.bytes);
  for (const Cand* c : chosen) volumes.write_item(c->item, c->source);
  volumes.finish();
  fsync_dir(dir);
  if (opts.progress) opts.progress(res.bytes, res.bytes);
  return res;
}

}  // namespace distd::bundle
