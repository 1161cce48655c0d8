#!/usr/bin/env bash
# Installs what is needed, builds, and runs distd's main job on an embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec scripts/demo-run.sh build
