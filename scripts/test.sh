#!/usr/bin/env bash
# Installs what is needed, builds, and runs the whole test suite (Boost.Test suites under ctest).
# Integration suites start their own MariaDB, nginx and flaky-link proxy on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
echo "==> running the test suite"
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 900 "$@"
