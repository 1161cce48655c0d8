// A one-line progress display on stderr. By default only when stderr is a terminal: redrawn in
// place, at most every 100 ms, cut to the terminal's width. Forced (distctl sync --progress) onto
// a pipe or file: one plain line (no escape codes) per second and a last one at the end.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace distd::cli {

class ProgressLine {
 public:
  enum class Mode {
    automatic,  // on a terminal only
    always,     // also when stderr is not a terminal (plain lines then)
    never,      // --quiet
  };
  explicit ProgressLine(std::string label, Mode mode = Mode::automatic);
  ~ProgressLine();  // clears the line
  // done/total in bytes (total 0 = unknown); extra is appended (e.g. "1200/5000 files"), then
  // item (e.g. the file being fetched), whose beginning gives way ("...") when the line would
  // be wider than the terminal.
  void update(uint64_t done, uint64_t total, const std::string& extra = {}, const std::string& item = {});
  void finish();

 private:
  std::string label_;
  bool enabled_;
  bool tty_;
  bool drawn_ = false;
  std::string last_line_;  // plain mode: the last line computed, printed once more by finish()
  bool last_printed_ = true;
  std::chrono::steady_clock::time_point start_, last_;
};

// s cut to at most width characters by dropping its beginning ("..." in its place); s itself
// when it fits. Counts bytes (paths are mostly ASCII), never splitting a UTF-8 sequence.
std::string fit_tail(const std::string& s, size_t width);

// Columns of the terminal on stderr; $COLUMNS or 80 when it is not one.
size_t terminal_width();

}  // namespace distd::cli
