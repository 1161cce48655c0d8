// Waiting that a stop request cuts short, and the pauses between retries.
#pragma once

#include <atomic>
#include <cstdint>
#include <random>

namespace distd {

// Sleeps up to `seconds`, looking at *stop every 100 ms (stop may be null). Returns false when
// stop became true (the caller should give up), true after the full pause.
// Thread-safety: any thread; stop is only read.
bool sleep_unless_stopped(const std::atomic<bool>* stop, double seconds);

// The pause before retry number n: 1, 2, 4 ... seconds, at most cap. n may be any count (no
// shift that overflows).
double retry_pause(int64_t n, double cap = 30.0);

// Exponential backoff with jitter between min and max seconds: each step() is 50-100 % of the
// current step, which then doubles (up to max), so that centers do not all call HQ in the same
// second after an outage; reset() goes back to min. REQUIRES external synchronization.
class Backoff {
 public:
  Backoff(double min_s, double max_s, uint64_t seed = std::random_device{}());
  double step();
  void reset() { current_ = min_; }
  double current() const { return current_; }

 private:
  double min_, max_, current_;
  std::mt19937_64 rng_;
};

}  // namespace distd
