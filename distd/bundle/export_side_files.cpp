#include "distd/bundle/export_side_files.h"

#include "manifest/digest.h"
#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/fs.h"
#include "manifest/key_record.h"

namespace distd::bundle::export_detail {

// Keeps each outbound item of req that matches the signed request in <state_dir>/inbound/<site>/.
// Returns their names; an item that does not match or cannot be kept is a warning in res.
std::vector<std::string> receive_outbound(const Config& cfg, const std::string& request_path, const Request& req,
                                          ExportResult& res) {
  std::vector<std::string> received;
  std::string from = dir_name(request_path) + "/" + kOutboundDir;
  std::string inbox = cfg.state_dir + "/inbound/" + req.site;
  for (auto& ob : req.outbound) {
    try {
      std::string data = read_file(from + "/" + ob.name, ob.size, "outbound item");
      if (data.size() != ob.size || digest_bytes(data) != ob.digest) {
        res.warnings.push_back("outbound item '" + ob.name + "' does not match the signed request; ignored");
        continue;
      }
      make_dirs(inbox, 0750);
      write_file_atomic(inbox + "/" + ob.name, data, 0640);
      res.outbound_received++;
      received.push_back(ob.name);
    } catch (const Error& e) {
      res.warnings.push_back(std::string("outbound item '") + ob.name + "': " + e.what());
    }
  }
  return received;
}

// Runs every export hook on what came along from req's site. Returns the files the hooks want on
// the stick; their log lines become notes in res, a hook's Error a warning.
std::vector<StickFile> run_export_hooks(const Config& cfg, const Request& req, const std::vector<std::string>& received,
                                        ExportResult& res) {
  std::vector<StickFile> extras;
  auto log = [&](const std::string& line) { res.notes.push_back(line); };
  for (auto& hook : export_hooks()) {
    try {
      for (auto& f : hook(cfg, req.site, cfg.state_dir + "/inbound/" + req.site, received, log)) extras.push_back(std::move(f));
    } catch (const Error& e) {
      res.warnings.push_back(e.what());
    }
  }
  return extras;
}

// HQ's key records public/keys/2.keys, 3.keys, ... up to the first gap (at most
// kMaxStickKeyRecords): a center that never reaches the link follows HQ's key by them. A record
// over kMaxKeyRecordBytes, or more records than fit, end the list with a warning in res; so does
// a newest record that names another key than signer (the one signing this bundle).
std::vector<std::string> stick_key_records(const hq::Layout& L, const PublicKey& signer, ExportResult& res) {
  std::vector<std::string> recs;
  for (uint64_t v = 2;; ++v) {
    std::string p = L.key_record(v);
    try {
      std::string rec = read_file(p, kMaxKeyRecordBytes, "key record");
      if (recs.size() == kMaxStickKeyRecords) {
        res.warnings.push_back("HQ has more than " + std::to_string(kMaxStickKeyRecords) +
                               " key records; only records 2.." + std::to_string(v - 1) + " go on the stick");
        break;
      }
      recs.push_back(std::move(rec));
    } catch (const Error& e) {
      if (e.code() != Errc::not_found) res.warnings.push_back("key record " + p + " left off the stick: " + e.what());
      break;
    }
  }
  // The record's "key <hex>" line (docs/formats/keys.md); the center verifies the rest.
  if (!recs.empty() && recs.back().find("\nkey " + to_hex(signer.bytes.data(), signer.bytes.size()) + "\n") ==
                           std::string::npos)
    res.warnings.push_back("HQ's newest key record (" + std::to_string(recs.size() + 1) +
                           ") names another key than the one signing this bundle (" + signer.short_id() +
                           "): a center that follows the records will refuse the bundle");
  return recs;
}

}  // namespace distd::bundle::export_detail
