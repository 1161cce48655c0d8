#include "manifest/fault.h"

#include "manifest/powercut.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace distd {

namespace {
struct FaultSpec {
  bool active = false;
  std::string point;  // "*" matches any
  long target = 0;
  bool powercut = false;  // forget what is not durable before the kill (manifest/powercut.h)
};

const FaultSpec& spec() {
  static const FaultSpec s = [] {
    FaultSpec f;
    const char* env = std::getenv("DISTD_FAULT");
    if (!env) return f;
    std::string rest;
    if (std::strncmp(env, "kill:", 5) == 0) {
      rest = env + 5;
    } else if (std::strncmp(env, "powercut:", 9) == 0) {
      rest = env + 9;
      f.powercut = true;
    } else {
      return f;
    }
    auto colon = rest.rfind(':');
    if (colon == std::string::npos) return f;
    f.point = rest.substr(0, colon);
    f.target = std::atol(rest.c_str() + colon + 1);
    f.active = f.target > 0;
    return f;
  }();
  return s;
}
std::atomic<long> hits{0};
}  // namespace

void fault_point(const char* name) {
  const FaultSpec& s = spec();
  if (!s.active) return;
  if (s.point != "*" && s.point != name) return;
  if (hits.fetch_add(1) + 1 != s.target) return;
  if (s.powercut) powercut::cut();
  ::kill(::getpid(), SIGKILL);
}

}  // namespace distd
