#include "distd/bundle/request.h"
#include "distd/bundle/hooks.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

#include "distd/hq/sites.h"
#include "distd/regional/channel_install.h"
#include "distd/regional/journal.h"
#include "distd/regional/status_report.h"
#include "distd/regional/sync.h"
#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/fs.h"
#include "manifest/scan.h"

namespace distd::bundle {

SiteKeyPaths site_key_paths(const Config& cfg) {
  RegionalSettings rs = RegionalSettings::offline(cfg);
  SiteKeyPaths p;
  p.secret = rs.site_secret_key;
  p.pub = rs.site_public_key;
  return p;
}

KeyPair load_or_create_site_key(const Config& cfg, bool* created) {
  return RegionalSettings::offline(cfg).site_keys(created);
}

namespace {

// Copies src to dst (atomically, durably) and returns its digest and size.
Digest copy_file_digest(const std::string& src, const std::string& dst, uint64_t* size) {
  std::string data = read_file(src, uint64_t(1) << 30, "outbound item");
  *size = data.size();
  write_file_atomic(dst, data, 0644);
  return digest_bytes(data);
}

// The center's status report for the request (docs/formats/bundle.md): the one it POSTs after a
// sync, as of `now`, re-encoded as printable ASCII (non-ASCII as \u escapes), at most
// kMaxRequestReportBytes (the last channels dropped, "truncated"). Empty when it cannot be made:
// the request matters more, so that is one log line, not an error.
std::string request_report(const Config& cfg, int64_t now, const std::function<void(const std::string&)>& log) {
  try {
    nlohmann::json r = nlohmann::json::parse(status_report_body(cfg, now));
    std::string line = r.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
    while (line.size() > kMaxRequestReportBytes && !r["channels"].empty()) {
      r["channels"].erase(r["channels"].size() - 1);
      r["truncated"] = true;
      line = r.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
    }
    if (line.size() <= kMaxRequestReportBytes) return line;
    if (log) log("the request carries no status report: it has more than 64 KiB");
  } catch (const std::exception& e) {
    if (log) log(std::string("the request carries no status report: ") + e.what());
  }
  return {};
}

}  // namespace

RequestResult write_request(const Config& cfg, const std::string& dir, const RequestOptions& opts) {
  cfg.require_role("regional", "requests are made at a regional center");
  if (!is_safe_name(cfg.site))
    throw Error(Errc::usage, "config " + cfg.file + ": site id '" + cfg.site + "' cannot name a file",
                "use letters, digits, '-', '_' and '.' (e.g. site = \"center-07\")");
  RequestResult res;
  KeyPair kp = load_or_create_site_key(cfg, &res.key_created);
  res.public_key_path = site_key_paths(cfg).pub;
  res.site = cfg.site;
  res.key_id = kp.pub.short_id();
  if (res.key_created && opts.log)
    opts.log("generated this site's key pair (key id " + res.key_id + "); enroll " + res.public_key_path +
             " at HQ as <sites_dir>/" + cfg.site + ".pub");

  Request& r = res.request;
  r.site = cfg.site;
  r.created = static_cast<int64_t>(std::time(nullptr));
  r.priority = opts.priority;
  {
    StateLock lock(cfg.state_dir);
    Journal j(journal_path(cfg));
    for (const auto& ch : cfg.channels) {
      RequestChannel rc;
      rc.name = ch.name;
      ChannelRecord rec = j.channel_record(ch.name);
      rc.installed_version = rec.installed_version;
      rc.installed_digest = rec.installed_digest ? digest_hex(*rec.installed_digest) : "-";
      for (const auto& e : scan_channel_tree(cfg, ch, opts.log)) {
        std::array<uint8_t, kHeldPrefixBytes> h{};
        std::copy_n(e.digest.begin(), kHeldPrefixBytes, h.begin());
        rc.held.push_back(h);
      }
      std::sort(rc.held.begin(), rc.held.end());
      rc.held.erase(std::unique(rc.held.begin(), rc.held.end()), rc.held.end());
      r.channels.push_back(std::move(rc));
    }
  }
  r.report = request_report(cfg, r.created, opts.log);
  make_dirs(dir, 0755);
  // Plug-ins (the forum's sealed posts) refresh their files in the outbound directory first.
  for (auto& hook : request_hooks()) hook(cfg, opts.log ? opts.log : HookLogFn([](const std::string&) {}));
  std::string outbox = cfg.state_dir + "/outbound";
  auto names = list_dir(outbox);
  std::sort(names.begin(), names.end());
  if (!names.empty()) make_dirs(dir + "/" + kOutboundDir, 0755);
  for (auto& n : names) {
    struct stat st {};
    std::string src = outbox + "/" + n;
    if (!is_safe_name(n) || ::lstat(src.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    OutboundItem ob;
    ob.name = n;
    ob.digest = copy_file_digest(src, dir + "/" + kOutboundDir + "/" + n, &ob.size);
    r.outbound.push_back(ob);
  }
  std::string text = sign_text(render_request_body(r), kp.sec);
  res.path = dir + "/" + kRequestFile;
  write_file_atomic(res.path, text, 0644);
  res.bytes = text.size();
  return res;
}

Request read_verified_request(const Config& cfg, const std::string& path, std::string* digest_out) {
  std::string bytes = read_file(path, kMaxRequestBytes, "request");
  Digest kid{};
  std::string body;
  Signature sig{};
  Request r = parse_request(bytes, path, &kid, &body, &sig);
  const std::string keyfile = hq::site_key_file(cfg, r.site);
  std::optional<PublicKey> found = hq::find_enrolled_site_key(cfg, r.site);
  if (!found)
    throw Error(Errc::not_found,
                "request " + path + " comes from site '" + r.site + "', which is not enrolled at HQ (no " + keyfile +
                    "); it is signed by key " + digest_hex(kid).substr(0, 16) + "...",
                "if the center really is '" + r.site + "', copy its site.pub (compare the key id by eye) to " +
                    keyfile + " and export again");
  const PublicKey& enrolled = *found;
  if (enrolled.key_id() != kid)
    throw Error(Errc::bad_signature,
                "request " + path + " claims to come from site '" + r.site + "' but is signed by key " +
                    digest_hex(kid).substr(0, 16) + "..., not by its enrolled key " + enrolled.short_id() + " (" +
                    keyfile + ")",
                "refused; if the center made a new key, enroll the new site.pub at HQ after checking it by phone");
  if (!verify_detached(enrolled, body, sig))
    throw Error(Errc::bad_signature,
                "request " + path + " from site '" + r.site + "': the signature does not verify (the file was altered)",
                "refused; make a new request at the center ('distctl bundle request')");
  if (digest_out) *digest_out = digest_hex(digest_bytes(bytes));
  return r;
}

}  // namespace distd::bundle
