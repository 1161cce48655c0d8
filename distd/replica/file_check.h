// Files the database already references: content hashes in the replica's mdl_files whose blob
// filedir/<h[0:2]>/<h[2:4]>/<h> is not on the local disk yet (a broken download for a student).
// The sync engine fetches these first (referenced_missing_files()).
//
// Counted are real files only: directory entries (filename '.') are skipped, and so are aliases
// (referencefileid set), whose content belongs to the referenced file or to an external repository;
// the referenced file has its own row.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "distd/config/config.h"
#include "distd/replica/replica_config.h"
#include "distd/db/sql_connection.h"

namespace distd::replica {

struct MissingFile {
  std::string sha1;       // contenthash, 40 lowercase hex digits
  uint64_t size = 0;      // filesize from mdl_files (largest if rows disagree)
  uint64_t references = 0;  // rows in mdl_files with this hash
  std::string component;  // of one referencing row, e.g. "mod_resource"
  std::string filearea;   // e.g. "content"
};

struct CorruptFile {
  std::string sha1;
  std::string path;
  std::string actual_sha1;  // empty when the blob could not be read
  std::string error;        // read error, if any
};

struct FileCheckReport {
  std::string filedir;
  uint64_t referenced = 0;        // distinct content hashes referenced
  uint64_t referenced_bytes = 0;
  uint64_t present = 0;
  uint64_t missing_bytes = 0;
  uint64_t invalid_hashes = 0;    // rows whose contenthash is not 40 hex digits (ignored)
  bool verified = false;          // SHA-1 of present blobs checked
  std::vector<MissingFile> missing;  // smallest first (they complete most pages soonest)
  std::vector<CorruptFile> corrupt;  // only with verify
  bool clean() const { return missing.empty() && corrupt.empty(); }
};

// Path of a content hash in a filedir: filedir/ab/cd/abcd....
std::string filedir_path(const std::string& filedir, const std::string& sha1);

// SHA-1 of a file's content as 40 lowercase hex digits (OpenSSL EVP). Throws Error{io}.
std::string sha1_file_hex(const std::string& path);

// Streams the distinct referenced hashes from mdl_files and checks each against filedir.
// With verify, re-hashes every present blob (slow on a big filedir).
FileCheckReport check_files(db::SqlConnection& db, const ReplicaConfig& rc, bool verify);
// The same with the config's [replica] section. Throws Error{usage} when replica.filedir is not
// set, Error{database} when the replica cannot be queried.
FileCheckReport check_files(const Config& cfg, bool verify);

// For the sync engine: what the database references and the disk lacks, smallest first.
std::vector<MissingFile> referenced_missing_files(const Config& cfg);

nlohmann::json to_json(const FileCheckReport& r);
std::string format_report(const FileCheckReport& r, size_t max_listed = 50);

}  // namespace distd::replica
