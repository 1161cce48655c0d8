#!/usr/bin/env bash
# distd's main job on an embedded default, with readable output:
#   HQ and a regional center on loopback, a sample moodledata tree and course backup, a flaky
#   link (seeded cuts, a rate cap, then an outage), a sync that resumes through the cuts, an
#   update that travels on a USB stick while the link is down, and the refusals that protect
#   the center.
# Usage: scripts/demo-run.sh [BUILD_DIR]   (scripts/demo.sh installs and builds first)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
build=$(cd "${1:-build}" && pwd)
export PATH="$build:$PATH"
proxy_bin="$build/tests/flaky_proxy"
demo=${DISTD_DEMO_DIR:-$(mktemp -d /tmp/distd-demo-XXXXXX)}
rm -rf "$demo" && mkdir -p "$demo"/{hq,center,stick}
cd "$demo"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { sed "s#$demo/##g; s#$build/##g; s#$src/##g"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*" | show; "$@" 2>&1 | show; }
refused() {  # a command that must fail: show its message and its exit status
  printf '\033[2m$ %s\033[0m\n' "$*" | show
  set +e; "$@" 2>&1 | show; local rc=${PIPESTATUS[0]}; set -e
  [ "$rc" -ne 0 ] || { echo "!! expected a refusal"; exit 1; }
  echo "   -> refused with exit status $rc; nothing at the center was touched"
}
status() {  # distctl status: show it and what its exit status means (it is not a failure here)
  printf '\033[2m$ distctl status %s\033[0m\n' "$*" | show
  set +e; distctl status "$@" 2>&1 | show; local rc=${PIPESTATUS[0]}; set -e
  case $rc in
    0) echo "   -> exit status 0: converged, nothing to warn of" ;;
    1) echo "   -> exit status 1: converged, with a warning" ;;
    75) echo "   -> exit status 75: not converged yet (what monitoring would alert on)" ;;
    *) echo "!! distctl status failed with $rc"; exit 1 ;;
  esac
}
down() {  # a command that fails because the link is down: show its message and exit status
  printf '\033[2m$ %s\033[0m\n' "$*" | show
  set +e; "$@" 2>&1 | show; local rc=${PIPESTATUS[0]}; set -e
  [ "$rc" -ne 0 ] || { echo "!! expected the dead link to stop it"; exit 1; }
  echo "   -> failed with exit status $rc (12 = network): HQ cannot be reached; what arrived is kept, the next run resumes"
}
config() {  # show a config file the demo wrote
  printf '\033[2m--- %s\033[0m\n' "$1"; sed 's/^/    /' "$1"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
link() { exec 3<>/dev/tcp/127.0.0.1/"$ctl"; echo "$*" >&3; read -r answer <&3; exec 3>&-; echo "$answer"; }

hq_port=$(free_port); link_port=$(free_port); ctl=$(free_port)

bold "HQ: signing key, a sample moodledata tree and a course backup"
run distctl keygen --secret hq/hq.key --public hq/hq.pub
bold "Center: its site key, enrolled at HQ once (HQ computes deltas and batches only for enrolled sites)"
mkdir -p center/state hq/state/sites
run distctl keygen --secret center/state/site.key --public center/state/site.pub
cp center/state/site.pub hq/state/sites/center-07.pub
run python3 "$src/scripts/make-sample-moodledata.py" hq/moodledata --files 120 --seed 7 --max-kib 3072
run python3 "$src/tests/support/make_mbz.py" hq/agr101.mbz --shortname AGR101 --fullname "Agronomy 101" --files 25 --seed 3
cat > hq/distd.toml <<TOML
role = "hq"
site = "hq"
state_dir = "$demo/hq/state"
[hq]
listen = "127.0.0.1:$hq_port"
secret_key = "$demo/hq/hq.key"
public_key = "$demo/hq/hq.pub"
[[channel]]
name = "moodledata"
path = "$demo/hq/moodledata"
preset = "moodledata"
[[channel]]
name = "courses"
path = "$demo/hq/courses"
link = true
TOML
cat > center/distd.toml <<TOML
role = "regional"
site = "center-07"
state_dir = "$demo/center/state"
[regional]
hq_url = "http://127.0.0.1:$link_port"
hq_public_key = "$demo/hq/hq.pub"
connect_timeout = 3
low_speed_limit = 2000
low_speed_time = 3
max_attempts = 2
[[channel]]
name = "moodledata"
path = "$demo/center/moodledata"
preset = "moodledata"
[[channel]]
name = "courses"
path = "$demo/center/courses"
TOML
mkdir -p hq/courses
config hq/distd.toml
config center/distd.toml

bold "HQ: publish the moodledata channel and the course (signed, chained versions)"
run distctl publish --config hq/distd.toml --channel moodledata
run distctl publish-course --config hq/distd.toml hq/agr101.mbz

bold "HQ serves on loopback; the link to the center is slow and cuts every ~600 KB (seeded)"
distd --config hq/distd.toml > hq/distd.log 2>&1 & pids+=($!)
"$proxy_bin" --listen "$link_port" --upstream "127.0.0.1:$hq_port" --control "$ctl" --seed 42 \
  --rate 3000000 --cut-every 600000 --log "$demo/link.log" & pids+=($!)
for port in "$hq_port" "$ctl"; do  # HQ and the link listen before the first sync
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null || { echo "!! nothing listens on port $port; see hq/distd.log"; exit 1; }
done
echo "distd (hq) on 127.0.0.1:$hq_port; flaky link on 127.0.0.1:$link_port (3 MB/s, cut every 600 KB +/-25%)"

bold "Center: the nightly sync pulls everything through the cutting link, resuming after each cut"
run distctl sync --config center/distd.toml
stats=$(link stats)
python3 - "$stats" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
print(f"link: {s['cuts']} cuts, {s['bytes_down']:,} bytes down, {s['bytes_up']:,} up, {s['connections']} connections")
PY
run distctl courses --config center/distd.toml
run distctl manifest verify hq/state/public/channels/moodledata/latest.manifest --pubkey hq/hq.pub \
  --tree center/moodledata --preset moodledata

bold "Before the update, HQ also keeps a full bundle of version 1 on an old stick"
run distctl bundle export --config hq/distd.toml --to stick-old

bold "HQ: teachers update content; version 2 of both channels"
# Moodle never edits a stored file: a new version of a lecture is a new blob named by its SHA-1,
# and the old one goes when no course uses it any more.
python3 - hq/moodledata/filedir <<'PY'
import hashlib, os, sys
root = sys.argv[1]
for i in range(3):
    body = (f"Lecture {i + 7}: soil sampling, revised edition\n" * 4000).encode()
    h = hashlib.sha1(body).hexdigest()
    os.makedirs(os.path.join(root, h[:2], h[2:4]), exist_ok=True)
    open(os.path.join(root, h[:2], h[2:4], h), "wb").write(body)
PY
rm "$(find hq/moodledata/filedir -type f -name '[0-9a-f]*' | sort | head -n 1)"
run distctl publish --config hq/distd.toml --channel moodledata
run python3 "$src/tests/support/make_mbz.py" hq/agr101-v2.mbz --shortname AGR101 --fullname "Agronomy 101" --files 25 --seed 3 --version 2
run distctl publish-course --config hq/distd.toml hq/agr101-v2.mbz

bold "The link goes down for days"
echo "link: $(link down)"
down distctl sync --config center/distd.toml --channel moodledata
status --config center/distd.toml

bold "Sneakernet: the center writes a request; HQ answers with exactly what it lacks"
run distctl bundle request --config center/distd.toml --to stick
run distctl bundle export --config hq/distd.toml --to stick --request stick/distd-request.txt
ls -l stick | show
run distctl bundle import --config center/distd.toml --from stick

bold "Bad input from a stick is refused, and nothing is installed from it"
cp -r stick stick-tampered
python3 - stick-tampered/distd-bundle.idx <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0x01; open(p, "wb").write(bytes(b))
PY
refused distctl bundle import --config center/distd.toml --from stick-tampered
echo "(an old stick with version 1 turns up: replaying it would roll the center back)"
refused distctl bundle import --config center/distd.toml --from stick-old

bold "The link is back: the center is already up to date"
echo "link: $(link up)"
run distctl sync --config center/distd.toml
run distctl manifest verify hq/state/public/channels/moodledata/latest.manifest --pubkey hq/hq.pub \
  --tree center/moodledata --preset moodledata

printf '\nDemo finished. Everything is in %s (HQ log: hq/distd.log, link log: link.log)\n' "$demo"
