// distctl: the operator's tool. Parses arguments, runs one subcommand, maps errors to exit codes.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <vector>

#include "cli/command.h"
#include "distd/config/known_keys.h"
#include "distd/plugins.h"
#include "manifest/error.h"
#include "manifest/version.h"

namespace distd::cli {

namespace {
std::vector<std::pair<int, RegisterFn>>& registry() {
  static std::vector<std::pair<int, RegisterFn>> r;
  return r;
}
}  // namespace

CommandRegistrar::CommandRegistrar(int order, RegisterFn fn) { registry().emplace_back(order, fn); }

bool stdout_is_tty() { return ::isatty(1) == 1; }
bool stderr_is_tty() { return ::isatty(2) == 1; }

std::string default_config_path() {
  const char* env = std::getenv("DISTD_CONFIG");
  return env && *env ? env : "/etc/distd/distd.toml";
}

}  // namespace distd::cli

int main(int argc, char** argv) {
  using namespace distd;
  CLI::App app{
      "distctl - operate distd, the offline-capable distributor of Moodle files and courses.\n"
      "Run 'distctl COMMAND --help' for each command's options and examples.",
      "distctl"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("distctl ") + distd_version());
  app.footer(exit_status_footer());
  register_plugins();
  cli::Action chosen;
  auto& reg = cli::registry();
  std::sort(reg.begin(), reg.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [order, fn] : reg) fn(app, chosen);
  // An unknown command is named, with the nearest one (CLI11 would say "A subcommand is required").
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands({})) names.push_back(sub->get_name());
  if (argc >= 2 && argv[1][0] != '-' && std::find(names.begin(), names.end(), argv[1]) == names.end()) {
    const std::string near = nearest_word(argv[1], names);
    std::string all;
    for (const std::string& n : names) all += (all.empty() ? "" : ", ") + n;
    std::fprintf(stderr, "distctl: error: unknown command '%s'%s\n  what to do: the commands are %s; run 'distctl --help'\n",
                 argv[1], near.empty() ? "" : (" (did you mean '" + near + "'?)").c_str(), all.c_str());
    return exit_status(Errc::usage);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every mistake in the arguments exits 2, as documented.
    return app.exit(e) == 0 ? 0 : exit_status(Errc::usage);
  }
  try {
    return chosen ? chosen() : 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "distctl: error: %s\n", e.what());
    if (!e.hint().empty()) std::fprintf(stderr, "  what to do: %s\n", e.hint().c_str());
    return exit_status(e.code());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "distctl: internal error: %s\n  what to do: please report this with the command you ran\n",
                 e.what());
    return 70;
  }
}
