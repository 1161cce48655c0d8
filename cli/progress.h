// A one-line progress display on stderr for interactive runs (nothing when stderr is not a TTY).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace distd::cli {

class ProgressLine {
 public:
  explicit ProgressLine(std::string label);
  ~ProgressLine();  // clears the line
  // done/total in bytes (total 0 = unknown); extra is appended (e.g. "1200/5000 files").
  void update(uint64_t done, uint64_t total, const std::string& extra = {});
  void finish();

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace distd::cli
