#include "distd/io/pause.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

namespace distd {

bool sleep_unless_stopped(const std::atomic<bool>* stop, double seconds) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  while (std::chrono::steady_clock::now() < until) {
    if (stop && stop->load()) return false;
    auto left = until - std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(100)));
  }
  return !(stop && stop->load());
}

double retry_pause(int64_t n, double cap) {
  if (n <= 0) return std::min(1.0, cap);
  if (n >= 60) return cap;
  return std::min(cap, std::ldexp(1.0, static_cast<int>(n)));
}

Backoff::Backoff(double min_s, double max_s, uint64_t seed) : min_(min_s), max_(max_s), current_(min_s), rng_(seed) {}

double Backoff::step() {
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  double d = current_ * jitter(rng_);
  current_ = std::min(current_ * 2, max_);
  return d;
}

}  // namespace distd
