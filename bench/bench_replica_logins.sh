#!/usr/bin/env bash
# Logins at a regional center (Moodle on a MariaDB GTID replica of HQ) vs the same logins at HQ,
# and what the center's own writes (sessions, logs, preferences: local-only tables) do to
# replication lag. A real Moodle 4.5 at both sites (tests/support/moodle_fixture.py); see
# bench/bench_replica_logins.py for what is measured.
#   bench/bench_replica_logins.sh [--json]
# BUILD=build by default (distctl and the Moodle template in $BUILD/moodle-fixture). Scale with:
#   USERS (40), CONCURRENCY (4), IDLE_SECONDS (10), PROBE_INTERVAL (0.5).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
exec /usr/bin/python3 "$ROOT/bench/bench_replica_logins.py" --build "$BUILD" "$@"
