#include "cli/progress.h"

#include <cstdio>

#include "cli/command.h"
#include "manifest/encoding.h"

namespace distd::cli {

ProgressLine::ProgressLine(std::string label)
    : label_(std::move(label)), enabled_(stderr_is_tty()), start_(std::chrono::steady_clock::now()) {}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::update(uint64_t done, uint64_t total, const std::string& extra) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  double secs = std::chrono::duration<double>(now - start_).count();
  double rate = secs > 0.2 ? static_cast<double>(done) / secs : 0;
  std::string line = label_ + " " + human_bytes(done);
  if (total) {
    char pct[16];
    std::snprintf(pct, sizeof pct, " %3d%%", static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total)));
    line += " of " + human_bytes(total) + pct;
  }
  if (rate > 0) {
    line += "  " + human_bytes(static_cast<uint64_t>(rate)) + "/s";
    if (total > done) {
      auto eta = static_cast<uint64_t>(static_cast<double>(total - done) / rate);
      char buf[32];
      std::snprintf(buf, sizeof buf, "  ETA %llu:%02llu", static_cast<unsigned long long>(eta / 60),
                    static_cast<unsigned long long>(eta % 60));
      line += buf;
    }
  }
  if (!extra.empty()) line += "  " + extra;
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressLine::finish() {
  if (enabled_ && drawn_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    drawn_ = false;
  }
}

}  // namespace distd::cli
