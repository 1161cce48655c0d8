// How distctl's subcommands plug in.
//
// Each cli/cmd_*.cpp defines its subcommands with CLI11 and registers them with a static
// CommandRegistrar. A subcommand's callback only parses and calls one library function; it
// returns the process exit status. Errors are thrown as distd::Error and printed by main().
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace distd::cli {

// What a registered subcommand does when chosen: returns the exit status.
using Action = std::function<int()>;

// Receives the top-level app; adds subcommands; stores the action to run in *chosen via
// sub->final_callback or sub->callback. `order` sorts --help output.
using RegisterFn = void (*)(CLI::App& app, Action& chosen);

struct CommandRegistrar {
  CommandRegistrar(int order, RegisterFn fn);
};

// True when the output is a terminal (progress bars and colours only then).
bool stdout_is_tty();
bool stderr_is_tty();

// The default config path: $DISTD_CONFIG or /etc/distd/distd.toml.
std::string default_config_path();

}  // namespace distd::cli
