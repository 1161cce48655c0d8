// The bundle importer, inside: its state and its steps. Private to distd/bundle/ (importer.cpp
// plans and finishes each channel; importer_receive.cpp reads the tar volumes and stages what
// arrives; importer_install.cpp verifies and installs it in batches; import_report.cpp renders
// the result). The public entry point is import_bundle() in importer.h.
#pragma once

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
#include "distd/regional/trust.h"
#include "manifest/chain.h"
#include "manifest/encoding.h"
#include "manifest/fault.h"
#include "manifest/fs.h"
#include "manifest/manifest.h"
#include "manifest/path.h"

namespace distd::bundle::import_detail {

inline int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }

inline bool exists_path(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

inline void remove_tree_files(const std::string& dir) {
  try {
    for (auto& n : list_dir(dir)) discard_file(dir + "/" + n);
  } catch (const Error&) {
  }
}

// Copies src to dst, hashing; returns false when the bytes are not size/digest. Not fsynced:
// Installer::install_many makes staged bytes durable before any rename.
inline bool copy_verified(const std::string& src, const std::string& dst, uint64_t size, const Digest& digest) {
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

// Digests as hash-map keys: their first 8 bytes (BLAKE2b output is uniform already).
struct DigestHash {
  size_t operator()(const Digest& d) const noexcept {
    size_t h = 0;
    std::memcpy(&h, d.data(), sizeof h);
    return h;
  }
};

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
  Digest digest{};           // its body digest
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

// The key this center trusts, followed through the key records on the stick in dir
// (distd-keys/<version+1>.keys, ...; at most kMaxStickKeyRecords), each verified one stored under
// <state_dir>/trust/. Throws as verify_key_record does when one does not verify; the records
// before it stay followed. REQUIRES: the state lock is held.
TrustedKey follow_stick_keys(const Config& cfg, const std::string& dir, const LogLineFn& log);

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
  // read_volume()'s steps (importer_receive.cpp says what each does).
  void mark_rest(uint32_t v, const std::string& reason);
  bool open_volume(uint32_t v, UniqueFd* fd, std::unique_ptr<archive, ArchiveFree>* a);
  void volume_damaged(archive* a, uint32_t v, const std::string& after);
  bool read_volume_header(archive* a, uint32_t v);
  bool accept_member(archive_entry* e, uint32_t v, const std::string& mname, std::set<std::string>& seen,
                     uint64_t* size);
  void take_member(archive* a, uint32_t v, const std::string& name, uint64_t size, bool* fatal);
  void take_pieces(archive* a, uint32_t v, const std::string& name, uint64_t size, bool* fatal);
  void settle();
  void on_complete(size_t i);
  void prepare();
  void prepare_channel(Ctx& c, const ChannelSpan& span);
  // The zstd form of item it received in file, decoded into file + suffix (at most max bytes;
  // with want, they must be that digest and it.target_size bytes). Returns that file, or "" when
  // the item is refused (reported, both files removed).
  std::string decoded(const Item& it, const std::string& file, const std::string& suffix, uint64_t max,
                      const Digest* want);
  // The objects of zpack item it, received in file: decoded one after the other, each checked
  // against its signed digest and size and delivered. A stream that is damaged, cut or too long
  // refuses the objects not yet decoded (reported); those decoded before are kept.
  void unpack(const Item& it, const std::string& file);
  // Stages the verified content t (object_size bytes; for a delta item, the delta to apply) that
  // arrived in file for every plan item that still needs it, and queues it for install.
  void deliver(const Item& it, const Digest& t, uint64_t object_size, const std::string& file);
  std::string rebuild_manifest(const Ctx& c, const Item& it, const std::string& mdelta,
                               const std::vector<std::pair<SignedManifest, std::string>>& ms,
                               const ChannelRecord& rec, const std::string& name);
  void finish_channel(Ctx& c);
  bool needed(const Item& it) const;
  // True when a plan item still needs content d from item it (for a delta: a delta from its basis).
  bool needs_content(const Item& it, const Digest& d) const;
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
  RegionalSettings settings_;  // [regional] keys read without a link (RegionalSettings::offline)
  FileModes modes_ = FileModes::safe;  // [regional] file_modes
  int64_t expiry_warning_days_ = 14;    // [regional] expiry_warning_days
  std::unique_ptr<Journal> j_;
  Index ix_;
  std::vector<Rx> rx_;
  std::unordered_map<std::string, std::pair<size_t, size_t>> member_;  // name -> (item, piece)
  std::vector<std::vector<std::pair<size_t, size_t>>> vol_pieces_;
  std::map<std::pair<std::string, uint64_t>, size_t> manifest_items_;
  std::unordered_map<Digest, size_t, DigestHash> content_item_;  // object digest / delta target -> item
  std::set<Digest> omitted_;                                     // digests left out by --max-size
  std::vector<std::unique_ptr<Ctx>> ctx_;
  std::unordered_map<Digest, std::vector<std::pair<Ctx*, size_t>>, DigestHash> needs_;  // content digest -> items
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
    std::optional<Digest> target;  // the content it brings (none for a manifest)
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

}  // namespace distd::bundle::import_detail
