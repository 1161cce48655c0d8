# Shared helpers for bench/*.sh. Benchmarks compare distd with a peer on the same data in the
# same run and print ratios; they are never tests (a slow machine must not fail anything).
set -euo pipefail
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$BENCH_ROOT/build}
DISTCTL=$BUILD/distctl
WORK=${BENCH_DIR:-$(mktemp -d /tmp/distd-bench-XXXXXX)}
mkdir -p "$WORK"

# best_of N CMD...: runs CMD N times, prints the fastest wall time in seconds.
best_of() {
  local n=$1; shift
  python3 - "$n" "$@" <<'PY'
import subprocess, sys, time
n = int(sys.argv[1]); cmd = sys.argv[2:]
best = None
for _ in range(n):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = time.perf_counter() - t
    best = d if best is None or d < best else best
print(f"{best:.3f}")
PY
}

# best_of_setup N SETUP CMD...: like best_of, running the shell command SETUP (untimed) first.
best_of_setup() {
  python3 - "$@" <<'PY'
import subprocess, sys, time
n = int(sys.argv[1]); setup = sys.argv[2]; cmd = sys.argv[3:]
best = None
for _ in range(n):
    subprocess.run(setup, shell=True, check=True)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = time.perf_counter() - t
    best = d if best is None or d < best else best
print(f"{best:.3f}")
PY
}
# human BYTES: 1.5 MiB, 300 B ...
human() { python3 -c "import sys; n=float(sys.argv[1]); u=['B','KiB','MiB','GiB']; i=0
while n>=1024 and i<3: n/=1024; i+=1
print(f'{n:.1f} {u[i]}' if i else f'{int(n)} B')" "$1"; }

# hq_toml STATE_DIR SECRET_KEY PORT HQ_LINES CHANNEL...: an HQ config on stdout. HQ_LINES are
# more [hq] lines ("" for none); each CHANNEL is NAME=PATH, or NAME=PATH+link for a channel
# whose objects are hard links into the tree.
hq_toml() {
  local state=$1 key=$2 port=$3 extra=$4 ch
  shift 4
  printf 'role = "hq"\nsite = "hq"\nstate_dir = "%s"\n[hq]\nsecret_key = "%s"\nlisten = "127.0.0.1:%s"\n' \
    "$state" "$key" "$port"
  [ -z "$extra" ] || printf '%s\n' "$extra"
  for ch in "$@"; do
    local name=${ch%%=*} path=${ch#*=} link=
    [ "${path%+link}" = "$path" ] || { path=${path%+link}; link='link = true\n'; }
    printf "[[channel]]\nname = \"%s\"\npath = \"%s\"\n$link" "$name" "$path"
  done
}
# center_toml SITE STATE_DIR HQ_URL HQ_PUB REGIONAL_LINES CHANNEL...: a regional config on
# stdout, channels as for hq_toml (NAME=PATH).
center_toml() {
  local site=$1 state=$2 url=$3 pub=$4 extra=$5 ch
  shift 5
  printf 'role = "regional"\nsite = "%s"\nstate_dir = "%s"\n[regional]\nhq_url = "%s"\nhq_public_key = "%s"\n' \
    "$site" "$state" "$url" "$pub"
  [ -z "$extra" ] || printf '%s\n' "$extra"
  for ch in "$@"; do printf '[[channel]]\nname = "%s"\npath = "%s"\n' "${ch%%=*}" "${ch#*=}"; done
}

# peak_rss_mib CMD...: runs CMD once, prints the child's peak resident set size in MiB.
peak_rss_mib() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.1f}")
PY
}

ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }
say() { printf '%s\n' "$*"; }

# Background processes a benchmark starts (HQ, proxies): killed and reaped on exit (or by
# calling cleanup between scenarios, then PIDS=()).
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_port PORT: until something listens on 127.0.0.1:PORT (15 s at most).
wait_port() {
  python3 - "$1" <<'PY'
import socket, sys, time
for _ in range(300):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close(); sys.exit(0)
    except OSError: time.sleep(0.05)
sys.exit("port %s never opened" % sys.argv[1])
PY
}
