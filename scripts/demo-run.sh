#!/usr/bin/env bash
# distd's main job on an embedded default, step by step, with readable output.
# Usage: scripts/demo-run.sh [BUILD_DIR]   (scripts/demo.sh installs and builds first)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
build=$(cd "${1:-build}" && pwd)
distctl="$build/distctl"
demo=${DISTD_DEMO_DIR:-$(mktemp -d /tmp/distd-demo-XXXXXX)}
mkdir -p "$demo"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s#$build/##g; s#$demo/##g; s#$src/##g"; "$@" 2>&1 | sed "s#$demo/##g"; }
expect_fail() {
  printf '$ %s\n' "$*" | sed "s#$build/##g; s#$demo/##g"
  set +e; "$@" 2>&1 | sed "s#$demo/##g"; local rc=${PIPESTATUS[0]}; set -e
  if [ "$rc" -eq 0 ]; then echo "!! expected a refusal, got success"; exit 1; fi
  echo "(refused, exit status $rc: nothing was accepted)"
}

cd "$demo"
step "HQ: create the signing key (the secret stays at HQ; centers pin the public key)"
run "$distctl" keygen --secret hq.key --public hq.pub

step "HQ: a sample Moodle moodledata tree (course files in filedir/, plus local-only areas)"
run python3 "$src/scripts/make-sample-moodledata.py" moodledata --files 60 --seed 7

step "HQ: publish version 1 of channel 'moodledata' as a signed manifest"
run "$distctl" manifest build moodledata --channel moodledata --version 1 --key hq.key -o v1.manifest \
  --preset moodledata --stat-cache statcache.sqlite
run "$distctl" manifest show v1.manifest --pubkey hq.pub --header

step "Regional center: verify the manifest with the pinned key, and the tree against it"
run "$distctl" manifest verify v1.manifest --pubkey hq.pub --tree moodledata --preset moodledata

step "HQ: a teacher uploads a file; version 2 chains to version 1 (the stat cache hashes only the new file)"
mkdir -p moodledata/filedir/ee/ee && echo "week 5 reading list" > moodledata/filedir/ee/ee/eeee0000000000000000000000000000000000aa
run "$distctl" manifest build moodledata --channel moodledata --version 2 --previous v1.manifest --key hq.key \
  -o v2.manifest --preset moodledata --stat-cache statcache.sqlite
run "$distctl" manifest diff v1.manifest v2.manifest

step "An attacker (or a bad sector) flips one byte of the manifest"
cp v2.manifest tampered.manifest
python3 - <<'PY'
import re
b = bytearray(open("tampered.manifest", "rb").read())
i = b.index(b" 20 0644 ") + 1   # the size of the 20-byte reading list
b[i:i+2] = b"21"
open("tampered.manifest", "wb").write(bytes(b))
PY
expect_fail "$distctl" manifest verify tampered.manifest --pubkey hq.pub

step "A manifest signed by someone else's key"
"$distctl" keygen --secret other.key --public other.pub >/dev/null
"$distctl" manifest build moodledata --channel moodledata --version 3 --key other.key -o foreign.manifest \
  --preset moodledata >/dev/null
expect_fail "$distctl" manifest verify foreign.manifest --pubkey hq.pub

step "A file changed at the regional center after installation"
echo "x" >> "$(find moodledata/filedir -type f -size +1k | sort | head -n 1)"
expect_fail "$distctl" manifest verify v2.manifest --pubkey hq.pub --tree moodledata --preset moodledata

printf '\nDemo finished. Files are in %s\n' "$demo"
