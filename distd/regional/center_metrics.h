// The center's own state as Prometheus metrics, for node-exporter's textfile collector
// (docs/regional.md "Metrics for node-exporter"): [regional] metrics_file, written by the daemon
// after every pass and by distctl sync, and printed by `distctl status --prometheus`. A file,
// not an endpoint: a center opens no port of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "distd/config/config.h"

namespace distd {

// The text (Prometheus exposition format 0.0.4): distd_center_build_info, per channel the
// installed and latest known version, pending files and bytes, last success and attempt (unix
// seconds, 0 = never), last error (1/0) and warnings, then the state directory's free bytes and
// `now`. Reads the journal read-only (none yet: every channel at 0). Throws Error{database} for a
// damaged journal.
std::string render_center_metrics(const Config& cfg, int64_t now);

// [regional] metrics_file, resolved against the config's directory; empty when unset (off).
std::string center_metrics_path(const Config& cfg);

// Writes render_center_metrics to [regional] metrics_file atomically (a temporary
// "<file>.tmp.*" in the same directory, which the collector ignores, then a rename); nothing
// when the key is unset. Best effort: a failure (a missing directory, a full disk) is one line
// to log, never an exception. Called from the daemon's thread or distctl's.
void write_center_metrics(const Config& cfg, const std::function<void(const std::string&)>& log);

}  // namespace distd
