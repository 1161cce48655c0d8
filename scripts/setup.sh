#!/usr/bin/env bash
# Installs what distd needs to build, test and demo on Debian 12, then configures and builds it.
# Idempotent: packages already present are not fetched again. Usage: scripts/setup.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

packages=(
  build-essential cmake ninja-build pkg-config git
  librsync-dev libarchive-dev libsodium-dev libsqlitecpp-dev libsqlite3-dev libboost-test-dev
  libcurl4-openssl-dev libmariadb-dev libcli11-dev libtomlplusplus-dev nlohmann-json3-dev
  libsystemd-dev libpugixml-dev libcpp-httplib-dev libssl-dev zlib1g-dev libzstd-dev
  mariadb-server mariadb-client nginx-light rsync curl systemd sqlite3 python3 xz-utils faketime zstd
  # a real Moodle 4.5 for the Moodle suites (tests/support/moodle_fixture.py) and a browser
  php8.2-cli php8.2-fpm php8.2-mysql php8.2-xml php8.2-mbstring php8.2-curl php8.2-zip php8.2-gd
  php8.2-intl php8.2-soap chromium chromium-driver python3-selenium
  # the package test (tests/package, docs/packaging.md): help2man makes the man pages, man-db (groff) checks them, lintian
  help2man lintian man-db
  # the libFuzzer build of tests/fuzz (-DDISTD_FUZZ=ON, docs/testing.md): clang, libFuzzer and ASan
  clang libclang-rt-14-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing ${#missing[@]} Debian packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages' own services are not ours: distd's tests start private instances.
  for svc in mariadb nginx php8.2-fpm; do $sudo service "$svc" stop >/dev/null 2>&1 || true; done
fi

echo "==> building in $build/"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"
