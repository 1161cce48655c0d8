// The config file (TOML; distd/config/config.h load_config) and the engines' sections of it (HQ,
// the center's offline settings, courses, the forum). A config is written by the operator, not a
// peer, but a typo must give distd::Error naming the line, never a crash or another exception.
// The input is written to a temporary file because load_config reads a path.
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "distd/config/config.h"
#include "distd/course/course_settings.h"
#include "distd/forum/settings.h"
#include "distd/hq/settings.h"
#include "distd/regional/sync.h"
#include "manifest/error.h"
#include "manifest/fs.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

const std::string& config_path() {
  static const std::string path = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/distd-fuzz-config-XXXXXX";
    if (!::mkdtemp(tmpl.data())) std::abort();
    static std::string dir = tmpl;
    std::atexit([] { distd::remove_tree(dir); });
    return tmpl + "/distd.toml";
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = config_path();
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  distd::Config cfg;
  try {
    cfg = distd::load_config(path);
  } catch (const distd::Error&) {
    return 0;
  }
  FUZZ_CHECK(cfg.role == "hq" || cfg.role == "regional");
  FUZZ_CHECK(!cfg.state_dir.empty());
  for (auto& ch : cfg.channels) FUZZ_CHECK(!ch.name.empty() && !ch.path.empty());
  auto quietly = [](auto f) {
    try {
      f();
    } catch (const distd::Error&) {
    }
  };
  quietly([&] { (void)distd::hq::hq_settings(cfg); });
  quietly([&] { (void)distd::RegionalSettings::offline(cfg); });
  quietly([&] { (void)distd::course::CourseSettings::from(cfg); });
  quietly([&] { (void)distd::forum::ForumSettings::from(cfg); });
  return 0;
}
