#include "distd/regional/sync_run.h"

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

#include "distd/delta/rsync.h"
#include "distd/io/background_hasher.h"
#include "distd/io/pause.h"
#include "distd/io/zstd_stream.h"
#include "distd/net/http_client.h"
#include "distd/regional/channel_install.h"
#include "distd/regional/delta_request.h"
#include "distd/regional/installer.h"
#include "distd/regional/journal.h"
#include "distd/regional/planner.h"
#include "distd/regional/sync_run.h"
#include "manifest/encoding.h"
#include "manifest/fault.h"
#include "manifest/fs.h"
#include "manifest/manifest.h"
#include "manifest/scan.h"

namespace distd::sync_detail {

// The newest manifest file this center has (the target of a sync under way, else the
// installed one): the basis of a manifest patch or delta. Empty when there is none.
std::string manifest_basis(Run& r) {
  std::string basis_path = r.cfg.state_dir + "/manifests/" + r.ch.name + "/target.manifest";
  if (!exists_file(basis_path)) basis_path = installed_manifest_path(r.cfg, r.ch.name);
  if (!exists_file(basis_path)) return {};
  try {
    return read_file(basis_path, r.rs.max_manifest_size, "manifest");
  } catch (const Error&) {
    return {};
  }
}

// The version a manifest file states (its third line), 0 when it does not.
uint64_t manifest_file_version(std::string_view m) {
  const size_t at = m.substr(0, 256).find("\nversion ");
  if (at == std::string_view::npos) return 0;
  const size_t end = m.find('\n', at + 1);
  if (end == std::string_view::npos) return 0;
  return parse_u64(std::string(m.substr(at + 9, end - at - 9))).value_or(0);
}

// The latest manifest in one POST (docs/formats/http.md): as a zstd patch against basis (the
// file of the version the body names), or whole and compressed when HQ no longer has that
// version. nullopt when HQ does not answer it (an HQ before patches, a plain web server): the
// librsync delta is tried next. The result is verified like a downloaded manifest.
std::optional<std::string> fetch_manifest_patch(Run& r, const std::string& basis) {
  const uint64_t v = manifest_file_version(basis);
  if (v == 0) return std::nullopt;
  const std::string body = "distd-basis " + std::to_string(v) + " " + digest_hex(digest_bytes(basis)) + "\n";
  std::string got;
  HttpAnswer a = r.http.post_stream("/channels/" + r.ch.name + "/latest.manifest", body,
                                    [&](const char* p, size_t n) {
                                      if (got.size() + n > r.rs.max_manifest_size)
                                        throw Error(Errc::corrupt, "the answer is over the cap");
                                      got.append(p, n);
                                    },
                                    "distd-patch, zstd");
  if (a.status != 200) return std::nullopt;
  const std::string what = "HQ's manifest patch of channel '" + r.ch.name + "'";
  try {
    if (a.content_encoding == "distd-patch") return zstd_unpatch_capped(basis, got, r.rs.max_manifest_size, what);
    if (a.content_encoding == "zstd") return zstd_decompress(got, r.rs.max_manifest_size, what);
    if (a.content_encoding.empty() || a.content_encoding == "identity") return got;
  } catch (const Error& e) {
    if (e.code() != Errc::mismatch) throw;
    r.log(std::string(e.what()) + "; fetching the manifest again");
  }
  return std::nullopt;
}

// The latest manifest as a delta against the newest one this center has (a few KiB instead of
// the whole list; the result is verified like a downloaded one): a patch, else a librsync
// delta. Empty when there is no basis, HQ does not serve manifest deltas (a plain web server),
// or the delta does not apply.
std::string fetch_manifest_delta(Run& r) {
  std::string basis = manifest_basis(r);
  if (basis.empty()) return {};
  if (std::optional<std::string> m = fetch_manifest_patch(r, basis)) return std::move(*m);
  std::string sig = signature_of_bytes(basis);
  // Capped as decoded: 1 MB of gzip that inflates to 1 GB stops at max_manifest_size.
  HttpAnswer a = r.http.post("/channels/" + r.ch.name + "/latest.manifest", sig, r.rs.max_manifest_size, true);
  if (a.status == 401 || a.status == 403)
    r.log("HQ sends manifest deltas only to enrolled sites (HTTP " + std::to_string(a.status) + ": " +
          a.body.substr(0, std::min(a.body.find('\n'), size_t(300))) + "); fetching the whole manifest");
  if (a.status != 200) return {};
  std::string().swap(sig);
  try {
    return patch_bytes(basis, a.body, r.rs.max_manifest_size);
  } catch (const Error& e) {
    r.log(std::string("manifest delta did not apply (") + e.what() + "); fetching the whole manifest");
    return {};
  }
}

// GET the latest manifest (or a delta of it unless whole), retrying a failing link a few times.
std::string fetch_manifest(Run& r, bool whole) {
  const std::string path = "/channels/" + r.ch.name + "/latest.manifest";
  for (int attempt = 1;; ++attempt) {
    try {
      if (!whole) {
        std::string m = fetch_manifest_delta(r);
        if (!m.empty()) return m;
        whole = true;
      }
      // zstd (docs/formats/compression.md): the decoded manifest has the same cap as a plain one.
      HttpAnswer a = r.http.get(path, r.rs.max_manifest_size, r.manifest_raw ? "" : "zstd");
      if (a.status == 200 && a.content_encoding == "zstd") {
        try {
          return zstd_decompress(a.body, r.rs.max_manifest_size, "HQ's compressed manifest of channel '" + r.ch.name + "'");
        } catch (const Error& e) {
          r.log(std::string(e.what()) + "; fetching it uncompressed");
          r.manifest_raw = true;
          continue;
        }
      }
      if (a.status == 200 && (a.content_encoding.empty() || a.content_encoding == "identity")) return std::move(a.body);
      if (a.status == 200)
        throw Error(Errc::corrupt, "HQ sent the manifest with Content-Encoding '" + a.content_encoding.substr(0, 40) +
                                       "', which distd did not ask for", "check the proxy or web server in front of HQ");
      if (a.status == 404)
        throw Error(Errc::not_found, "HQ (" + r.http.url(path) + ") does not publish channel '" + r.ch.name + "'",
                    "check the channel name here and 'distctl publish --channel " + r.ch.name + "' at HQ");
      throw Error(Errc::network, "HQ answered " + std::to_string(a.status) + " for " + r.http.url(path),
                  "check HQ's server and logs; the next run tries again");
    } catch (const Error& e) {
      if (e.code() == Errc::corrupt)  // over the cap: said before any of it is parsed
        throw Error(Errc::corrupt,
                    "HQ's latest manifest of channel '" + r.ch.name + "' is larger than [regional] max_manifest_size = " +
                        std::to_string(r.rs.max_manifest_size) + " bytes; it was not read further (" + e.what() + ")",
                    "if HQ's channel really is that large (about 150 bytes per file), raise max_manifest_size in "
                    "the center's config; otherwise check what HQ serves at " + r.http.url(path));
      if (e.code() != Errc::network || attempt >= r.rs.max_attempts || r.stopped()) throw;
      r.log(std::string("link problem, retrying: ") + e.what());
      sleep_unless_stopped(r.opts.stop, retry_pause(attempt));
    }
  }
}

}  // namespace distd::sync_detail
