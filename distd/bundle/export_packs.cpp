#include "distd/bundle/export_packs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "distd/hq/batch_stream.h"
#include "manifest/digest.h"
#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd::bundle::export_detail {

namespace {

// A small object that compresses: one with a stored zstd form (publish judged it), or, under
// kStoredZstdMin (or when HQ stores no forms), one whose first bytes do. Incompressible ones
// (photos, archives) stay items of their own: packing them would save only their tar headers.
bool packable(const Cand& c, const hq::ObjectStore& store, const PackSettings& ps) {
  if (c.mandatory) return false;
  if (c.item.kind == ItemKind::zobject) return c.item.target_size <= kPackObjectMax;
  if (c.item.kind != ItemKind::object || c.item.size > kPackObjectMax) return false;
  const std::string path = store.path_of(c.item.digest);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;  // the export reports it when it copies the object
  return hq::object_compresses(fd.get(), path, c.item.size, ps.forms_stored).value_or(false);
}

// Bytes c takes on the stick: its tar member and its index lines (about 250 bytes).
uint64_t stick_cost(const Item& it) { return tar_member_bytes(it.size) + 250; }

// The zpack item of run (its objects, in order), written to file; nullptr when it does not pay.
std::unique_ptr<Cand> make_pack(const std::vector<Cand*>& run, const std::string& file, const hq::ObjectStore& store,
                                const PackSettings& ps) {
  auto p = std::make_unique<Cand>();
  Item& it = p->item;
  it.kind = ItemKind::zpack;
  std::vector<std::pair<std::string, uint64_t>> files;
  uint64_t alone = 0;
  for (const Cand* c : run) {
    const bool z = c->item.kind == ItemKind::zobject;
    Item::Packed m{z ? c->item.target : c->item.digest, z ? c->item.target_size : c->item.size};
    it.packed.push_back(m);
    it.target_size += m.size;
    files.emplace_back(store.path_of(m.digest), m.size);
    alone += stick_cost(c->item);
    p->serves.insert(p->serves.end(), c->serves.begin(), c->serves.end());
  }
  p->priority = run.front()->priority;
  p->sort_size = it.target_size;
  p->sort_path = run.front()->sort_path;
  p->source = file;

  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) throw_errno("cannot create", file, errno);
  Hasher h;
  uint64_t n = 0;
  ByteSink out = [&](const char* b, size_t len) {
    write_all(fd.get(), std::string_view(b, len), file);
    h.update(b, len);
    n += len;
  };
  hq::BatchStream stream(std::move(files), ps.level, ps.forms_stored);
  for (int r; (r = stream.pump(out)) != 0;)
    if (r < 0)
      throw Error(Errc::mismatch, "an object of the pack '" + file + "' is missing or shorter in HQ's store",
                  "check HQ's store (republish to repair), then export again");
  it.size = n;
  it.digest = h.finish();
  // Its tar member and index lines (about 80 bytes per object) against the objects' own.
  if (stick_cost(it) + 80 * run.size() >= alone) {
    fd = UniqueFd();
    discard_file(file);
    return nullptr;
  }
  return p;
}

}  // namespace

void pack_small_objects(std::vector<Cand*>& order, std::vector<std::unique_ptr<Cand>>& owned,
                        const hq::ObjectStore& store, const PackSettings& ps, ExportResult& res) {
  if (ps.level <= 0) return;
  // At most a quarter of a volume: a pack is never split (an item of 1 MiB or less starts the
  // next volume whole), so a stick pulled during export loses at most the pack being written.
  const uint64_t max_content = std::min(kPackContentMax, ps.volume_size / 4);
  // Each pack takes the place of its first object: the deltas and incompressible objects between
  // its objects (in size order) stay where they were.
  std::vector<Cand*> out;
  struct Open {
    size_t at = 0;  // its place in out
    std::vector<Cand*> run;
    uint64_t bytes = 0;
  };
  std::optional<Open> open[2];  // priority, not
  auto close = [&](std::optional<Open>& o) {
    if (!o) return;
    std::unique_ptr<Cand> p;
    if (o->run.size() >= 2)
      p = make_pack(o->run, ps.scratch + "/pack-" + std::to_string(res.packs + 1) + ".zst", store, ps);
    if (p) {
      out[o->at] = p.get();
      res.packs++;
      res.packed_objects += o->run.size();
      res.packed_content_bytes += p->item.target_size;
      owned.push_back(std::move(p));
    } else {  // its objects where they were: the first in its place, the others after it
      out[o->at] = o->run[0];
      out.insert(out.begin() + static_cast<std::ptrdiff_t>(o->at) + 1, o->run.begin() + 1, o->run.end());
      for (auto& other : open)
        if (other && other->at > o->at) other->at += o->run.size() - 1;
    }
    o.reset();
  };
  for (Cand* c : order) {
    if (!packable(*c, store, ps)) {
      out.push_back(c);
      continue;
    }
    std::optional<Open>& o = open[c->priority ? 0 : 1];
    const uint64_t size = c->item.kind == ItemKind::zobject ? c->item.target_size : c->item.size;
    if (o && (o->bytes + size > max_content || o->run.size() == kMaxPackObjects)) close(o);
    if (!o) {
      o.emplace();
      o->at = out.size();
      out.push_back(nullptr);  // the pack's place
    }
    o->run.push_back(c);
    o->bytes += size;
  }
  close(open[0]);
  close(open[1]);
  order = std::move(out);
}

}  // namespace distd::bundle::export_detail
