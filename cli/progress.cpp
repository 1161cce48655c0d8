#include "cli/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "cli/command.h"
#include "manifest/encoding.h"

namespace distd::cli {

std::string fit_tail(const std::string& s, size_t width) {
  if (s.size() <= width) return s;
  if (width <= 3) return std::string(width, '.');
  size_t from = s.size() - (width - 3);
  while (from < s.size() && (static_cast<unsigned char>(s[from]) & 0xC0) == 0x80) ++from;  // a UTF-8 continuation
  return "..." + s.substr(from);
}

size_t terminal_width() {
  struct winsize ws {};
  if (::ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* c = std::getenv("COLUMNS")) {
    long n = std::strtol(c, nullptr, 10);
    if (n > 0) return static_cast<size_t>(n);
  }
  return 80;
}

ProgressLine::ProgressLine(std::string label, Mode mode)
    : label_(std::move(label)),
      enabled_(mode == Mode::always || (mode == Mode::automatic && stderr_is_tty())),
      tty_(stderr_is_tty()),
      start_(std::chrono::steady_clock::now()) {}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::update(uint64_t done, uint64_t total, const std::string& extra, const std::string& item) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  const auto every = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(1000);
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
  if (!item.empty()) {
    // On a terminal the name gets what is left of its width (the last column would wrap on some
    // terminals); on a pipe it keeps at least 20 characters.
    const size_t width = terminal_width() - 1;
    const size_t room = line.size() + 2 < width ? width - line.size() - 2 : 0;
    line += "  " + fit_tail(item, tty_ ? room : std::max<size_t>(room, 20));
  }
  if (!tty_) {
    last_line_ = line;
    last_printed_ = false;
  }
  if (drawn_ && now - last_ < every) return;
  last_ = now;
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
    last_printed_ = true;
  }
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressLine::finish() {
  if (!enabled_ || !drawn_) return;
  if (tty_) {
    std::fprintf(stderr, "\r\033[K");
  } else if (!last_printed_) {
    std::fprintf(stderr, "%s\n", last_line_.c_str());
    last_printed_ = true;
  }
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace distd::cli
