// The regional daemon: opportunistic sync whenever HQ answers.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "distd/config/config.h"

namespace distd {

// Receives one-line status texts ("syncing moodledata: 12.1 MiB of 40 MiB", "HQ unreachable,
// next probe in 2m") for sd_notify("STATUS=...") and logs. Called from the daemon's thread.
using DaemonStatusFn = std::function<void(const std::string&)>;

// Runs until `stop` becomes true: probes HQ with exponential backoff and jitter
// ([regional] probe_min_seconds .. probe_max_seconds), syncs every channel when HQ answers,
// honours [regional] bandwidth_limit and big_files_window, records link up/down in the journal.
// Returns the process exit status (0 after a clean stop). When `stop` is already true on entry
// (distd --once), makes exactly one probe-and-sync pass and returns 0 only when every channel
// converged (else the status distctl sync would give). Throws Error{usage} for a bad config.
// on_link_up, when given, is called after every probe that finds HQ reachable (the forum's sender
// sends what waits at once). REQUIRES: cfg.role == "regional".
int run_regional_daemon(const Config& cfg, const std::atomic<bool>& stop, const DaemonStatusFn& status = {},
                        const std::function<void()>& on_link_up = {});

// Extension point: checks the daemon runs after every probe (the database replica's health, say;
// composed by register_plugins() in distd/plugins.h). Each returns its warnings, one line each,
// named after what it checks ("replica: the SQL thread stopped ..."); an exception counts as one
// warning. The daemon says them when the set changes, and once more when all are clear.
// REQUIRES: filled before the daemon starts, from one thread.
using HealthCheckFn = std::function<std::vector<std::string>(const Config&)>;
std::vector<HealthCheckFn>& health_checks();

}  // namespace distd
