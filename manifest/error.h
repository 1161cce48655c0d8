// One error model for all of distd.
//
// Every failure a user can see is a distd::Error: a code (what kind of failure, which also picks
// the process exit status), a message that names what failed and on which file or peer, and a
// hint that says what to do next. Libraries throw; thin mains catch, print, and exit.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>
#include <string_view>

namespace distd {

enum class Errc {
  usage,          // bad arguments or configuration
  io,             // a file system call failed
  not_found,      // a named file, channel, version or object does not exist
  corrupt,        // input is malformed or truncated (manifest, bundle, journal)
  bad_signature,  // signature does not verify, or was made by another key
  expired,        // the manifest's validity ran out (beyond the allowed slack)
  rollback,       // an older or equal version was offered where a newer one is required
  unsafe_path,    // absolute path, "..", NUL, duplicate, link out of the tree
  mismatch,       // content differs from what was signed (digest, size, tree)
  no_space,       // disk full (ENOSPC / EDQUOT)
  network,        // the peer could not be reached or the transfer failed
  database,       // SQL error (journal, stat cache, MariaDB)
  unsupported,    // a file type or feature we refuse (symlink, device, ...)
  busy,           // another sync, import or publish holds the lock: try again later
  internal,       // a bug: please report
};

// The one table of exit statuses: each code's status (stable for scripts), its --json name and
// a few words for --help. docs/cli.md's table is checked against it (tests/test_exit_status.cpp).
struct ExitStatusInfo {
  Errc code;
  int status;
  const char* name;     // "bad_signature"
  const char* summary;  // "bad signature"
};
const std::vector<ExitStatusInfo>& exit_status_table();
// The statuses that are no error: 0, and 75 (EX_TEMPFAIL: a sync that converged but for big files
// waiting for their time window).
constexpr int kExitOk = 0;
constexpr int kExitDeferred = 75;

// Exit status for a code, stable for scripts (documented in docs/cli.md).
int exit_status(Errc code);
// Short name of the code, e.g. "bad_signature", used in --json output.
const char* errc_name(Errc code);
// "Exit status: 0 success; 2 usage; ... 75 big files deferred. See docs/cli.md." wrapped at
// about 100 columns, for the mains' --help footers.
std::string exit_status_footer();

class Error : public std::runtime_error {
 public:
  Error(Errc code, std::string message, std::string hint = {})
      : std::runtime_error(std::move(message)), code_(code), hint_(std::move(hint)) {}
  Errc code() const noexcept { return code_; }
  const std::string& hint() const noexcept { return hint_; }

 private:
  Errc code_;
  std::string hint_;
};

// Throws Error{io or no_space} for a failed system call: "<op> '<path>': <strerror>".
// REQUIRES: err is the errno value of the failure.
[[noreturn]] void throw_errno(std::string_view op, std::string_view path, int err);

}  // namespace distd
