// Runs an external program (Moodle's PHP CLI scripts) and collects what it printed.
#pragma once

#include <string>
#include <vector>

namespace distd {

struct CommandResult {
  int status = -1;      // exit status, or 128 + signal; 127 when the program could not be started
  std::string output;   // stdout and stderr together, at most the cap given (the tail is kept)
};

// Runs argv[0] (searched on PATH) with argv in directory cwd (empty: the current one), stdin from
// input_path (empty: /dev/null), stdout+stderr into output_path (created 0600, removed afterwards).
// Waits for it.
// Throws Error{io} only when it cannot fork or create output_path.
// Thread-safety: safe to call from any thread; the child inherits no locks of ours.
CommandResult run_command(const std::vector<std::string>& argv, const std::string& cwd, const std::string& output_path,
                          size_t output_cap = 1 << 20, const std::string& input_path = {});

// The last n lines of text (for error messages).
std::string tail_lines(const std::string& text, int n);

}  // namespace distd
