#include "distd/bundle/importer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "distd/bundle/format.h"
#include "distd/bundle/request.h"
#include "distd/regional/channel_install.h"
#include "distd/delta/rsync.h"
#include "distd/regional/installer.h"
#include "distd/regional/journal.h"
#include "distd/io/member_pipe.h"
#include "distd/regional/sync.h"
#include "manifest/chain.h"
#include "manifest/encoding.h"
#include "manifest/fault.h"
#include "manifest/fs.h"
#include "manifest/manifest.h"
#include "manifest/path.h"

namespace distd::bundle {

bool ImportResult::complete() const {
  if (!problems.empty() || !missing_volumes.empty() || !truncated_volumes.empty()) return false;
  for (auto& c : channels)
    if (!c.converged || !c.ok) return false;
  return true;
}

int ImportResult::exit_status() const {
  if (!problems.empty()) return distd::exit_status(problems.front().code);
  for (auto& c : channels)
    if (!c.ok) return distd::exit_status(c.code);
  return complete() ? 0 : kExitIncomplete;
}

namespace {

int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }

bool exists_path(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

void remove_tree_files(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  for (auto& n : names) ::unlink((dir + "/" + n).c_str());
}

// Copies src to dst, hashing; returns false when the bytes are not size/digest. Not fsynced:
// Installer::install_many makes staged bytes durable before any rename.
bool copy_verified(const std::string& src, const std::string& dst, uint64_t size, const Digest& digest) {
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!in) throw_errno("cannot open", src, errno);
  UniqueFd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out) throw_errno("cannot create staged file", dst, errno);
  std::vector<char> buf(1 << 20);
  Hasher h;
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("cannot read", src, errno);
    if (n == 0) break;
    write_all(out.get(), std::string_view(buf.data(), static_cast<size_t>(n)), dst);
    h.update(buf.data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  return total == size && h.finish() == digest;
}

struct Rx {
  enum State : uint8_t { pending, receiving, complete, broken, unneeded } s = pending;
  uint32_t next = 0;  // pieces received
  std::string why;    // when broken
};

// Verified files of one channel waiting to be installed together (install_verified).
struct Pending {
  std::vector<PlanItem*> items;
  std::vector<Installer::Staged> files;
  std::vector<bool> by_delta;
};

struct Ctx {
  const ChannelConfig* ch = nullptr;
  ChannelImport res;
  uint64_t version = 0;      // of the target manifest
  std::string digest;        // its body digest (hex)
  std::string target_file;   // <state_dir>/manifests/<channel>/target.manifest
  std::unique_ptr<Installer> inst;
  std::vector<PlanItem> items;
  std::vector<bool> queued;  // items[k] verified and waiting in `pending`
  Pending pending;
  bool active = false;  // a plan is being carried out
};

// Verified files are installed in groups of about this many files or bytes (one syncfs pair and
// one journal commit each), and always before the import ends.
constexpr size_t kInstallBatchFiles = 1000;
constexpr uint64_t kInstallBatchBytes = 128 << 20;

struct ArchiveFree {
  void operator()(archive* a) const { archive_read_free(a); }
};

class Importer {
 public:
  Importer(const Config& cfg, const std::string& dir, const ImportOptions& opts) : cfg_(cfg), dir_(dir), opts_(opts) {}
  ~Importer() {
    if (placing_ && placing_->th.joinable()) placing_->th.join();
  }

  ImportResult run();

 private:
  void log(const std::string& s) const {
    if (opts_.log) opts_.log(s);
  }
  void problem(Errc code, const std::string& msg) {
    res_.problems.push_back(Problem{code, msg});
    log("refused: " + msg);
  }
  void progress(bool force = false) {
    if (!opts_.progress) return;
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_progress_ < std::chrono::milliseconds(200)) return;
    last_progress_ = now;
    ImportProgress p;
    p.bytes_done = done_before_ + cur_bytes_;
    p.bytes_total = total_bytes_;
    p.volume = cur_volume_;
    p.volumes = static_cast<uint32_t>(ix_.volume_bytes.size());
    opts_.progress(p);
  }
  std::string rx_file(size_t i) const { return bdir_ + "/" + std::to_string(i); }
  void read_volume(uint32_t v);
  void take_member(archive* a, uint32_t v, const std::string& name, uint64_t size, bool* fatal);
  void take_pieces(archive* a, uint32_t v, const std::string& name, uint64_t size, bool* fatal);
  void settle();
  void on_complete(size_t i);
  void prepare();
  void prepare_channel(Ctx& c, const ChannelSpan& span);
  void finish_channel(Ctx& c);
  bool needed(const Item& it) const;
  // Before piece k of item i is read: false (and the item marked) when the center no longer needs
  // it, or when an earlier piece never came.
  bool should_receive(size_t i, size_t k);
  void queue_install(Ctx& c, size_t idx, const std::string& staged, bool by_delta);
  void install_pending();
  void finish_placing();
  void finish_batch(Ctx& c, Pending& batch, std::exception_ptr err);

  const Config& cfg_;
  std::string dir_;
  const ImportOptions& opts_;
  ImportResult res_;
  PublicKey hq_key_;
  int64_t slack_ = 0;
  std::string staging_, bdir_;
  std::unique_ptr<Journal> j_;
  Index ix_;
  std::vector<Rx> rx_;
  std::unordered_map<std::string, std::pair<size_t, size_t>> member_;  // name -> (item, piece)
  std::vector<std::vector<std::pair<size_t, size_t>>> vol_pieces_;
  std::map<std::pair<std::string, uint64_t>, size_t> manifest_items_;
  std::unordered_map<std::string, size_t> content_item_;  // object digest / delta target -> item
  std::set<std::string> omitted_;                        // digests left out by --max-size
  std::vector<std::unique_ptr<Ctx>> ctx_;
  std::unordered_map<std::string, std::vector<std::pair<Ctx*, size_t>>> needs_;  // digest hex
  bool prepared_ = false;
  size_t pending_files_ = 0;
  uint64_t pending_bytes_ = 0;
  Hasher whole_;  // running digest of the multi-piece item being received
  // Single-piece members are read here while a second thread hashes and writes them (pipe_).
  // The member last read is checked (and installed) once the next one has been read: `flight_`.
  struct Flight {
    size_t item = 0;
    uint32_t volume = 0;
    std::string name;
    uint64_t size = 0, got = 0;
    enum End : uint8_t { whole, damaged, too_long } end = whole;
    std::string target;  // digest hex of what it brings
  };
  std::unique_ptr<MemberPipe> pipe_;
  std::optional<Flight> flight_;
  // Verified groups being put in place (place_verified: renames, directories, syncfs) on a third
  // thread while the next members are read; recorded in the journal by finish_placing().
  struct Placing {
    std::vector<std::pair<Ctx*, Pending>> batches;
    std::vector<std::exception_ptr> errs;
    std::thread th;
  };
  std::unique_ptr<Placing> placing_;
  std::vector<char> buf_ = std::vector<char>(1 << 20);
  uint64_t total_bytes_ = 0, done_before_ = 0, cur_bytes_ = 0;
  uint32_t cur_volume_ = 0;
  std::chrono::steady_clock::time_point last_progress_{};
};

ImportResult Importer::run() {
  if (cfg_.role != "regional")
    throw Error(Errc::usage, "config " + cfg_.file + " has role \"" + cfg_.role + "\"; bundles are imported at a regional center",
                "use the regional center's config (role = \"regional\")");
  hq_key_ = regional_hq_key(cfg_);
  slack_ = cfg_.get_int("regional.expiry_slack_days", 30) * 86400;
  staging_ = cfg_.resolve(cfg_.get_string("regional.staging_dir", cfg_.state_dir + "/staging"));
  res_.dir = dir_;

  std::string index_path = dir_ + "/" + kIndexFile;
  if (!exists_path(index_path))
    throw Error(Errc::not_found, "no distd bundle in " + dir_ + " (" + kIndexFile + " is missing)",
                "check the directory; a bundle is made at HQ with 'distctl bundle export'");
  StateLock lock(cfg_.state_dir);
  ix_ = parse_index(read_file(index_path, kMaxIndexBytes, "bundle index"), hq_key_, index_path);
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
    if (it.kind == ItemKind::manifest) manifest_items_[{it.channel, it.version}] = i;
    if (it.kind == ItemKind::object) content_item_[digest_hex(it.digest)] = i;
    if (it.kind == ItemKind::delta) content_item_.emplace(digest_hex(it.target), i);
  }
  for (auto& o : ix_.omitted) omitted_.insert(digest_hex(o.digest));
  for (auto b : ix_.volume_bytes) total_bytes_ += b;

  j_ = std::make_unique<Journal>(journal_path(cfg_));
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
  ::rmdir(bdir_.c_str());
  return res_;
}

bool Importer::should_receive(size_t i, size_t k) {
  Rx& x = rx_[i];
  if (x.s == Rx::pending && !needed(ix_.items[i])) {
    x.s = Rx::unneeded;
    res_.unneeded_items++;
    return false;
  }
  if (x.next != k) {  // an earlier piece never came
    x.s = Rx::broken;
    x.why = "an earlier part of it is missing";
    ::unlink(rx_file(i).c_str());
    return false;
  }
  return true;
}

bool Importer::needed(const Item& it) const {
  if (it.kind == ItemKind::manifest) return true;
  std::string t = digest_hex(it.kind == ItemKind::object ? it.digest : it.target);
  auto f = needs_.find(t);
  if (f == needs_.end()) return false;
  for (auto& [c, idx] : f->second) {
    const PlanItem& p = c->items[idx];
    if (p.state == ItemState::installed || c->queued[idx]) continue;
    if (it.kind == ItemKind::object) return true;
    if (p.action == Action::delta && p.basis_digest == digest_hex(it.basis)) return true;
  }
  return false;
}

void Importer::read_volume(uint32_t v) {
  cur_volume_ = v;
  const std::string name = volume_file(v);
  const std::string path = dir_ + "/" + name;
  std::string why;
  auto mark_rest = [&](const std::string& reason) {
    for (auto [i, k] : vol_pieces_[v]) {
      Rx& r = rx_[i];
      if (r.s == Rx::broken || r.s == Rx::unneeded || r.s == Rx::complete || r.next > k) continue;
      if (r.s == Rx::receiving) ::unlink(rx_file(i).c_str());
      r.s = Rx::broken;
      r.why = reason;
    }
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    res_.missing_volumes.push_back(v);
    log("volume " + std::to_string(v) + " (" + name + ") is missing");
    mark_rest("volume " + std::to_string(v) + " (" + name + ") is missing");
    return;
  }
  const uint64_t signed_size = ix_.volume_bytes[v - 1];
  if (static_cast<uint64_t>(st.st_size) > signed_size) {
    res_.refused_volumes.push_back(v);
    problem(Errc::corrupt, "volume " + std::to_string(v) + " (" + name + ") is " + std::to_string(st.st_size) +
                               " bytes, more than the " + std::to_string(signed_size) +
                               " the signed index allows: refused (something was added to it)");
    mark_rest("volume " + std::to_string(v) + " was refused");
    return;
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    res_.missing_volumes.push_back(v);
    log("volume " + std::to_string(v) + " (" + name + ") cannot be read: " + std::strerror(errno));
    mark_rest("volume " + std::to_string(v) + " cannot be read");
    return;
  }
  std::unique_ptr<archive, ArchiveFree> a(archive_read_new());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_fd(a.get(), fd.get(), 1 << 20) != ARCHIVE_OK) {
    res_.truncated_volumes.push_back(v);
    log("volume " + std::to_string(v) + " (" + name + ") is not a readable tar file");
    mark_rest("volume " + std::to_string(v) + " is not a readable tar file");
    return;
  }
  auto damaged = [&](const std::string& after) {
    settle();
    res_.truncated_volumes.push_back(v);
    std::string msg = "volume " + std::to_string(v) + " (" + name + ") ends early or is damaged after " + after +
                      " (" + (archive_error_string(a.get()) ? archive_error_string(a.get()) : "?") + ")";
    log(msg);
    mark_rest("volume " + std::to_string(v) + " is truncated or damaged");
  };

  // The volume header: this bundle, this volume number.
  archive_entry* e = nullptr;
  int r = archive_read_next_header(a.get(), &e);
  if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return damaged("its start");
  {
    const char* pn = archive_entry_pathname(e);
    std::string text;
    if (pn && std::string(pn) == kVolumeHeaderMember && archive_entry_filetype(e) == AE_IFREG &&
        archive_entry_size(e) > 0 && archive_entry_size(e) < 512) {
      text.resize(static_cast<size_t>(archive_entry_size(e)));
      if (archive_read_data(a.get(), text.data(), text.size()) != static_cast<la_ssize_t>(text.size()))
        return damaged("its start");
    }
    if (text != volume_header_text(ix_.bundle_id, v)) {
      std::string other;
      auto b = text.find("bundle ");
      if (b != std::string::npos) other = text.substr(b + 7, 32);
      res_.refused_volumes.push_back(v);
      problem(Errc::mismatch,
              "volume " + std::to_string(v) + " (" + name + ") " +
                  (other.size() == 32 && other != ix_.bundle_id
                       ? "belongs to another bundle (" + other + "), not to bundle " + ix_.bundle_id
                       : "is not volume " + std::to_string(v) + " of bundle " + ix_.bundle_id) +
                  ": refused");
      mark_rest("volume " + std::to_string(v) + " was refused (from another bundle)");
      return;
    }
  }

  std::set<std::string> seen;
  std::string last = "its header";
  for (;;) {
    cur_bytes_ = static_cast<uint64_t>(archive_filter_bytes(a.get(), -1));
    progress();
    r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return damaged("member '" + last + "'");
    const char* pn = archive_entry_pathname(e);
    std::string mname = pn ? pn : "";
    std::string where = "volume " + std::to_string(v) + ": entry " + quote_path(mname);
    auto ft = archive_entry_filetype(e);
    if (mname.empty() || mname[0] == '/' || !unsafe_path_reason(mname).empty()) {
      problem(Errc::unsafe_path, where + " has an unsafe path (" +
                                     (mname.empty() ? std::string("empty") : mname[0] == '/' ? "absolute" : unsafe_path_reason(mname)) +
                                     "): refused, nothing written");
      continue;
    }
    if (archive_entry_hardlink(e)) {
      problem(Errc::unsupported, where + " is a hard link: refused (bundles hold regular files only)");
      continue;
    }
    if (ft == AE_IFLNK || archive_entry_symlink(e)) {
      problem(Errc::unsupported, where + " is a symbolic link: refused (bundles hold regular files only)");
      continue;
    }
    if (ft != AE_IFREG) {
      problem(Errc::unsupported, where + " is not a regular file (a device, directory or FIFO): refused");
      continue;
    }
    auto m = member_.find(mname);
    if (m == member_.end() || ix_.items[m->second.first].pieces[m->second.second].volume != v) {
      problem(Errc::corrupt, where + " is not listed for this volume in the signed index: refused");
      continue;
    }
    if (!seen.insert(mname).second) {
      problem(Errc::corrupt, where + " appears twice: the duplicate is refused");
      continue;
    }
    uint64_t size = archive_entry_size_is_set(e) ? static_cast<uint64_t>(archive_entry_size(e)) : UINT64_MAX;
    const Piece& p = ix_.items[m->second.first].pieces[m->second.second];
    if (size != p.size) {
      problem(Errc::mismatch, where + " says it has " + std::to_string(size) + " bytes, the signed index says " +
                                  std::to_string(p.size) + ": refused");
      Rx& x = rx_[m->second.first];
      if (x.s == Rx::receiving) ::unlink(rx_file(m->second.first).c_str());
      if (x.s != Rx::unneeded) x.s = Rx::broken, x.why = "its member in volume " + std::to_string(v) + " was refused";
      continue;
    }
    last = mname;
    bool fatal = false;
    take_member(a.get(), v, mname, size, &fatal);
    if (fatal) return damaged("the start of member '" + mname + "'");
  }
  settle();
  mark_rest("volume " + std::to_string(v) + " lacks it");
}

// The member read before is checked against its signed digest once its hashing and writing
// are done (on the second thread), and passed on as the serial code did it.
void Importer::settle() {
  if (!flight_) return;
  Flight f = std::move(*flight_);
  flight_.reset();
  MemberPipe::Result r = pipe_->take(f.item);
  const Item& it = ix_.items[f.item];
  Rx& x = rx_[f.item];
  std::string file = rx_file(f.item);
  if (f.end == Flight::damaged || f.end == Flight::too_long) {
    ::unlink(file.c_str());
    x.s = Rx::broken;
    x.why = f.end == Flight::damaged ? "volume " + std::to_string(f.volume) + " is truncated or damaged"
                                     : "a member is longer than signed";
    return;
  }
  res_.bytes_read += f.got;
  if (f.got != f.size || r.size != f.size || r.digest != it.pieces[0].digest) {
    ::unlink(file.c_str());
    x.s = Rx::broken;
    x.why = "it did not match its signed digest";
    problem(Errc::mismatch, "volume " + std::to_string(f.volume) + ": entry '" + f.name +
                                "' does not match its signed digest (damaged or altered): refused, nothing installed from it");
    return;
  }
  x.next = 1;
  x.s = Rx::complete;
  on_complete(f.item);
}

void Importer::take_member(archive* a, uint32_t v, const std::string& name, uint64_t size, bool* fatal) {
  auto [i, k] = member_.at(name);
  const Item& it = ix_.items[i];
  if (it.pieces.size() > 1) {
    settle();
    return take_pieces(a, v, name, size, fatal);
  }
  Rx& x = rx_[i];
  if (x.s == Rx::broken || x.s == Rx::unneeded || x.s == Rx::complete) return;  // skipped by next_header
  if (it.kind != ItemKind::manifest && !prepared_) {
    settle();
    prepare();
  }
  std::string target = it.kind == ItemKind::manifest ? std::string()
                                                     : digest_hex(it.kind == ItemKind::object ? it.digest : it.target);
  if (flight_ && !target.empty() && flight_->target == target) settle();  // it may make this one unneeded
  if (!should_receive(i, k)) return;
  x.s = Rx::receiving;
  if (!pipe_) pipe_ = std::make_unique<MemberPipe>();
  // Created, hashed and written on the second thread (write-back started there too, so that the
  // batch's syncfs finds little left to do); nothing reaches a final path before settle()
  // verified it.
  pipe_->begin_new_file(i, rx_file(i));
  Flight f;
  f.item = i;
  f.volume = v;
  f.name = name;
  f.size = size;
  f.target = std::move(target);
  for (;;) {
    char* b = pipe_->buffer();
    la_ssize_t n = archive_read_data(a, b, pipe_->buffer_size());
    if (n < 0) {
      pipe_->commit(0);
      f.end = Flight::damaged;
      *fatal = true;
      break;
    }
    if (n == 0) {
      pipe_->commit(0);
      break;
    }
    if (f.got + static_cast<uint64_t>(n) > size) {  // libarchive keeps to the header's size; belt and braces
      pipe_->commit(0);
      f.end = Flight::too_long;
      break;
    }
    pipe_->commit(static_cast<size_t>(n));
    f.got += static_cast<uint64_t>(n);
    cur_bytes_ = static_cast<uint64_t>(archive_filter_bytes(a, -1));
    progress();
  }
  pipe_->end();
  settle();  // the member before this one: its bytes are hashed and written by now, or nearly
  flight_ = std::move(f);
  if (*fatal) settle();
}

void Importer::take_pieces(archive* a, uint32_t v, const std::string& name, uint64_t size, bool* fatal) {
  auto [i, k] = member_.at(name);
  const Item& it = ix_.items[i];
  const Piece& p = it.pieces[k];
  Rx& x = rx_[i];
  if (x.s == Rx::broken || x.s == Rx::unneeded || x.s == Rx::complete) return;  // skipped by next_header
  if (it.kind != ItemKind::manifest && !prepared_) prepare();
  if (!should_receive(i, k)) return;
  std::string file = rx_file(i);
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (k == 0 ? O_TRUNC : O_APPEND), 0600));
  if (!fd) throw_errno("cannot create staged file", file, errno);
  if (k == 0 && it.pieces.size() > 1) whole_ = Hasher();
  x.s = Rx::receiving;
  Hasher h;
  std::vector<char>& buf = buf_;  // one buffer for all members (a fresh 1 MiB each costs a memset)
  uint64_t got = 0;
  for (;;) {
    la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
    if (n < 0) {
      ::unlink(file.c_str());
      x.s = Rx::broken;
      x.why = "volume " + std::to_string(v) + " is truncated or damaged";
      *fatal = true;
      return;
    }
    if (n == 0) break;
    if (got + static_cast<uint64_t>(n) > size) {  // libarchive keeps to the header's size; belt and braces
      ::unlink(file.c_str());
      x.s = Rx::broken;
      x.why = "a member is longer than signed";
      return;
    }
    write_all(fd.get(), std::string_view(buf.data(), static_cast<size_t>(n)), file);
    h.update(buf.data(), static_cast<size_t>(n));
    if (it.pieces.size() > 1) whole_.update(buf.data(), static_cast<size_t>(n));
    got += static_cast<uint64_t>(n);
    cur_bytes_ = static_cast<uint64_t>(archive_filter_bytes(a, -1));
    progress();
  }
  res_.bytes_read += got;
  if (got != size || h.finish() != p.digest) {
    ::unlink(file.c_str());
    x.s = Rx::broken;
    x.why = "it did not match its signed digest";
    problem(Errc::mismatch, "volume " + std::to_string(v) + ": entry '" + name +
                                "' does not match its signed digest (damaged or altered): refused, nothing installed from it");
    return;
  }
  // Start writing the verified bytes back now (asynchronously), so that the batch's syncfs finds
  // little left to do: the disk works while the next members are read and hashed.
  if (it.kind != ItemKind::manifest) ::sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
  x.next = static_cast<uint32_t>(k + 1);
  if (x.next < it.pieces.size()) return;
  if (it.pieces.size() > 1 && whole_.finish() != it.digest) {
    ::unlink(file.c_str());
    x.s = Rx::broken;
    x.why = "its parts do not add up to its signed digest";
    problem(Errc::mismatch, "item '" + it.pieces[0].member + "': its parts do not add up to the signed digest: refused");
    return;
  }
  fd = UniqueFd();
  x.s = Rx::complete;
  on_complete(i);
}

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
          j_->set_state(c.ch->name, p.path, ItemState::installed);  // renamed before the group failed
          p.state = ItemState::installed;
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

void Importer::on_complete(size_t i) {
  const Item& it = ix_.items[i];
  std::string file = rx_file(i);
  if (it.kind == ItemKind::manifest) return;  // read by prepare()
  std::string t = digest_hex(it.kind == ItemKind::object ? it.digest : it.target);
  std::vector<std::pair<Ctx*, size_t>> todo;
  if (auto f = needs_.find(t); f != needs_.end())
    for (auto& n : f->second) {
      const PlanItem& p = n.first->items[n.second];
      if (p.state == ItemState::installed || n.first->queued[n.second]) continue;
      if (it.kind == ItemKind::delta && (p.action != Action::delta || p.basis_digest != digest_hex(it.basis))) continue;
      todo.push_back(n);
    }
  bool moved = false;  // the received file became the last consumer's staged file
  for (size_t n = 0; n < todo.size(); ++n) {
    Ctx& c = *todo[n].first;
    PlanItem& p = c.items[todo[n].second];
    try {
      if (it.kind == ItemKind::object) {
        if (p.size != it.size) {
          problem(Errc::mismatch, "object " + t.substr(0, 16) + "... has " + std::to_string(it.size) +
                                      " bytes, the manifest signs " + std::to_string(p.size) + " for '" + p.path + "'");
          continue;
        }
        std::string staged = c.inst->staged("b" + std::to_string(p.ord) + ".bundle");
        bool last = n + 1 == todo.size();
        if (last && try_rename(file, staged) == 0) {
          moved = true;
        } else if (!copy_verified(file, staged, it.size, it.digest)) {
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
          d = apply_delta(c.inst->final_path(p.path), file, ofd.get(), out, p.size, &written);
        } catch (const Error& e) {
          if (e.code() != Errc::mismatch) throw;
          ::unlink(out.c_str());
          problem(Errc::mismatch, "'" + p.path + "': the delta from the bundle does not apply: " + e.what());
          continue;
        }
        if (written != p.size || digest_hex(d) != p.digest) {
          ::unlink(out.c_str());
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
  if (!moved) ::unlink(file.c_str());
  if (pending_files_ >= kInstallBatchFiles || pending_bytes_ >= kInstallBatchBytes) install_pending();
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

void Importer::prepare_channel(Ctx& c, const ChannelSpan& span) {
  const std::string& ch = c.ch->name;
  ChannelRecord rec = installed_record(cfg_, hq_key_, *j_, ch);
  c.res.from_version = rec.installed_version;
  if (span.to == span.from && span.to == rec.installed_version) {
    c.res.up_to_date = c.res.converged = true;
    return;
  }
  // The manifests that arrived, verified with the pinned key; only the newest must be unexpired.
  std::vector<std::pair<SignedManifest, std::string>> ms;
  for (auto& [key, i] : manifest_items_) {
    if (key.first != ch || rx_[i].s != Rx::complete) continue;
    std::string bytes = read_file(rx_file(i), kMaxManifestBytes, "manifest");
    VerifyOptions vo;
    vo.check_expiry = false;
    std::string name = "bundle " + ix_.bundle_id + ": manifest " + ch + " version " + std::to_string(key.second);
    SignedManifest sm = verify_manifest(bytes, hq_key_, vo, name);
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
  if (auto br = check_chain(run, rec.installed_version,
                            rec.installed_digest.empty() ? std::nullopt : parse_digest_hex(rec.installed_digest))) {
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
  SignedManifest sm = verify_manifest(ms.back().second, hq_key_, vo, tname);
  std::string body = std::move(ms.back().second);
  ms.clear();
  j_->set_latest_known(ch, std::max(rec.latest_known_version, sm.manifest.version));
  j_->record_attempt(ch);
  c.inst = std::make_unique<Installer>(c.ch->path, staging_ + "/" + ch);
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
  c.digest = digest_hex(sm.body_digest);
  c.target_file = plan.target_file;
  c.items = std::move(plan.items);
  c.queued.assign(c.items.size(), false);
  c.res.skipped = plan.unchanged;
  c.active = true;
  for (auto& it : c.items)
    if (it.state == ItemState::installed && it.action == Action::unchanged) c.res.skipped++;

  // Local copies (renames, files in two places) first, exactly as sync does them.
  c.res.copied += install_local_copies(*c.inst, *j_, ch, c.items, opts_.log);
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
      else if (ix_.items[f->second].kind == ItemKind::delta) mf.why = "the bundle's delta does not fit the local file";
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

}  // namespace

ImportResult import_bundle(const Config& cfg, const std::string& dir, const ImportOptions& opts) {
  Importer im(cfg, dir, opts);
  return im.run();
}

namespace {
std::string result_heading(const std::string& site) {
  return "distd bundle import at site " + site + ", " + format_utc(now_s()) + "\n";
}
}  // namespace

std::string render_refusal_text(const Error& e, const std::string& site) {
  return result_heading(site) + "result: REFUSED\n" + e.what() + "\nwhat to do: " + e.hint() + "\n";
}

std::string render_result_text(const ImportResult& r, const std::string& site) {
  std::string o = result_heading(site);
  o += "bundle " + (r.bundle_id.empty() ? std::string("(none)") : r.bundle_id) + ", " + std::to_string(r.volumes) +
       " volumes\n";
  o += std::string("result: ") +
       (r.complete() ? "COMPLETE" : r.problems.empty() ? "INCOMPLETE (files missing)" : "REFUSED PARTS (see below)") +
       "\n\n";
  for (auto& c : r.channels) {
    o += "channel " + c.channel + ": ";
    if (!c.ok)
      o += "ERROR: " + c.error + "\n";
    else if (c.up_to_date)
      o += "already at version " + std::to_string(c.to_version) + "\n";
    else
      o += (c.converged ? "now at version " : "partly installed, version ") + std::to_string(c.to_version) + ": " +
           std::to_string(c.installed) + " installed (" + std::to_string(c.delta) + " by delta), " +
           std::to_string(c.copied) + " copied locally, " + std::to_string(c.skipped) + " already present, " +
           std::to_string(c.missing.size()) + " missing\n";
    size_t shown = 0;
    for (auto& m : c.missing) {
      if (++shown > 20) {
        o += "  ... and " + std::to_string(c.missing.size() - 20) + " more\n";
        break;
      }
      o += "  missing " + encode_path(m.path) + " (" + human_bytes(m.size) + "): " + m.why + "\n";
    }
  }
  for (auto v : r.missing_volumes) o += "volume " + std::to_string(v) + " is missing from the stick\n";
  for (auto v : r.truncated_volumes) o += "volume " + std::to_string(v) + " is truncated or damaged\n";
  for (auto& p : r.problems) o += "refused: " + p.message + "\n";
  return o;
}

}  // namespace distd::bundle
