#include "manifest/error.h"

#include <cerrno>
#include <cstring>

namespace distd {

int exit_status(Errc code) {
  switch (code) {
    case Errc::usage: return 2;
    case Errc::io: return 3;
    case Errc::not_found: return 4;
    case Errc::corrupt: return 5;
    case Errc::bad_signature: return 6;
    case Errc::expired: return 7;
    case Errc::rollback: return 8;
    case Errc::unsafe_path: return 9;
    case Errc::mismatch: return 10;
    case Errc::no_space: return 11;
    case Errc::network: return 12;
    case Errc::database: return 13;
    case Errc::unsupported: return 14;
    case Errc::internal: return 70;
  }
  return 70;
}

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::usage: return "usage";
    case Errc::io: return "io";
    case Errc::not_found: return "not_found";
    case Errc::corrupt: return "corrupt";
    case Errc::bad_signature: return "bad_signature";
    case Errc::expired: return "expired";
    case Errc::rollback: return "rollback";
    case Errc::unsafe_path: return "unsafe_path";
    case Errc::mismatch: return "mismatch";
    case Errc::no_space: return "no_space";
    case Errc::network: return "network";
    case Errc::database: return "database";
    case Errc::unsupported: return "unsupported";
    case Errc::internal: return "internal";
  }
  return "internal";
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
