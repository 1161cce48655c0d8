// distctl config check: the same check as `distd --check-config`, from the operator's tool.
#include <cstdio>

#include "cli/command.h"
#include "cli/json_out.h"
#include "distd/check_config.h"
#include "distd/config/config.h"
#include "manifest/error.h"

namespace distd::cli {
namespace {

int run_config_check(const std::string& path, bool json) {
  ConfigCheck c = check_config(load_config(path));
  if (json) {
    nlohmann::json j = {{"ok", true},       {"file", c.file},     {"role", c.role},     {"site", c.site},
                        {"channels", c.channels}, {"listen", c.listen}, {"key_id", c.key_id}, {"hq_url", c.hq_url}};
    print_json(j);
  } else {
    std::printf("config %s: OK (%s)\n", c.file.c_str(), c.summary().c_str());
  }
  return 0;
}

void register_config(CLI::App& app, Action& chosen) {
  auto* cfg = app.add_subcommand("config", "Check a config file (HQ or center)");
  auto* cmd = cfg->add_subcommand("check", "Read and check a config file, as distd does before it starts");
  cmd->footer(
      "Reads the file as distd would start with it: every section and key (an unknown key is refused\n"
      "with the closest known one), the values, the files they name (keys, and that HQ's secret and\n"
      "public key belong together), HQ's listen address. Binds no port and touches no state, so it\n"
      "is safe on a running system. The same check as `distd --check-config`. See docs/config.md.\n\n"
      "Exit status: 0 when the config is good, else the error's (2 usage, 4 a named file is missing, ...).\n\n"
      "Examples:\n"
      "  distctl config check\n"
      "  distctl config check --config /etc/distd/distd.toml.new && mv /etc/distd/distd.toml.new /etc/distd/distd.toml\n"
      "  distctl config check --json");
  struct Args {
    std::string config;
    bool json = false;
  };
  static Args a;
  a.config = default_config_path();
  cmd->add_option("-c,--config", a.config, "config file ($DISTD_CONFIG or /etc/distd/distd.toml)");
  cmd->add_flag("--json", a.json, "print the summary as JSON on stdout");
  cmd->callback([&chosen] {
    chosen = [] { return run_config_check(a.config, a.json); };
  });
  cfg->callback([cmd, &chosen] {  // `distctl config` alone: say which subcommand there is
    if (cmd->parsed()) return;
    chosen = [] {
      std::fprintf(stderr, "distctl: error: 'distctl config' needs a subcommand\n"
                           "  what to do: run 'distctl config check [--config FILE]'\n");
      return exit_status(Errc::usage);
    };
  });
}

const CommandRegistrar registrar_config(15, register_config);

}  // namespace
}  // namespace distd::cli
