// What an export puts on a stick beside the content: outbound items received from the site,
// files of export hooks, HQ's key records. Private to distd/bundle/ (exporter.cpp).
#pragma once

#include <string>
#include <vector>

#include "distd/bundle/exporter.h"
#include "distd/bundle/format.h"
#include "distd/bundle/hooks.h"
#include "distd/config/config.h"
#include "distd/hq/layout.h"
#include "manifest/keys.h"

namespace distd::bundle::export_detail {

// Keeps each outbound item of req that matches the signed request in <state_dir>/inbound/<site>/.
// Returns their names; an item that does not match or cannot be kept is a warning in res.
std::vector<std::string> receive_outbound(const Config& cfg, const std::string& request_path, const Request& req,
                                          ExportResult& res);

// Runs every export hook on what came along from req's site. Returns the files the hooks want on
// the stick; their log lines become notes in res, a hook's Error a warning.
std::vector<StickFile> run_export_hooks(const Config& cfg, const Request& req, const std::vector<std::string>& received,
                                        ExportResult& res);

// HQ's key records public/keys/2.keys, 3.keys, ... up to the first gap (at most
// kMaxStickKeyRecords): a center that never reaches the link follows HQ's key by them. A record
// over kMaxKeyRecordBytes, or more records than fit, end the list with a warning in res; so does
// a newest record that names another key than signer (the one signing this bundle).
std::vector<std::string> stick_key_records(const hq::Layout& L, const PublicKey& signer, ExportResult& res);

}  // namespace distd::bundle::export_detail
