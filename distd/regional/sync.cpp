#include "distd/regional/sync.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "distd/net/http_client.h"
#include "distd/regional/channel_install.h"
#include "distd/delta/rsync.h"
#include "distd/io/pause.h"
#include "distd/regional/delta_request.h"
#include "distd/regional/installer.h"
#include "distd/regional/journal.h"
#include "distd/regional/planner.h"
#include "manifest/encoding.h"
#include "manifest/fault.h"
#include "manifest/fs.h"
#include "manifest/manifest.h"
#include "manifest/scan.h"

namespace distd {

// ---------------------------------------------------------------------------------------------
// Settings

namespace {

int parse_hhmm(const std::string& s) {
  if (s.size() != 5 || s[2] != ':' || !isdigit(s[0]) || !isdigit(s[1]) || !isdigit(s[3]) || !isdigit(s[4])) return -1;
  int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
  return h < 24 && m < 60 ? h * 60 + m : -1;
}

}  // namespace

RegionalSettings RegionalSettings::from(const Config& cfg) {
  RegionalSettings s;
  const std::string where = "config " + cfg.file + ": ";
  s.hq_url = cfg.require_string("regional.hq_url");
  if (s.hq_url.rfind("http://", 0) != 0 && s.hq_url.rfind("https://", 0) != 0)
    throw Error(Errc::usage, where + "[regional] hq_url '" + s.hq_url + "' is not an http:// or https:// URL",
                "write e.g. hq_url = \"http://hq.example.org:8080\"");
  s.hq_key = regional_hq_key(cfg);
  s.expiry_slack_days = cfg.get_int("regional.expiry_slack_days", 30);
  s.staging_dir = cfg.resolve(cfg.get_string("regional.staging_dir", cfg.state_dir + "/staging"));
  s.connect_timeout = cfg.get_int("regional.connect_timeout", 30);
  s.low_speed_limit = cfg.get_int("regional.low_speed_limit", 64);
  s.low_speed_time = cfg.get_int("regional.low_speed_time", 60);
  int64_t bw = cfg.get_int("regional.bandwidth_limit", 0);
  s.big_files_window = cfg.get_string("regional.big_files_window", "");
  int64_t thr = cfg.get_int("regional.big_file_threshold", 10 * 1024 * 1024);
  s.probe_min_seconds = cfg.get_int("regional.probe_min_seconds", 10);
  s.probe_max_seconds = cfg.get_int("regional.probe_max_seconds", 900);
  s.max_attempts = static_cast<int>(cfg.get_int("regional.max_attempts", 3));
  if (s.expiry_slack_days < 0 || s.connect_timeout <= 0 || s.low_speed_limit < 0 || s.low_speed_time <= 0 || bw < 0 ||
      thr < 0 || s.probe_min_seconds <= 0 || s.probe_max_seconds < s.probe_min_seconds || s.max_attempts < 1)
    throw Error(Errc::usage,
                where + "[regional]: expiry_slack_days, bandwidth_limit, big_file_threshold, low_speed_limit must be "
                        ">= 0; connect_timeout, low_speed_time, probe_min_seconds, max_attempts > 0; "
                        "probe_max_seconds >= probe_min_seconds",
                "fix the values in the [regional] section (see docs/config.md)");
  s.bandwidth_limit = static_cast<uint64_t>(bw);
  s.big_file_threshold = static_cast<uint64_t>(thr);
  if (!s.big_files_window.empty()) {
    auto dash = s.big_files_window.find('-');
    if (dash != std::string::npos) {
      s.window_start_min = parse_hhmm(s.big_files_window.substr(0, dash));
      s.window_end_min = parse_hhmm(s.big_files_window.substr(dash + 1));
    }
    if (s.window_start_min < 0 || s.window_end_min < 0)
      throw Error(Errc::usage, where + "[regional] big_files_window '" + s.big_files_window + "' is not HH:MM-HH:MM",
                  "write e.g. big_files_window = \"22:00-06:00\" (local time; may wrap past midnight)");
  }
  return s;
}

bool RegionalSettings::big_files_allowed(int64_t now) const {
  if (window_start_min < 0) return true;
  time_t t = static_cast<time_t>(now);
  struct tm lt {};
  localtime_r(&t, &lt);
  int m = lt.tm_hour * 60 + lt.tm_min;
  if (window_start_min == window_end_min) return true;
  if (window_start_min < window_end_min) return m >= window_start_min && m < window_end_min;
  return m >= window_start_min || m < window_end_min;  // wraps past midnight
}

bool SyncResult::converged() const {
  for (auto& c : channels)
    if (!c.converged) return false;
  return !channels.empty();
}

std::vector<AfterInstallFn>& after_install_hooks() {
  static std::vector<AfterInstallFn> hooks;  // filled by the mains (distd/plugins.h)
  return hooks;
}

std::vector<PriorityFn>& priority_providers() {
  static std::vector<PriorityFn> providers;  // filled by the mains (distd/plugins.h)
  return providers;
}

void run_after_install(const Config& cfg, const ChannelConfig& ch, const LogLineFn& log) {
  for (auto& hook : after_install_hooks()) {
    try {
      hook(cfg, ch, log);
    } catch (const std::exception& e) {
      if (log) log(ch.name + ": after-install step failed: " + e.what());
    }
  }
}

std::string journal_path(const Config& cfg) { return cfg.state_dir + "/journal.sqlite"; }
std::string installed_manifest_path(const Config& cfg, const std::string& channel) {
  return cfg.state_dir + "/manifests/" + channel + "/installed.manifest";
}

// ---------------------------------------------------------------------------------------------
// The run

namespace {

int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }

bool exists_file(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

std::string object_path(const std::string& hex) { return "/objects/" + hex.substr(0, 2) + "/" + hex; }

struct Run {
  Run(const Config& c, const RegionalSettings& s, const ChannelConfig& chan, const SyncOptions& o, Journal& journal,
      HttpClient& h, ChannelResult& result)
      : cfg(c), rs(s), ch(chan), opts(o), j(journal), http(h), res(result) {}
  const Config& cfg;
  const RegionalSettings& rs;
  const ChannelConfig& ch;
  const SyncOptions& opts;
  Journal& j;
  HttpClient& http;
  ChannelResult& res;
  std::unique_ptr<Installer> inst;
  bool deltas_unsupported = false;
  bool batches_unsupported = false;  // HQ answered POST /objects with something else than 200/404
  SyncProgress prog;
  uint64_t wire_base = 0;
  std::chrono::steady_clock::time_point last_progress{};

  void log(const std::string& s) const {
    if (opts.log) opts.log(ch.name + ": " + s);
  }
  void progress(bool force = false) {
    if (!opts.progress) return;
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_progress < std::chrono::milliseconds(200)) return;
    last_progress = now;
    prog.wire_bytes = http.bytes_received() - wire_base;
    opts.progress(prog);
  }
  bool stopped() const { return opts.stop && opts.stop->load(); }
};

// The latest manifest as a delta against the newest one this center has (a few KiB instead of
// the whole list; the result is verified like a downloaded one). Empty when there is no basis,
// HQ does not serve manifest deltas (a plain web server), or the delta does not apply.
std::string fetch_manifest_delta(Run& r) {
  std::string basis_path = r.cfg.state_dir + "/manifests/" + r.ch.name + "/target.manifest";
  if (!exists_file(basis_path)) basis_path = installed_manifest_path(r.cfg, r.ch.name);
  if (!exists_file(basis_path)) return {};
  std::string basis;
  try {
    basis = read_file(basis_path, kMaxManifestBytes, "manifest");
  } catch (const Error&) {
    return {};
  }
  std::string sig = signature_of_bytes(basis);
  HttpAnswer a = r.http.post("/channels/" + r.ch.name + "/latest.manifest", sig, kMaxManifestBytes, true);
  if (a.status != 200) return {};
  std::string().swap(sig);
  try {
    return patch_bytes(basis, a.body, kMaxManifestBytes);
  } catch (const Error& e) {
    r.log(std::string("manifest delta did not apply (") + e.what() + "); fetching the whole manifest");
    return {};
  }
}

// GET the latest manifest (or a delta of it unless whole), retrying a failing link a few times.
std::string fetch_manifest(Run& r, bool whole = false) {
  const std::string path = "/channels/" + r.ch.name + "/latest.manifest";
  for (int attempt = 1;; ++attempt) {
    try {
      if (!whole) {
        std::string m = fetch_manifest_delta(r);
        if (!m.empty()) return m;
        whole = true;
      }
      HttpAnswer a = r.http.get(path, kMaxManifestBytes);
      if (a.status == 200) return std::move(a.body);
      if (a.status == 404)
        throw Error(Errc::not_found, "HQ (" + r.http.url(path) + ") does not publish channel '" + r.ch.name + "'",
                    "check the channel name here and 'distctl publish --channel " + r.ch.name + "' at HQ");
      throw Error(Errc::network, "HQ answered " + std::to_string(a.status) + " for " + r.http.url(path),
                  "check HQ's server and logs; the next run tries again");
    } catch (const Error& e) {
      if (e.code() != Errc::network || attempt >= r.rs.max_attempts || r.stopped()) throw;
      r.log(std::string("link problem, retrying: ") + e.what());
      sleep_unless_stopped(r.opts.stop, retry_pause(attempt));
    }
  }
}

void fall_back(Run& r, PlanItem& it, const std::string& why) {
  r.log("'" + it.path + "': whole file instead of a delta: " + why);
  r.j.fall_back_to_full(r.ch.name, it.path, why);
  if (!it.delta_id.empty()) ::unlink(r.inst->staged(it.delta_id + ".delta").c_str());
  it.action = Action::full;
  it.offset = 0;
  it.state = ItemState::planned;
  ++r.res.delta_fallbacks;
}

void set_state(Run& r, PlanItem& it, ItemState s) {
  if (it.state == s) return;
  r.j.set_state(r.ch.name, it.path, s);
  it.state = s;
}

void install_item(Run& r, PlanItem& it, const std::string& staged) {
  set_state(r, it, ItemState::verified);
  fault_point("after_verify");
  r.inst->install(staged, it.path, it.mode);
  set_state(r, it, ItemState::installed);
  r.prog.files_done++;
}

// Opens a staged download, trusting only the journal's offset of it.
UniqueFd open_staged(const std::string& path, uint64_t* offset) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) throw_errno("cannot open staged file", path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat", path, errno);
  if (static_cast<uint64_t>(st.st_size) < *offset) *offset = 0;  // the journal is ahead of the disk: start over
  if (::ftruncate(fd.get(), static_cast<off_t>(*offset)) != 0) throw_errno("cannot truncate", path, errno);
  return fd;
}

// Hashes a staged download on a second thread while it is being written (reading the page
// cache behind the writer), so verifying costs no second pass over the file and the digest is
// ready soon after the last byte arrives. Also covers a prefix kept from an earlier run.
class BackgroundHasher {
 public:
  BackgroundHasher(int fd, std::string path) : fd_(fd), path_(std::move(path)), th_([this] { run(); }) {}
  ~BackgroundHasher() { stop(); }
  BackgroundHasher(const BackgroundHasher&) = delete;
  BackgroundHasher& operator=(const BackgroundHasher&) = delete;

  // The digest of the file's first `size` bytes, once the thread read them. Throws what the
  // thread met (Error{io}).
  Digest finish(uint64_t size) {
    {
      std::lock_guard<std::mutex> g(mu_);
      size_ = size;
      sized_ = true;
    }
    if (th_.joinable()) th_.join();
    if (error_) std::rethrow_exception(error_);
    if (at_ != size) throw Error(Errc::io, "'" + path_ + "' is shorter than it was written", "run the sync again");
    return h_.finish();
  }
  void stop() {
    stop_ = true;
    if (th_.joinable()) th_.join();
  }

 private:
  void run() {
    try {
      std::vector<char> buf(1 << 20);
      for (;;) {
        if (stop_) return;
        uint64_t limit = UINT64_MAX;
        bool sized;
        {
          std::lock_guard<std::mutex> g(mu_);
          sized = sized_;
          if (sized_) limit = size_;
        }
        if (at_ >= limit) return;
        ssize_t n = ::pread(fd_, buf.data(), static_cast<size_t>(std::min<uint64_t>(buf.size(), limit - at_)),
                            static_cast<off_t>(at_));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("cannot read", path_, errno);
        if (n == 0) {
          if (sized) return;  // shorter than the download said: finish() reports it
          std::this_thread::sleep_for(std::chrono::microseconds(500));  // caught up with the writer
          continue;
        }
        h_.update(buf.data(), static_cast<size_t>(n));
        at_ += static_cast<uint64_t>(n);
      }
    } catch (...) {
      error_ = std::current_exception();
    }
  }

  int fd_;
  std::string path_;
  Hasher h_;
  uint64_t at_ = 0;
  std::mutex mu_;
  uint64_t size_ = 0;
  bool sized_ = false;
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;
  std::thread th_;  // last: starts after the members it uses
};

void fetch_full(Run& r, PlanItem& it, uint64_t done_before) {
  std::string sp = r.inst->staged(it.digest + ".part");
  uint64_t off = it.offset;
  UniqueFd fd = open_staged(sp, &off);
  if (off != it.offset) {
    r.j.set_offset(r.ch.name, it.path, off);
    it.offset = off;
  }
  set_state(r, it, ItemState::fetching);
  if (off < it.size) {
    auto on_durable = [&](uint64_t o) {
      r.j.set_offset(r.ch.name, it.path, o);
      it.offset = o;
      r.prog.bytes_done = done_before + o;
      r.progress();
    };
    // Verified as it arrives (a second thread hashes behind the writer, the kept prefix too).
    BackgroundHasher hasher(fd.get(), sp);
    DownloadResult d = r.http.download_to_fd(object_path(it.digest), fd.get(), sp, off, it.size, on_durable);
    if (d.size != it.size)
      throw Error(Errc::network,
                  "the download of '" + it.path + "' ended after " + std::to_string(d.size) + " of " +
                      std::to_string(it.size) + " bytes",
                  "the next attempt resumes from there");
    std::string got;
    if (d.restarted) {  // the server sent it all again: what the thread read may be stale
      hasher.stop();
      r.inst->verify(sp, it.digest, it.size, it.path);
      got = it.digest;
    } else {
      got = digest_hex(hasher.finish(it.size));
    }
    fd = UniqueFd();
    if (got != it.digest)
      throw Error(Errc::mismatch,
                  "'" + it.path + "': the received bytes do not match the signed digest (got " + got.substr(0, 16) +
                      "..., signed " + it.digest.substr(0, 16) + "...)",
                  "the bytes are discarded and fetched again; if this repeats, HQ's copy is damaged: republish there");
  } else {
    fd = UniqueFd();
    r.inst->verify(sp, it.digest, it.size, it.path);
  }
  install_item(r, it, sp);
}

// Returns false when the item fell back to a full download.
bool fetch_delta(Run& r, PlanItem& it, uint64_t done_before) {
  if (r.deltas_unsupported) {
    fall_back(r, it, "HQ does not compute deltas");
    return false;
  }
  std::string basis = r.inst->final_path(it.path);
  if (it.delta_id.empty()) {
    std::string sig;
    try {
      sig = make_signature(basis);
    } catch (const Error& e) {
      fall_back(r, it, std::string("the old version cannot be read: ") + e.what());
      return false;
    }
    DeltaDeclined declined;
    auto ticket = request_delta(r.http, sig, it.digest, it.size, &declined);
    if (!ticket) {
      if (declined.reason == NoDelta::unsupported) r.deltas_unsupported = true;
      fall_back(r, it, declined.why);
      return false;
    }
    r.j.set_delta(r.ch.name, it.path, ticket->id, ticket->size);
    it.delta_id = ticket->id;
    it.delta_size = ticket->size;
    it.offset = 0;
    fault_point("after_delta_request");
  }
  std::string dp = r.inst->staged(it.delta_id + ".delta");
  uint64_t off = it.offset;
  {
    UniqueFd fd = open_staged(dp, &off);
    if (off != it.offset) {
      r.j.set_offset(r.ch.name, it.path, off);
      it.offset = off;
    }
    set_state(r, it, ItemState::fetching);
    if (off < it.delta_size) {
      auto on_durable = [&](uint64_t o) {
        r.j.set_offset(r.ch.name, it.path, o);
        it.offset = o;
        r.prog.bytes_done = done_before + o;
        r.progress();
      };
      DownloadResult d;
      try {
        d = r.http.download_to_fd("/deltas/" + it.delta_id, fd.get(), dp, off, it.delta_size, on_durable);
      } catch (const Error& e) {
        if (e.code() == Errc::not_found) {
          fall_back(r, it, "HQ no longer has the delta");
          return false;
        }
        if (e.code() == Errc::mismatch) {
          fall_back(r, it, e.what());
          return false;
        }
        throw;
      }
      if (d.size != it.delta_size)
        throw Error(Errc::network,
                    "the delta download for '" + it.path + "' ended after " + std::to_string(d.size) + " of " +
                        std::to_string(it.delta_size) + " bytes",
                    "the next attempt resumes from there");
    }
  }
  std::string out = r.inst->staged(it.digest + ".patched");
  UniqueFd ofd(::open(out.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!ofd) throw_errno("cannot create staged file", out, errno);
  uint64_t written = 0;
  Digest d{};
  try {
    d = apply_delta(basis, dp, ofd.get(), out, it.size, &written);
  } catch (const Error& e) {
    if (e.code() != Errc::mismatch) throw;
    ::unlink(out.c_str());
    ++r.res.rejected;
    fall_back(r, it, e.what());
    return false;
  }
  ofd = UniqueFd();
  if (written != it.size || digest_hex(d) != it.digest) {
    ::unlink(out.c_str());
    ++r.res.rejected;
    fall_back(r, it, "the patched file does not match the signed digest (damaged delta or changed basis)");
    return false;
  }
  fault_point("after_patch");
  install_item(r, it, out);
  ::unlink(dp.c_str());
  return true;
}

// The staged file of an item that a previous run verified (empty when none applies).
std::string verified_staged_name(const PlanItem& it) {
  switch (it.action) {
    case Action::full: return it.digest + ".part";
    case Action::delta: return it.digest + ".patched";
    case Action::copy: return "c" + std::to_string(it.ord) + ".copy";
    default: return {};
  }
}

// A previous run verified this item (and maybe renamed it into place before it died).
bool resume_verified(Run& r, PlanItem& it) {
  std::string sp = r.inst->staged(verified_staged_name(it));
  if (exists_file(sp)) {
    try {
      r.inst->verify(sp, it.digest, it.size, it.path);
      install_item(r, it, sp);
      return true;
    } catch (const Error& e) {
      if (e.code() != Errc::mismatch) throw;
      ::unlink(sp.c_str());
    }
  } else if (r.inst->final_matches(it.path, it.digest, it.size)) {
    set_state(r, it, ItemState::installed);  // renamed before the journal heard of it
    r.prog.files_done++;
    return true;
  }
  r.j.set_offset(r.ch.name, it.path, 0);
  it.offset = 0;
  set_state(r, it, ItemState::planned);
  return false;
}

void record_failure(Run& r, PlanItem& it, const std::string& msg) {
  r.j.set_state(r.ch.name, it.path, ItemState::failed, msg);
  it.state = ItemState::failed;
  r.res.failed_files++;
  if (r.res.error.empty()) r.res.error = msg;
  r.log("FAILED '" + it.path + "': " + msg);
}

// Fetches one delta/full item with bounded retries. Returns when installed or failed.
void fetch_item(Run& r, PlanItem& it, uint64_t done_before) {
  int mismatches = 0, stalls = 0;
  r.prog.current = it.path;
  r.progress(true);
  for (;;) {
    if (r.stopped())
      throw Error(Errc::network, "sync of channel '" + r.ch.name + "' stopped: distd is shutting down",
                  "the next run resumes where this one stopped");
    uint64_t before = r.http.bytes_received();
    try {
      if (it.state == ItemState::verified && resume_verified(r, it)) return;
      if (it.action == Action::delta && fetch_delta(r, it, done_before)) {
        r.res.delta++;
        return;
      }
      // A full download, or a delta that just fell back to one.
      fetch_full(r, it, done_before);
      r.res.full++;
      return;
    } catch (const Error& e) {
      switch (e.code()) {
        case Errc::mismatch: {
          ++r.res.rejected;
          ++mismatches;
          r.log(std::string("rejected: ") + e.what());
          r.j.add_attempt(r.ch.name, it.path, e.what());
          ::unlink(r.inst->staged(it.digest + ".part").c_str());
          r.j.set_offset(r.ch.name, it.path, 0);
          it.offset = 0;
          set_state(r, it, ItemState::planned);
          if (mismatches >= r.rs.max_attempts) {
            record_failure(r, it,
                           std::string(e.what()) + " (" + std::to_string(mismatches) +
                               " attempts; HQ's copy may be damaged: check it there and republish)");
            r.res.code = Errc::mismatch;
            return;
          }
          continue;
        }
        case Errc::network: {
          if (r.stopped()) throw;
          r.j.add_attempt(r.ch.name, it.path, e.what());
          if (r.http.bytes_received() > before) {  // the link carried data before it broke: resume now
            stalls = 0;
            r.log(std::string("link cut, resuming: ") + e.what());
            continue;
          }
          if (++stalls >= r.rs.max_attempts)
            throw Error(Errc::network,
                        "link to HQ failed while fetching '" + it.path + "' (" + human_bytes(it.offset) + " of " +
                            human_bytes(it.action == Action::delta ? it.delta_size : it.size) + " kept): " + e.what(),
                        e.hint());
          r.log(std::string("link problem, retrying: ") + e.what());
          sleep_unless_stopped(r.opts.stop, retry_pause(stalls));
          continue;
        }
        case Errc::no_space:
          throw Error(Errc::no_space,
                      "disk full while fetching '" + it.path + "' (" + human_bytes(it.size) + ") into " +
                          r.inst->staging() + ": " + e.what(),
                      "free space on that file system (the file needs " + human_bytes(it.size - it.offset) +
                          " more), then run the sync again: it resumes where it stopped");
        case Errc::not_found:
          record_failure(r, it, e.what());
          r.res.code = Errc::not_found;
          return;
        default:
          throw;
      }
    }
  }
}

constexpr uint64_t kBatchObjectMax = 1 << 20;  // objects up to this size are fetched in batches
constexpr size_t kBatchFiles = 1000;             // at most this many objects per batch ...
constexpr uint64_t kBatchBytes = 16 << 20;       // ... and about this many bytes

// Installs verified staged files together and records them in one journal transaction.
void install_group(Run& r, const std::vector<PlanItem*>& items, const std::vector<Installer::Staged>& files) {
  install_verified(*r.inst, r.j, r.ch.name, items, files);
  r.prog.files_done += items.size();
}

// Fetches small whole objects with one POST /objects (their bytes concatenated in order),
// verifying each as it completes, and installs those that verified. After a cut, the object
// that was arriving keeps its bytes (fsynced, offset in the journal) for a resumable GET.
// Returns true when anything came through. Sets r.batches_unsupported when HQ does not serve
// batches (a plain web server): the caller then GETs each object.
bool fetch_batch(Run& r, std::vector<PlanItem*>& group, uint64_t& done) {
  std::vector<PlanItem*> todo;
  std::vector<PlanItem*> there;
  for (PlanItem* it : group) {
    if (r.inst->final_matches(it->path, it->digest, it->size))
      there.push_back(it);  // a killed run renamed it into place before the journal heard of it
    else
      todo.push_back(it);
  }
  if (!there.empty()) {
    Journal::Batch b(r.j);
    for (PlanItem* it : there) {
      set_state(r, *it, ItemState::installed);
      r.prog.files_done++;
      r.res.full++;
      done += it->size;
    }
  }
  if (todo.empty()) return true;
  std::string req;
  req.reserve(todo.size() * 32);
  for (PlanItem* it : todo) {
    auto d = parse_digest_hex(it->digest);
    req.append(reinterpret_cast<const char*>(d->data()), d->size());
  }
  std::vector<PlanItem*> ok_items;  // verified, not installed yet
  std::vector<Installer::Staged> ok_files;
  size_t installed = 0;
  auto ok_since = std::chrono::steady_clock::now();
  // Installs what verified so far: every 2 s (or 256 files), so that a kill or a power cut during
  // a long batch on a slow link loses at most that much, as with single downloads.
  auto install_ok = [&] {
    if (ok_items.empty()) return;
    std::vector<PlanItem*> items = std::move(ok_items);
    std::vector<Installer::Staged> files = std::move(ok_files);
    ok_items.clear();
    ok_files.clear();
    install_group(r, items, files);  // (a failure here leaves them to the next run's checks)
    r.res.full += items.size();
    installed += items.size();
  };
  size_t k = 0;      // object arriving
  uint64_t got = 0;  // of its bytes
  UniqueFd fd;
  std::string sp;
  Hasher h;
  auto finish = [&] {
    PlanItem* it = todo[k];
    fd = UniqueFd();
    std::string hex = digest_hex(h.finish());
    if (hex == it->digest) {
      if (ok_items.empty()) ok_since = std::chrono::steady_clock::now();
      ok_items.push_back(it);
      ok_files.push_back({sp, it->path, it->mode});
      if (ok_items.size() >= 256 || std::chrono::steady_clock::now() - ok_since >= std::chrono::seconds(2))
        install_ok();
      done += it->size;
      r.prog.bytes_done = done;
      r.progress();
    } else {
      ++r.res.rejected;
      r.log("rejected: '" + it->path + "': the received bytes do not match the signed digest; fetching it again");
      ::unlink(sp.c_str());
    }
    ++k;
    got = 0;
  };
  auto open_next = [&] {
    for (; k < todo.size(); finish()) {
      sp = r.inst->staged(todo[k]->digest + ".part");
      h = Hasher();
      fd = UniqueFd(::open(sp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!fd) throw_errno("cannot create staged file", sp, errno);
      r.prog.current = todo[k]->path;
      if (todo[k]->size > 0) return;
    }
  };
  auto sink = [&](const char* p, size_t n) {
    while (n > 0) {
      if (k >= todo.size())
        throw Error(Errc::mismatch, "HQ sent more than the signed sizes of " + std::to_string(todo.size()) + " objects",
                    "they are fetched one by one instead");
      size_t take = static_cast<size_t>(std::min<uint64_t>(n, todo[k]->size - got));
      write_all(fd.get(), std::string_view(p, take), sp);
      h.update(p, take);
      got += take;
      p += take;
      n -= take;
      if (got == todo[k]->size) {
        finish();
        open_next();
      }
    }
  };
  std::exception_ptr failure;
  bool cut = false;
  try {
    open_next();
    HttpAnswer a = r.http.post_stream("/objects", req, sink);
    if (a.status == 404) {
      r.log("HQ lacks an object of a batch; fetching them one by one");
      group.clear();
    } else if (a.status != 200) {
      r.batches_unsupported = true;
      r.log("HQ does not serve batches (HTTP " + std::to_string(a.status) + "); fetching objects one by one");
    } else if (k < todo.size()) {
      cut = true;
      r.log("link cut during a batch of " + std::to_string(todo.size()) + " objects; resuming");
    }
  } catch (const Error& e) {
    if (e.code() == Errc::network) {
      if (r.stopped()) failure = std::current_exception();
      cut = true;
      r.log(std::string("link cut during a batch, resuming: ") + e.what());
    } else if (e.code() == Errc::mismatch) {
      r.batches_unsupported = true;
      r.log(std::string("batch refused: ") + e.what());
    } else if (e.code() == Errc::no_space) {
      failure = std::make_exception_ptr(
          Error(Errc::no_space, "disk full while fetching '" + todo[k]->path + "' into " + r.inst->staging() + ": " + e.what(),
                "free space on that file system, then run the sync again: it resumes where it stopped"));
    } else {
      failure = std::current_exception();
    }
  }
  bool progressed = installed > 0 || !ok_items.empty();
  if (cut && k < todo.size() && got > 0 && fd) {
    // Keep the partial object for a Range GET: durable first, then the journal says so.
    if (try_sync_file(fd.get()) == 0) {
      PlanItem* it = todo[k];
      set_state(r, *it, ItemState::fetching);
      r.j.set_offset(r.ch.name, it->path, got);
      it->offset = got;
      progressed = true;
    }
  }
  fd = UniqueFd();
  install_ok();
  if (failure) std::rethrow_exception(failure);
  return progressed;
}

// The work of one plan. Returns true when every item is installed.
bool execute(Run& r, std::vector<PlanItem>& items) {
  int64_t now = r.opts.now ? r.opts.now : now_s();
  bool big_ok = !r.opts.honour_window || r.rs.big_files_allowed(now);
  // path (in items) -> delta/full item, for the paths copy items take their content from
  std::unordered_set<std::string_view> copy_sources;
  for (auto& it : items)
    if (it.action == Action::copy && it.basis_path != it.path) copy_sources.insert(it.basis_path);
  std::unordered_map<std::string_view, PlanItem*> fetched;
  for (auto& it : items)
    if ((it.action == Action::full || it.action == Action::delta) && copy_sources.count(it.path))
      fetched.emplace(it.path, &it);
  auto from_plan = [&](const PlanItem& it) { return copies_fetched_content(it, fetched); };
  auto deferred = [&](const PlanItem& it) {
    return !big_ok && !it.priority && it.size > r.rs.big_file_threshold;
  };

  // Progress totals.
  for (auto& it : items) {
    if (it.state == ItemState::installed) continue;
    r.prog.files_total++;
    if ((it.action == Action::full || it.action == Action::delta) && !deferred(it)) {
      r.prog.bytes_total += it.size;
      r.res.content_bytes += it.size;
    }
  }

  // 1. Copies from files here now (renames, duplicates), before anything is overwritten.
  std::vector<PlanItem*> fell_back;
  uint64_t copied = install_local_copies(*r.inst, r.j, r.ch.name, items, r.opts.log, &fell_back);
  r.res.copied += copied;
  r.prog.files_done += copied;
  for (PlanItem* it : fell_back) {
    if (copy_sources.count(it->path)) fetched.emplace(it->path, it);
    if (!deferred(*it)) {
      r.prog.bytes_total += it->size;
      r.res.content_bytes += it->size;
    }
  }

  // 2. Downloads, in plan order (priority, then small first).
  uint64_t done = 0;
  std::vector<PlanItem*> order;
  for (auto& it : items)
    if ((it.action == Action::full || it.action == Action::delta) && it.state != ItemState::installed)
      order.push_back(&it);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->ord < b->ord; });
  auto batchable = [&](const PlanItem& it) {
    return !r.batches_unsupported && it.action == Action::full && it.size <= kBatchObjectMax && it.offset == 0 &&
           (it.state == ItemState::planned || it.state == ItemState::fetching || it.state == ItemState::failed);
  };
  for (size_t i = 0; i < order.size();) {
    PlanItem* it = order[i];
    if (deferred(*it)) {
      r.res.deferred_files++;
      r.res.deferred_bytes += it->size;
      ++i;
      continue;
    }
    if (it->state == ItemState::failed) set_state(r, *it, ItemState::planned);  // a new run, a new chance
    if (batchable(*it)) {
      // Small whole objects: many per request, installed together.
      std::vector<PlanItem*> group;
      uint64_t bytes = 0;
      size_t j = i;
      for (; j < order.size() && group.size() < kBatchFiles && bytes < kBatchBytes; ++j) {
        if (order[j]->state == ItemState::installed || deferred(*order[j])) continue;
        if (!batchable(*order[j])) break;
        group.push_back(order[j]);
        bytes += order[j]->size;
      }
      bool progressed = fetch_batch(r, group, done);
      while (i < order.size() && order[i]->state == ItemState::installed) ++i;
      if (progressed || i >= order.size() || r.batches_unsupported) continue;
      it = order[i];  // nothing came through: this one the careful way (retries, backoff)
      if (deferred(*it)) continue;
    }
    fetch_item(r, *it, done);
    if (it->state == ItemState::installed) done += it->size;
    r.prog.bytes_done = done;
    r.progress(true);
    ++i;
  }

  // 3. Copies of content fetched above (the same new file at several paths).
  std::vector<PlanItem*> copies;
  std::vector<Installer::Staged> copy_group;
  for (auto& it : items) {
    if (!from_plan(it) || it.state == ItemState::installed) continue;
    PlanItem* leader = fetched.find(it.basis_path)->second;
    if (leader->state != ItemState::installed) {
      if (deferred(*leader)) {
        r.res.deferred_files++;
        r.res.deferred_bytes += it.size;
      } else {
        record_failure(r, it, "its content ('" + leader->path + "') could not be fetched");
      }
      continue;
    }
    std::string sp = r.inst->staged("c" + std::to_string(it.ord) + ".copy");
    if (!r.inst->stage_copy(it.basis_path, sp, it.digest, it.size, /*sync=*/false)) {
      record_failure(r, it, "copying '" + it.basis_path + "' did not verify (was it changed locally?)");
      continue;
    }
    copies.push_back(&it);
    copy_group.push_back({sp, it.path, it.mode});
    if (copies.size() >= kBatchFiles) {
      install_group(r, copies, copy_group);
      r.res.copied += copies.size();
      copies.clear();
      copy_group.clear();
    }
  }
  install_group(r, copies, copy_group);
  r.res.copied += copies.size();

  bool all = true;
  for (auto& it : items) {
    if (it.state != ItemState::installed) all = false;
    else if (it.action == Action::unchanged) r.res.unchanged++;
  }
  return all;
}

ChannelResult run_channel(const Config& cfg, const RegionalSettings& rs, const ChannelConfig& ch,
                          const SyncOptions& opts, Journal& j) {
  ChannelResult res;
  res.channel = ch.name;
  HttpOptions ho;
  ho.connect_timeout_s = rs.connect_timeout;
  ho.low_speed_limit = rs.low_speed_limit;
  ho.low_speed_time = rs.low_speed_time;
  ho.max_recv_speed = rs.bandwidth_limit;
  ho.stop = opts.stop;
  HttpClient http(rs.hq_url, ho);
  Run r(cfg, rs, ch, opts, j, http, res);
  r.prog.channel = ch.name;
  http.options().on_wire_bytes = [&](uint64_t) { r.progress(); };

  j.record_attempt(ch.name);
  ChannelRecord rec = installed_record(cfg, rs.hq_key, j, ch.name);
  res.from_version = rec.installed_version;

  // 1. The manifest: signed by the pinned key, not expired beyond the slack, not older.
  std::string body;
  VerifyOptions vo;
  vo.now = opts.now;
  vo.expiry_slack_seconds = rs.expiry_slack_days * 86400;
  std::optional<SignedManifest> verified;
  for (bool whole : {false, true}) {
    try {
      body = fetch_manifest(r, whole);
    } catch (const Error& e) {
      if (e.code() == Errc::network) j.record_link(false, e.what());
      throw;
    }
    try {
      verified.emplace(verify_manifest(body, rs.hq_key, vo, http.url("/channels/" + ch.name + "/latest.manifest")));
      break;
    } catch (const Error& e) {
      // A delta-built manifest that does not verify is fetched whole once (a damaged delta must
      // not stop a sync); the whole one's verdict stands.
      if (whole || e.code() == Errc::expired) throw;
      r.log(std::string("manifest built from a delta did not verify (") + e.what() + "); fetching it whole");
    }
  }
  j.record_link(true, "manifest of " + ch.name + " fetched");
  SignedManifest sm = std::move(*verified);
  verified.reset();
  const Manifest& m = sm.manifest;
  if (m.channel != ch.name)
    throw Error(Errc::mismatch, "HQ's manifest for channel '" + ch.name + "' is for channel '" + m.channel + "'",
                "check [regional] hq_url and the channel names at HQ");
  std::string digest = digest_hex(sm.body_digest);
  res.to_version = m.version;
  j.set_latest_known(ch.name, m.version);
  // 2. The plan: continue the journal's plan for this very manifest, or make a new one.
  r.inst = std::make_unique<Installer>(ch.path, rs.staging_dir + "/" + ch.name);
  PlanOptions po;
  po.rollback_hint =
      "nothing was changed (a replayed or rolled-back manifest?); if HQ really restored an older state, it must "
      "publish a new, higher version";
  po.priority = opts.priority;
  po.log = opts.log;
  ChannelPlan cp = prepare_channel_plan(cfg, ch, j, *r.inst, rec, sm, body, po);
  if (cp.up_to_date) {
    res.up_to_date = res.converged = true;
    res.unchanged = cp.unchanged;
    j.record_success(ch.name);
    r.log("up to date (version " + std::to_string(m.version) + ")");
    run_after_install(cfg, ch, [&r](const std::string& s) { r.log(s); });
    return res;
  }
  std::vector<PlanItem> items = std::move(cp.items);
  uint64_t unchanged = cp.unchanged;  // not planned: counted only
  const std::string target_file = cp.target_file;
  r.wire_base = http.bytes_received();

  // 3. Fetch, verify, install. The manifest's entries are not needed meanwhile (the deletions
  // read the target file again): their memory goes to the plan.
  std::vector<Entry>().swap(sm.manifest.entries);
  bool all = execute(r, items);
  std::vector<PlanItem>().swap(items);
  res.unchanged += unchanged;
  res.bytes_received = http.bytes_received();
  res.bytes_sent = http.bytes_sent();
  r.progress(true);
  if (!all) {
    res.converged = false;
    if (res.failed_files == 0 && res.deferred_files > 0) {
      res.error = std::to_string(res.deferred_files) + " big files (" + human_bytes(res.deferred_bytes) +
                  ") wait for the big-files window " + rs.big_files_window;
      res.hint = "they are fetched inside the window; run 'distctl sync --now' to fetch them at once";
    } else {
      res.ok = false;
      if (res.code == Errc::internal) res.code = Errc::mismatch;
      res.error = std::to_string(res.failed_files) + " files of channel '" + ch.name +
                  "' could not be installed; first: " + res.error;
      res.hint = "see 'distctl status' for each file's last error; the next run tries them again";
    }
    j.record_error(ch.name, res.error);
    return res;
  }

  // 4. Deletions, only now that the whole new version is in place; then record it.
  res.deleted = finish_channel_install(
      cfg, ch, rs.hq_key, j, *r.inst, m.version, digest, target_file,
      [&](uint64_t deleted) {
        res.converged = true;
        r.log("installed version " + std::to_string(m.version) + " (" + std::to_string(res.copied) + " copied, " +
              std::to_string(res.delta) + " by delta, " + std::to_string(res.full) + " whole, " +
              std::to_string(deleted) + " deleted; " + human_bytes(res.bytes_received) + " received)");
      },
      opts.log);
  return res;
}

}  // namespace

ChannelResult sync_channel(const Config& cfg, const std::string& channel, const SyncOptions& opts) {
  if (cfg.role != "regional")
    throw Error(Errc::usage, "config " + cfg.file + " has role \"" + cfg.role + "\"; sync runs at a regional center",
                "use the regional center's config (role = \"regional\")");
  RegionalSettings rs = RegionalSettings::from(cfg);
  const ChannelConfig& ch = cfg.channel(channel);
  StateLock lock(cfg.state_dir);
  Journal j(journal_path(cfg));
  try {
    return run_channel(cfg, rs, ch, opts, j);
  } catch (const Error& e) {
    try {
      j.record_error(channel, e.what());
    } catch (...) {
    }
    throw;
  }
}

SyncResult sync_all(const Config& cfg, const SyncOptions& opts) {
  SyncResult out;
  if (cfg.channels.empty())
    throw Error(Errc::usage, "config " + cfg.file + " has no [[channel]]", "add the channels this center receives");
  for (const auto& ch : cfg.channels) {
    try {
      out.channels.push_back(sync_channel(cfg, ch.name, opts));
    } catch (const Error& e) {
      ChannelResult r;
      r.channel = ch.name;
      r.ok = false;
      r.code = e.code();
      r.error = e.what();
      r.hint = e.hint();
      out.channels.push_back(r);
      if (e.code() == Errc::network || e.code() == Errc::usage || e.code() == Errc::no_space) break;
    }
  }
  return out;
}

}  // namespace distd
