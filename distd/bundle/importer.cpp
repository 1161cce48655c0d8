#include "distd/bundle/importer.h"
#include "distd/bundle/manifest_delta.h"

#include "distd/bundle/importer_impl.h"
#include "distd/regional/freshness.h"
#include "distd/bundle/hooks.h"
#include "distd/regional/other_channels.h"
#include "distd/regional/trust.h"
#include "manifest/key_record.h"

namespace distd::bundle {

namespace import_detail {

TrustedKey follow_stick_keys(const Config& cfg, const std::string& dir, const LogLineFn& log) {
  TrustedKey tk = trusted_hq_key(cfg, regional_pinned_key(cfg), log);
  for (uint64_t n = 0; n < kMaxStickKeyRecords; ++n) {
    std::string p = stick_key_record(dir, tk.version + 1);
    if (!exists_path(p)) break;
    follow_key_record(cfg, tk, read_file(p, kMaxKeyRecordBytes, "key record"), p);
    log("HQ's signing key is now " + tk.key.short_id() + " (key record " + std::to_string(tk.version) +
        ", from the stick)");
  }
  return tk;
}

namespace {

// Parses the index with tk.key. An index signed by a key tk followed past (the bundle was made
// before HQ changed its key) is refused with a message that says so.
Index parse_trusted_index(const std::string& bytes, const TrustedKey& tk, const std::string& path) {
  try {
    return parse_index(bytes, tk.key, path);
  } catch (const Error& e) {
    if (e.code() != Errc::bad_signature) throw;
    for (size_t i = 0; i + 1 < tk.chain.size(); ++i) {
      try {
        (void)parse_index(bytes, tk.chain[i], path);
      } catch (const Error&) {
        continue;
      }
      throw Error(Errc::bad_signature,
                  "bundle index " + path + " is signed by HQ's old key " + tk.chain[i].short_id() +
                      ", which key record " + std::to_string(i + 2) + " replaced; this center trusts only HQ's key " +
                      tk.key.short_id() + " now (the bundle was made before HQ changed its key)",
                  "nothing was installed; export a new bundle at HQ");
    }
    throw;
  }
}

}  // namespace

ImportResult Importer::run() {
  cfg_.require_role("regional", "bundles are imported at a regional center");
  settings_ = RegionalSettings::offline(cfg_);
  const RegionalSettings& rs = settings_;
  slack_ = rs.expiry_slack_days * 86400;
  staging_ = rs.staging_dir;
  modes_ = rs.file_modes;
  expiry_warning_days_ = rs.expiry_warning_days;
  res_.dir = dir_;

  std::string index_path = dir_ + "/" + kIndexFile;
  if (!exists_path(index_path))
    throw Error(Errc::not_found, "no distd bundle in " + dir_ + " (" + kIndexFile + " is missing)",
                "check the directory; a bundle is made at HQ with 'distctl bundle export'");
  StateLock lock(cfg_.state_dir);
  // HQ's key records on the stick first: the index and manifests are signed by HQ's key now.
  const TrustedKey tk = follow_stick_keys(cfg_, dir_, [this](const std::string& s) { log(s); });
  hq_key_ = tk.key;
  ix_ = parse_trusted_index(read_file(index_path, kMaxIndexBytes, "bundle index"), tk, index_path);
  res_.bundle_id = ix_.bundle_id;
  res_.site = ix_.site;
  res_.volumes = static_cast<uint32_t>(ix_.volume_bytes.size());
  log("bundle " + ix_.bundle_id + " made " + format_utc(ix_.created) + " for site " + ix_.site + ": " +
      std::to_string(ix_.volume_bytes.size()) + " volumes, " + std::to_string(ix_.items.size()) + " items");
  if (ix_.site != "-" && ix_.site != cfg_.site)
    log("note: the bundle was made for site '" + ix_.site + "'; importing it here is fine (it is signed by HQ)");

  rx_.resize(ix_.items.size());
  vol_pieces_.resize(ix_.volume_bytes.size() + 1);
  for (size_t i = 0; i < ix_.items.size(); ++i) {
    const Item& it = ix_.items[i];
    for (size_t k = 0; k < it.pieces.size(); ++k) {
      member_.emplace(it.pieces[k].member, std::make_pair(i, k));
      vol_pieces_[it.pieces[k].volume].push_back({i, k});
    }
    if (is_manifest_kind(it.kind)) manifest_items_[{it.channel, it.version}] = i;
    if (it.kind == ItemKind::object) content_item_[it.digest] = i;
    if (it.kind == ItemKind::zobject) content_item_[it.target] = i;
    for (auto& m : it.packed) content_item_[m.digest] = i;
    if (is_delta_kind(it.kind)) content_item_.emplace(it.target, i);
  }
  for (auto& o : ix_.omitted) omitted_.insert(o.digest);
  for (auto b : ix_.volume_bytes) total_bytes_ += b;

  j_ = std::make_unique<Journal>(journal_path(cfg_));
  if (!j_->rebuilt_from().empty() && opts_.log)
    opts_.log("warning: the journal was damaged (" + j_->damage() + "); moved to " + j_->rebuilt_from() +
              " and rebuilt from installed.manifest and the files on disk");
  make_dirs(staging_, 0700);
  bdir_ = staging_ + "/.bundle";
  make_dirs(bdir_, 0700);
  remove_tree_files(bdir_);

  for (uint32_t v = 1; v <= ix_.volume_bytes.size(); ++v) {
    read_volume(v);
    done_before_ += ix_.volume_bytes[v - 1];
    cur_bytes_ = 0;
  }
  progress(true);
  if (!prepared_) prepare();
  install_pending();
  finish_placing();
  for (auto& c : ctx_) {
    if (c->active) {
      try {
        finish_channel(*c);
      } catch (const Error& e) {
        c->res.ok = false;
        c->res.code = e.code();
        c->res.error = e.what();
        c->res.hint = e.hint();
        log("error: " + c->ch->name + ": " + e.what());
      }
    } else if (c->res.ok && c->res.up_to_date) {
      run_after_install(cfg_, *c->ch, [&](const std::string& s) { log(c->ch->name + ": " + s); });
    }
    res_.channels.push_back(c->res);
  }
  remove_tree_files(bdir_);
  (void)try_remove_dir(bdir_);
  return res_;
}

void Importer::prepare() {
  prepared_ = true;
  for (const auto& span : ix_.channels) {
    auto cfgch = std::find_if(cfg_.channels.begin(), cfg_.channels.end(), [&](auto& c) { return c.name == span.name; });
    if (cfgch == cfg_.channels.end()) {
      log("channel '" + span.name + "' is not received here: skipped");
      continue;
    }
    auto c = std::make_unique<Ctx>();
    c->ch = &*cfgch;
    c->res.channel = span.name;
    c->res.to_version = span.to;
    try {
      prepare_channel(*c, span);
    } catch (const Error& e) {
      c->active = false;
      c->res.ok = false;
      c->res.code = e.code();
      c->res.error = e.what();
      c->res.hint = e.hint();
      log("error: " + span.name + ": " + e.what());
      try {
        j_->record_error(span.name, e.what());
      } catch (...) {
      }
    }
    ctx_.push_back(std::move(c));
  }
}

// Manifest it (an mdelta) from its delta: against the installed manifest file, or the version
// before it in this bundle (already in ms, in version order). Throws Error{mismatch} when the
// result is not the signed file.
std::string Importer::rebuild_manifest(const Ctx& c, const Item& it, const std::string& mdelta,
                                       const std::vector<std::pair<SignedManifest, std::string>>& ms,
                                       const ChannelRecord& rec, const std::string& name) {
  std::string basis;
  if (!ms.empty() && ms.back().first.manifest.version == it.basis_version)
    basis = ms.back().second;
  else if (rec.installed_version == it.basis_version)
    basis = read_file(installed_manifest_path(cfg_, c.ch->name), kMaxManifestBytes, "installed manifest");
  if (basis.empty())
    throw Error(Errc::mismatch,
                name + " comes as a delta from version " + std::to_string(it.basis_version) +
                    ", which this center does not have",
                "export a bundle for this center's own request at HQ, or let the network sync do it");
  std::string bytes = apply_manifest_delta(basis, mdelta, it.kind == ItemKind::mpatch, it.target_size, name);
  if (bytes.size() != it.target_size || digest_bytes(bytes) != it.target)
    throw Error(Errc::mismatch, name + ": its delta does not rebuild the signed manifest file",
                "copy the whole bundle again, or let the network sync bring the manifest");
  return bytes;
}

void Importer::prepare_channel(Ctx& c, const ChannelSpan& span) {
  const std::string& ch = c.ch->name;
  ChannelRecord rec = installed_record(cfg_, hq_key_, *j_, ch);
  c.res.from_version = rec.installed_version;
  if (span.to == span.from && span.to == rec.installed_version) {
    c.res.up_to_date = c.res.converged = true;
    return;
  }
  // The manifests that arrived, verified; only the newest must be unexpired. The newest must be
  // signed by HQ's key now; an older one (a link of the chain to the installed version, signed
  // before HQ rotated) by a key of the chain this center follows (trust.h).
  std::vector<std::pair<SignedManifest, std::string>> ms;
  for (auto& [key, i] : manifest_items_) {
    if (key.first != ch || rx_[i].s != Rx::complete) continue;
    std::string name = "bundle " + ix_.bundle_id + ": manifest " + ch + " version " + std::to_string(key.second);
    std::string bytes = read_file(rx_file(i), kMaxManifestBytes, "manifest");
    if (is_manifest_delta_kind(ix_.items[i].kind)) bytes = rebuild_manifest(c, ix_.items[i], bytes, ms, rec, name);
    VerifyOptions vo;
    vo.check_expiry = false;
    SignedManifest sm = key.second == span.to ? verify_hq_manifest(cfg_, bytes, hq_key_, vo, name)
                                              : verify_stored_manifest(cfg_, bytes, hq_key_, vo, name);
    if (sm.manifest.channel != ch || sm.manifest.version != key.second)
      throw Error(Errc::mismatch, name + " is really " + sm.manifest.channel + " version " +
                                      std::to_string(sm.manifest.version),
                  "the bundle is inconsistent; export it again at HQ");
    ms.emplace_back(std::move(sm), std::move(bytes));
  }
  auto top = manifest_items_.find({ch, span.to});
  if (ms.empty() || ms.back().first.manifest.version != span.to) {
    std::string why = top == manifest_items_.end() ? "is not in the bundle" : rx_[top->second].why;
    throw Error(Errc::not_found,
                "bundle " + ix_.bundle_id + ": the manifest of " + ch + " version " + std::to_string(span.to) + " " +
                    (why.empty() ? "did not arrive" : why) + "; nothing of this channel can be installed",
                "copy the whole bundle again (volume 1 carries the manifests) or let the network sync do it");
  }
  // The chain: each version names the previous one's body digest; and it continues ours.
  std::vector<const SignedManifest*> run;
  for (auto& m : ms) run.push_back(&m.first);
  if (auto br = check_chain(run, rec.installed_version, rec.installed_digest)) {
    if (!br->of_installed)
      throw Error(Errc::mismatch,
                  "bundle " + ix_.bundle_id + ": " + ch + " version " + std::to_string(br->version) +
                      " does not follow version " + std::to_string(br->follows) + " (broken chain)",
                  "nothing of this channel was installed; tell HQ");
    throw Error(Errc::mismatch,
                "bundle " + ix_.bundle_id + ": " + ch + " version " + std::to_string(br->version) +
                    " does not follow the installed version " + std::to_string(br->follows),
                "nothing of this channel was installed; HQ's history differs from what this center has: tell HQ");
  }
  VerifyOptions vo;
  vo.now = opts_.now;
  vo.expiry_slack_seconds = slack_;
  std::string tname = "bundle " + ix_.bundle_id + ": manifest " + ch + " version " + std::to_string(span.to);
  SignedManifest sm = verify_hq_manifest(cfg_, ms.back().second, hq_key_, vo, tname);
  std::string body = std::move(ms.back().second);
  ms.clear();
  j_->set_latest_known(ch, std::max(rec.latest_known_version, sm.manifest.version));
  j_->record_attempt(ch);
  // A stick's manifest is days old by nature: only its expiry is worth a warning here.
  c.res.warnings = freshness_warnings(sm.manifest, opts_.now ? opts_.now : static_cast<int64_t>(::time(nullptr)),
                                      {0, expiry_warning_days_, slack_ / 86400});
  for (const auto& w : c.res.warnings)
    if (opts_.log) opts_.log("warning: " + w);
  j_->set_warnings(ch, c.res.warnings);
  c.inst = std::make_unique<Installer>(c.ch->path, settings_.channel_staging(*c.ch), modes_);
  PlanOptions po;
  po.offered_by = "the bundle brings";
  po.rollback_hint = "nothing was changed; this bundle is older than what the center has";
  po.trust_installed = true;
  po.log = opts_.log;
  ChannelPlan plan = prepare_channel_plan(cfg_, *c.ch, *j_, *c.inst, rec, sm, body, po);
  if (plan.up_to_date) {
    c.res.up_to_date = c.res.converged = true;
    c.res.skipped = plan.unchanged;
    log(ch + ": already at version " + std::to_string(sm.manifest.version) + "; nothing to do");
    return;
  }
  c.version = sm.manifest.version;
  c.digest = sm.body_digest;
  c.target_file = plan.target_file;
  c.items = std::move(plan.items);
  c.queued.assign(c.items.size(), false);
  c.res.skipped = plan.unchanged;
  c.active = true;
  for (auto& it : c.items)
    if (it.state == ItemState::installed && it.action == Action::unchanged) c.res.skipped++;

  // Local copies (renames, files in two places) first, exactly as sync does them.
  const ChannelRoots roots = channel_roots(cfg_);
  std::vector<PlanItem*> fell_back;  // they join the items this bundle's content may serve
  c.res.copied += install_local_copies(*c.inst, *j_, ch, c.items, opts_.log, &fell_back, &roots);
  for (size_t k = 0; k < c.items.size(); ++k) {
    auto& it = c.items[k];
    if ((it.action == Action::full || it.action == Action::delta) && it.state != ItemState::installed)
      needs_[it.digest].push_back({&c, k});
  }
}

void Importer::finish_channel(Ctx& c) {
  const std::string& ch = c.ch->name;
  // Copies of content that came in the bundle (the same new file at several paths).
  std::unordered_map<std::string_view, const PlanItem*> by_path;
  for (auto& it : c.items) by_path.emplace(it.path, &it);
  std::vector<PlanItem*> copies;
  std::vector<Installer::Staged> files;
  for (auto& it : c.items) {
    if (it.state == ItemState::installed || it.action != Action::copy) continue;
    auto f = by_path.find(it.basis_path);
    if (f == by_path.end() || f->second->state != ItemState::installed) continue;
    std::string sp = c.inst->staged("c" + std::to_string(it.ord) + ".copy");
    if (!c.inst->stage_copy(it.basis_path, sp, it.digest, it.size, /*sync=*/false)) continue;
    copies.push_back(&it);
    files.push_back({sp, it.path, it.mode});
  }
  install_verified(*c.inst, *j_, ch, copies, files);
  c.res.copied += copies.size();
  for (size_t k = 0; k < c.items.size(); ++k) {
    const PlanItem& it = c.items[k];
    if (it.state == ItemState::installed) continue;
    MissingFile mf{it.path, it.size, "not in this bundle"};
    if (c.queued[k]) {
      mf.why = "it verified but could not be put in place (see the refusal)";
    } else if (omitted_.count(it.digest)) {
      mf.why = "did not fit on the stick (--max-size)";
    } else if (auto f = content_item_.find(it.digest); f != content_item_.end()) {
      const Rx& x = rx_[f->second];
      if (x.s == Rx::broken) mf.why = x.why;
      else if (is_delta_kind(ix_.items[f->second].kind)) mf.why = "the bundle's delta does not fit the local file";
    } else if (it.action == Action::copy) {
      mf.why = "its content did not arrive";
    }
    c.res.missing.push_back(std::move(mf));
  }
  if (!c.res.missing.empty()) {
    std::string msg = "bundle " + ix_.bundle_id + ": " + std::to_string(c.res.missing.size()) + " files of version " +
                      std::to_string(c.version) + " still missing";
    Journal::Batch b(*j_);
    j_->record_error(ch, msg);
    for (auto& mf : c.res.missing) j_->add_attempt(ch, mf.path, "bundle " + ix_.bundle_id + ": " + mf.why);
    b.commit();
    log(ch + ": " + msg + "; the next bundle or the network brings them");
    return;
  }
  // The whole version is here: deletions, then record it, then the after-install steps (the
  // course engine rebuilds arriving courses), exactly as sync does.
  c.res.deleted = finish_channel_install(
      cfg_, *c.ch, hq_key_, *j_, *c.inst, c.version, c.digest, c.target_file,
      [&](uint64_t deleted) {
        c.res.converged = true;
        log(ch + ": installed version " + std::to_string(c.version) + " from the bundle (" +
            std::to_string(c.res.installed) + " files, " + std::to_string(c.res.copied) + " local copies, " +
            std::to_string(deleted) + " deleted)");
      },
      opts_.log);
}

}  // namespace import_detail

ImportResult import_bundle(const Config& cfg, const std::string& dir, const ImportOptions& opts) {
  cfg.require_role("regional", "bundles are imported at a regional center");
  HookLogFn log = opts.log ? HookLogFn(opts.log) : HookLogFn([](const std::string&) {});
  // HQ's key records before anything else: the plug-ins' contents (HQ's answers to forum posts)
  // on the stick that brings a rotation are signed by the new key. A bad record refuses it all.
  {
    StateLock lock(cfg.state_dir);
    (void)import_detail::follow_stick_keys(cfg, dir, log);
  }
  // Plug-ins next: what they carry is sealed and signed on its own, so it counts even when the
  // bundle's files are refused.
  std::vector<std::string> notes;
  for (auto& hook : import_hooks()) {
    try {
      for (auto& n : hook(cfg, dir, log)) notes.push_back(std::move(n));
    } catch (const Error& e) {
      notes.push_back(e.what());
      log(e.what());
    }
  }
  import_detail::Importer im(cfg, dir, opts);
  ImportResult r = im.run();
  r.notes = std::move(notes);
  return r;
}

}  // namespace distd::bundle
