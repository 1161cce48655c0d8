#!/usr/bin/env bash
# The forum-post channel with a real Moodle 4.5 at HQ and at a center (tests/support/moodle_fixture.py,
# tests/support/distd_link.py): posts/s from a center's outbox to HQ's Moodle against a PHP loop
# calling Moodle's forum API directly (bench/forum_floor.php), bytes per post on the wire and on a
# stick against gzip -6 of the text, and the time until a post is back at the center through
# replication. See bench/bench_forum.py for what is measured.
#   bench/bench_forum.sh [--json]
#   POSTS=200 bench/bench_forum.sh
# BUILD=build by default (distd, distctl, tests/flaky_proxy and the Moodle template in $BUILD/moodle-fixture).
# Scale with: POSTS (1000), IDLE_SECONDS (10), DOWN_SECONDS (30), LATENCY_TRIALS (2).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
exec /usr/bin/python3 "$ROOT/bench/bench_forum.py" --build "$BUILD" "$@"
