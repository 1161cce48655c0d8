#include "distd/io/zstd_stream.h"
#include "distd/bundle/importer_impl.h"

namespace distd::bundle::import_detail {

// The verified staged file for items[idx] waits for install_pending(), which runs every
// kInstallBatch* and before the import ends.
void Importer::queue_install(Ctx& c, size_t idx, const std::string& staged, bool by_delta) {
  PlanItem& p = c.items[idx];
  c.queued[idx] = true;
  c.pending.items.push_back(&p);
  c.pending.files.push_back({staged, p.path, p.mode});
  c.pending.by_delta.push_back(by_delta);
  ++pending_files_;
  pending_bytes_ += p.size;
}

void Importer::install_pending() {
  finish_placing();
  auto pl = std::make_unique<Placing>();
  for (auto& c : ctx_) {
    if (c->pending.items.empty()) continue;
    pl->batches.emplace_back(c.get(), std::move(c->pending));
    c->pending = Pending{};
  }
  pending_files_ = 0;
  pending_bytes_ = 0;
  if (pl->batches.empty()) return;
  pl->errs.resize(pl->batches.size());
  Placing* p = pl.get();
  pl->th = std::thread([p] {
    for (size_t k = 0; k < p->batches.size(); ++k) {
      try {
        place_verified(*p->batches[k].first->inst, p->batches[k].second.files);
      } catch (const Error& e) {
        p->errs[k] = std::current_exception();
        if (e.code() == Errc::no_space) break;
      } catch (...) {
        p->errs[k] = std::current_exception();
        break;
      }
    }
  });
  placing_ = std::move(pl);
}

void Importer::finish_placing() {
  if (!placing_) return;
  std::unique_ptr<Placing> pl = std::move(placing_);
  pl->th.join();
  for (size_t k = 0; k < pl->batches.size(); ++k) finish_batch(*pl->batches[k].first, pl->batches[k].second, pl->errs[k]);
}

// No separate 'verified' journal state: a crash before the batch commit leaves the items
// planned (some perhaps already in place, verified), and the next import installs them again.
void Importer::finish_batch(Ctx& c, Pending& batch, std::exception_ptr err) {
  if (batch.items.empty()) return;
  try {
    if (err) std::rethrow_exception(err);
    record_installed(*j_, c.ch->name, batch.items);
  } catch (const Error& e) {
    if (e.code() == Errc::no_space) throw;
    // One file could not be put in place (a symbolic link or a file where the new version has a
    // directory, ...): the others one by one, each refusal reported for its own path.
    for (size_t k = 0; k < batch.items.size(); ++k) {
      PlanItem& p = *batch.items[k];
      try {
        struct stat st {};
        if (::lstat(batch.files[k].staged.c_str(), &st) != 0 && c.inst->final_matches(p.path, p.digest, p.size)) {
          j_->set_state(c.ch->name, p, ItemState::installed);  // renamed before the group failed
        } else {
          install_verified(*c.inst, *j_, c.ch->name, {&p}, {batch.files[k]});
        }
      } catch (const Error& e1) {
        if (e1.code() == Errc::no_space) throw;
        problem(e1.code(), c.ch->name + ": '" + p.path + "': " + e1.what());
      }
    }
  }
  for (size_t k = 0; k < batch.items.size(); ++k) {
    if (batch.items[k]->state != ItemState::installed) continue;
    c.res.installed++;
    c.res.installed_bytes += batch.items[k]->size;
    if (batch.by_delta[k]) c.res.delta++;
  }
}

std::string Importer::decoded(const Item& it, const std::string& file, const std::string& suffix, uint64_t max,
                              const Digest* want) {
  const std::string raw = file + suffix;
  const std::string what = "item '" + it.pieces[0].member + "'";
  try {
    uint64_t n = 0;
    const Digest got = zstd_decode_file(file, raw, max, what, &n);
    if (want && (got != *want || n != it.target_size))
      throw Error(Errc::mismatch, what + " does not decode to its signed object");
  } catch (const Error& e) {
    discard_file(raw);
    discard_file(file);
    if (e.code() != Errc::mismatch) throw;
    problem(Errc::mismatch, std::string(e.what()) + ": refused, nothing installed from it");
    return {};
  }
  discard_file(file);
  return raw;
}

void Importer::on_complete(size_t i) {
  const Item& it = ix_.items[i];
  std::string file = rx_file(i);
  if (is_manifest_kind(it.kind)) return;  // read by prepare()
  if (it.kind == ItemKind::zpack) return unpack(it, file);
  // A stored zstd form (zobject, zdelta): decoded first, the object checked against its digest.
  if (it.kind == ItemKind::zobject || it.kind == ItemKind::zdelta) {
    const bool obj = it.kind == ItemKind::zobject;
    file = decoded(it, file, obj ? ".raw" : ".delta", obj ? it.target_size : delta_size_cap(it.target_size),
                   obj ? &it.target : nullptr);
    if (file.empty()) return;
  }
  if (it.kind == ItemKind::object) deliver(it, it.digest, it.size, file);
  else deliver(it, it.target, it.target_size, file);
}

void Importer::unpack(const Item& it, const std::string& file) {
  const std::string what = "item '" + it.pieces[0].member + "'";
  const size_t n = it.packed.size();
  auto member_file = [&](size_t k) { return file + "." + std::to_string(k); };
  std::vector<size_t> good;  // objects decoded whole and verified
  size_t k = 0;
  uint64_t got = 0;
  Hasher h;
  UniqueFd out;
  auto open_member = [&] {
    out = UniqueFd(::open(member_file(k).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!out) throw_errno("cannot create staged file", member_file(k), errno);
  };
  auto settle = [&] {  // ends the objects that are complete
    while (k < n && got == it.packed[k].size) {
      out = UniqueFd();
      if (h.finish() == it.packed[k].digest) good.push_back(k);
      else problem(Errc::mismatch, what + ": packed object " + digest_hex(it.packed[k].digest).substr(0, 16) +
                                       "... does not decode to its signed bytes: refused, nothing installed from it");
      h = Hasher();
      got = 0;
      if (++k < n) open_member();
    }
  };
  try {
    open_member();
    settle();
    ZstdDecoder dec;
    const ByteSink sink = [&](const char* p, size_t len) {
      while (len) {
        if (k == n) throw Error(Errc::mismatch, what + " decodes to more than its signed objects");
        const size_t take = static_cast<size_t>(std::min<uint64_t>(len, it.packed[k].size - got));
        write_all(out.get(), std::string_view(p, take), member_file(k));
        h.update(p, take);
        got += take, p += take, len -= take;
        settle();
      }
    };
    UniqueFd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) throw_errno("cannot open", file, errno);
    for (;;) {
      ssize_t r = ::read(in.get(), buf_.data(), buf_.size());
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) throw_errno("cannot read", file, errno);
      if (r == 0) break;
      dec.write(buf_.data(), static_cast<size_t>(r), sink, what);
    }
    if (k < n || !dec.at_frame_end()) throw Error(Errc::mismatch, what + " is cut short");
  } catch (const Error& e) {
    out = UniqueFd();
    if (e.code() != Errc::mismatch) {
      for (size_t m = 0; m <= std::min(k, n - 1); ++m) discard_file(member_file(m));
      discard_file(file);
      throw;
    }
    problem(Errc::mismatch, std::string(e.what()) + ": refused its objects not yet decoded (" +
                                std::to_string(n - good.size()) + " of " + std::to_string(n) + ")");
  }
  discard_file(file);
  for (size_t m = 0; m < n; ++m)
    if (std::find(good.begin(), good.end(), m) == good.end()) discard_file(member_file(m));
  for (size_t m : good) deliver(it, it.packed[m].digest, it.packed[m].size, member_file(m));
}

void Importer::deliver(const Item& it, const Digest& t, uint64_t object_size, const std::string& file) {
  const bool object = !is_delta_kind(it.kind);
  std::vector<std::pair<Ctx*, size_t>> todo;
  if (auto f = needs_.find(t); f != needs_.end())
    for (auto& n : f->second) {
      const PlanItem& p = n.first->items[n.second];
      if (p.state == ItemState::installed || n.first->queued[n.second]) continue;
      if (is_delta_kind(it.kind) && (p.action != Action::delta || p.basis_digest != it.basis)) continue;
      todo.push_back(n);
    }
  bool moved = false;  // the received file became the last consumer's staged file
  for (size_t n = 0; n < todo.size(); ++n) {
    Ctx& c = *todo[n].first;
    PlanItem& p = c.items[todo[n].second];
    try {
      if (object) {
        if (p.size != object_size) {
          problem(Errc::mismatch, "object " + digest_hex(t).substr(0, 16) + "... has " + std::to_string(object_size) +
                                      " bytes, the manifest signs " + std::to_string(p.size) + " for '" + p.path + "'");
          continue;
        }
        std::string staged = c.inst->staged("b" + std::to_string(p.ord) + ".bundle");
        bool last = n + 1 == todo.size();
        if (last && try_rename(file, staged) == 0) {
          moved = true;
        } else if (!copy_verified(file, staged, object_size, t)) {
          throw Error(Errc::mismatch, "'" + p.path + "': the staged copy changed", "import the bundle again");
        }
        queue_install(c, todo[n].second, staged, false);
      } else {
        std::string out = c.inst->staged("b" + std::to_string(p.ord) + ".patched");
        UniqueFd ofd(::open(out.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!ofd) throw_errno("cannot create staged file", out, errno);
        uint64_t written = 0;
        Digest d{};
        try {
          UniqueFd bfd = c.inst->open_in_tree(p.path);  // never through a link planted in the tree
          if (!bfd)
            throw Error(Errc::mismatch, "the old version is gone or is not a regular file (a link?)",
                        "import a bundle made without a basis for this site, or sync over the link");
          d = apply_delta(std::move(bfd), c.inst->final_path(p.path), file, ofd.get(), out, p.size, &written);
        } catch (const Error& e) {
          if (e.code() != Errc::mismatch) throw;
          discard_file(out);
          problem(Errc::mismatch, "'" + p.path + "': the delta from the bundle does not apply: " + e.what());
          continue;
        }
        if (written != p.size || d != p.digest) {
          discard_file(out);
          problem(Errc::mismatch, "'" + p.path + "': the delta did not produce the signed content (the local file "
                                                 "changed?): refused, the old file is untouched");
          continue;
        }
        queue_install(c, todo[n].second, out, true);
      }
    } catch (const Error& e) {
      if (e.code() == Errc::no_space || e.code() == Errc::io) throw;
      problem(e.code(), std::string(c.ch->name) + ": '" + p.path + "': " + e.what());
    }
  }
  if (!moved) discard_file(file);
  if (pending_files_ >= kInstallBatchFiles || pending_bytes_ >= kInstallBatchBytes) install_pending();
}

}  // namespace distd::bundle::import_detail
