#include "distd/replica/file_check.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <sstream>

#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd::replica {

std::string filedir_path(const std::string& filedir, const std::string& h) {
  return filedir + "/" + h.substr(0, 2) + "/" + h.substr(2, 2) + "/" + h;
}

static bool is_sha1_hex(const std::string& h) {
  if (h.size() != 40) return false;
  for (char c : h)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string sha1_file_hex(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("open", path, errno);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha1(), nullptr) != 1)
    throw Error(Errc::internal, "OpenSSL SHA-1 initialisation failed");
  std::vector<unsigned char> buf(1 << 16);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read", path, errno);
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  return to_hex(md, len);
}

FileCheckReport check_files(db::SqlConnection& db, const ReplicaConfig& rc, bool verify) {
  FileCheckReport r;
  r.filedir = rc.filedir;
  r.verified = verify;
  std::vector<std::string> to_verify;
  // One row per distinct hash; the server groups, the client streams (constant memory).
  const std::string sql =
      "SELECT contenthash, MAX(filesize) AS size, COUNT(*) AS refs, MIN(component) AS component, "
      "MIN(filearea) AS filearea FROM " +
      db::quote_ident(rc.database) + "." + db::quote_ident(rc.prefix + "files") +
      " WHERE filename <> '.' AND referencefileid IS NULL GROUP BY contenthash";
  db.for_each(sql, [&](const db::Row& row) {
    std::string h = row.str({"contenthash"});
    if (!is_sha1_hex(h)) {
      ++r.invalid_hashes;
      return;
    }
    uint64_t size = std::strtoull(row.str({"size"}, "0").c_str(), nullptr, 10);
    ++r.referenced;
    r.referenced_bytes += size;
    std::string path = filedir_path(rc.filedir, h);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      MissingFile m;
      m.sha1 = h;
      m.size = size;
      m.references = std::strtoull(row.str({"refs"}, "0").c_str(), nullptr, 10);
      m.component = row.str({"component"});
      m.filearea = row.str({"filearea"});
      r.missing_bytes += size;
      r.missing.push_back(std::move(m));
      return;
    }
    ++r.present;
    if (verify) to_verify.push_back(h);  // hashed after the result is read: a slow disk must not stall the server
  });
  for (auto& h : to_verify) {
    CorruptFile c;
    c.sha1 = h;
    c.path = filedir_path(rc.filedir, h);
    try {
      c.actual_sha1 = sha1_file_hex(c.path);
      if (c.actual_sha1 == h) continue;
    } catch (const Error& e) {
      c.error = e.what();
    }
    r.corrupt.push_back(std::move(c));
  }
  std::sort(r.missing.begin(), r.missing.end(),
            [](const MissingFile& a, const MissingFile& b) { return a.size != b.size ? a.size < b.size : a.sha1 < b.sha1; });
  return r;
}

FileCheckReport check_files(const Config& cfg, bool verify) {
  ReplicaConfig rc = load_replica_config(cfg, true);
  if (rc.filedir.empty())
    throw Error(Errc::usage, "config " + cfg.file + " has no replica.filedir",
                "set filedir = \"/path/to/moodledata/filedir\" in [replica]");
  struct stat st {};
  if (::stat(rc.filedir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw Error(Errc::not_found, "replica.filedir '" + rc.filedir + "' is not a directory",
                "check the path in " + cfg.file + " (Moodle's $CFG->dataroot + /filedir)");
  db::SqlConnection db(rc.conn);
  return check_files(db, rc, verify);
}

std::vector<MissingFile> referenced_missing_files(const Config& cfg) { return check_files(cfg, false).missing; }

nlohmann::json to_json(const FileCheckReport& r) {
  nlohmann::json j;
  j["filedir"] = r.filedir;
  j["referenced"] = r.referenced;
  j["referenced_bytes"] = r.referenced_bytes;
  j["present"] = r.present;
  j["missing_count"] = r.missing.size();
  j["missing_bytes"] = r.missing_bytes;
  j["invalid_hashes"] = r.invalid_hashes;
  j["verified"] = r.verified;
  j["clean"] = r.clean();
  j["missing"] = nlohmann::json::array();
  for (auto& m : r.missing)
    j["missing"].push_back({{"sha1", m.sha1},
                            {"size", m.size},
                            {"references", m.references},
                            {"component", m.component},
                            {"filearea", m.filearea}});
  j["corrupt_count"] = r.corrupt.size();
  j["corrupt"] = nlohmann::json::array();
  for (auto& c : r.corrupt)
    j["corrupt"].push_back({{"sha1", c.sha1}, {"path", c.path}, {"actual_sha1", c.actual_sha1}, {"error", c.error}});
  return j;
}

std::string format_report(const FileCheckReport& r, size_t max_listed) {
  std::ostringstream o;
  o << "filedir:     " << r.filedir << "\n";
  o << "referenced:  " << r.referenced << " files, " << r.referenced_bytes << " bytes\n";
  o << "present:     " << r.present << "\n";
  o << "missing:     " << r.missing.size() << " files, " << r.missing_bytes << " bytes\n";
  if (r.verified) o << "corrupt:     " << r.corrupt.size() << " (SHA-1 verified)\n";
  if (r.invalid_hashes) o << "ignored:     " << r.invalid_hashes << " rows with a malformed contenthash\n";
  size_t n = 0;
  for (auto& m : r.missing) {
    if (n++ == max_listed) {
      o << "  ... " << (r.missing.size() - max_listed) << " more (use --json for all)\n";
      break;
    }
    o << "  missing " << m.sha1 << " " << m.size << " bytes (" << m.component << "/" << m.filearea << ", "
      << m.references << " reference(s))\n";
  }
  for (auto& c : r.corrupt)
    o << "  corrupt " << c.path << ": " << (c.error.empty() ? "content has SHA-1 " + c.actual_sha1 : c.error) << "\n";
  return o.str();
}

}  // namespace distd::replica
