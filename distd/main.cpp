// distd: the daemon. Parses arguments and runs the role named in its config.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "manifest/error.h"

int main(int argc, char** argv) {
  CLI::App app{"distd - the distd daemon (role hq or regional, from its config file)", "distd"};
  std::string config = "/etc/distd/distd.toml";
  app.add_option("-c,--config", config, "config file")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  std::fprintf(stderr, "distd: the daemon is not built yet\n");
  return 2;
}
