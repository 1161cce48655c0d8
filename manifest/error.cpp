#include "manifest/error.h"

#include <cerrno>
#include <cstring>

namespace distd {

const std::vector<ExitStatusInfo>& exit_status_table() {
  static const std::vector<ExitStatusInfo> t = {
      {Errc::usage, 2, "usage", "usage"},
      {Errc::io, 3, "io", "I/O"},
      {Errc::not_found, 4, "not_found", "not found"},
      {Errc::corrupt, 5, "corrupt", "corrupt input"},
      {Errc::bad_signature, 6, "bad_signature", "bad signature"},
      {Errc::expired, 7, "expired", "expired"},
      {Errc::rollback, 8, "rollback", "rollback"},
      {Errc::unsafe_path, 9, "unsafe_path", "unsafe path"},
      {Errc::mismatch, 10, "mismatch", "content mismatch"},
      {Errc::no_space, 11, "no_space", "disk full"},
      {Errc::network, 12, "network", "network"},
      {Errc::database, 13, "database", "database"},
      {Errc::unsupported, 14, "unsupported", "unsupported"},
      {Errc::busy, 16, "busy", "busy"},
      {Errc::internal, 70, "internal", "internal error"},
  };
  return t;
}

int exit_status(Errc code) {
  for (auto& e : exit_status_table())
    if (e.code == code) return e.status;
  return 70;
}

const char* errc_name(Errc code) {
  for (auto& e : exit_status_table())
    if (e.code == code) return e.name;
  return "internal";
}

std::string exit_status_footer() {
  std::vector<std::string> parts = {"0 success"};
  for (auto& e : exit_status_table()) parts.push_back(std::to_string(e.status) + " " + e.summary);
  parts.push_back(std::to_string(kExitDeferred) + " big files deferred (sync)");
  std::string out, line = "Exit status:";
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string piece = " " + parts[i] + (i + 1 < parts.size() ? ";" : ".");
    if (line.size() + piece.size() > 100) {
      out += line + "\n";
      line = piece.substr(1);
    } else {
      line += piece;
    }
  }
  return out + line + " See docs/cli.md.";
}

void throw_errno(std::string_view op, std::string_view path, int err) {
  std::string msg = std::string(op) + " '" + std::string(path) + "': " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT)
    throw Error(Errc::no_space, msg, "free space on that file system, then run the command again; "
                                     "work done so far is kept");
  if (err == ENOENT) throw Error(Errc::not_found, msg, "check the path");
  if (err == EACCES || err == EPERM)
    throw Error(Errc::io, msg, "run as the user that owns distd's files, or fix the permissions");
  throw Error(Errc::io, msg);
}

}  // namespace distd
