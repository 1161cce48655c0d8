#!/usr/bin/env bash
# Issue 3 benchmarks: distd (publish at HQ, `distd` role hq, `distctl sync`) against rsync in
# daemon mode and curl, on loopback, on the same data in the same run.
#   bench/bench_sync.sh [wire] [resume] [rss] [throughput]     (all four when none is named)
# BUILD=build by default; BENCH_DIR keeps the data. Sizes scale down for a quick look:
#   WIRE_BIG_MIB (100), WIRE_DUP_MIB (50), WIRE_RENAMES (1000), WIRE_NEW (500),
#   RESUME_MIB (200), RESUME_CUTS (20), RESUME_SEED (7),
#   RSS_BIG_MIB (2048), RSS_FILES (100000), TPUT_MIB (1024).
# Bytes on the wire are counted by flaky_proxy (no faults: a plain TCP relay) in front of each
# server: bytes_up + bytes_down, so both directions and all protocol overhead count, for distd
# and rsync alike. rsync's own --stats total (sent + received) is printed beside it.
source "$(dirname "$0")/lib.sh"
PROXY=${PROXY:-$BUILD/tests/flaky_proxy}
WIRE_BIG_MIB=${WIRE_BIG_MIB:-100}
WIRE_DUP_MIB=${WIRE_DUP_MIB:-50}
WIRE_RENAMES=${WIRE_RENAMES:-1000}
WIRE_NEW=${WIRE_NEW:-500}
RESUME_MIB=${RESUME_MIB:-200}
RESUME_CUTS=${RESUME_CUTS:-20}
RESUME_SEED=${RESUME_SEED:-7}
RSS_BIG_MIB=${RSS_BIG_MIB:-2048}
RSS_FILES=${RSS_FILES:-100000}
TPUT_MIB=${TPUT_MIB:-1024}
PARTS=${*:-wire resume rss throughput}

# proxy_bytes CONTROL_PORT: bytes_up + bytes_down so far.
proxy_bytes() {
  python3 - "$1" <<'PY'
import json, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"stats\n"); buf = b""
while not buf.endswith(b"\n"): buf += s.recv(65536)
j = json.loads(buf); print(j["bytes_up"] + j["bytes_down"], j["bytes_down"], j["cuts"])
PY
}
# timed CMD...: runs CMD, prints its wall time in seconds (fails when CMD fails).
timed() {
  python3 - "$@" <<'PY'
import subprocess, sys, time
t = time.perf_counter()
import os
out = open(os.environ["TIMED_OUT"], "w") if os.environ.get("TIMED_OUT") else subprocess.DEVNULL
err = os.environ.get("TIMED_ERR", "/dev/null")
r = subprocess.run(sys.argv[1:], stdout=out, stderr=open(err, "w"))
if r.returncode: sys.exit("failed (%d): %s; see %s" % (r.returncode, " ".join(sys.argv[1:]), err))
print(f"{time.perf_counter() - t:.3f}")
PY
}
# rand_file PATH MIB [SEED]: MIB MiB of seeded pseudo-random bytes (incompressible, no repeats).
rand_file() {
  python3 - "$@" <<'PY'
import hashlib, os, sys
path, mib = sys.argv[1], int(sys.argv[2]); seed = sys.argv[3] if len(sys.argv) > 3 else path
os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
key = hashlib.sha256(seed.encode()).digest()
with open(path, "wb") as f:
    for i in range(mib):  # SHAKE stream per MiB: fast enough, never repeats within the file
        f.write(hashlib.shake_256(key + i.to_bytes(8, "little")).digest(1 << 20))
PY
}
# site NAME: an HQ (distd role hq) with channel c at $S/src, a regional center at $S/dst whose
# hq_url goes through a fault-free flaky_proxy ($S_CTL = its control port), and an rsync daemon
# serving $S/src, also behind its own proxy ($R_CTL). Sets S, HQ_PORT, P_PORT, S_CTL, R_PORT, R_CTL.
site() {
  S=$WORK/$1
  rm -rf "$S"
  mkdir -p "$S/src" "$S/dst" "$S/rdst"
  "$DISTCTL" keygen --secret "$S/hq.key" --public "$S/hq.pub" >/dev/null
  # The center's site key, enrolled: HQ computes deltas and batches only for enrolled sites.
  # Kept outside center-state, which scenarios remove between runs.
  mkdir -p "$S/hq-state/sites"
  "$DISTCTL" keygen --secret "$S/site.key" --public "$S/hq-state/sites/center-1.pub" >/dev/null
  HQ_PORT=$(free_port)
  cat >"$S/hq.toml" <<EOF
role = "hq"
site = "hq"
state_dir = "$S/hq-state"
[hq]
secret_key = "$S/hq.key"
public_key = "$S/hq.pub"
listen = "127.0.0.1:$HQ_PORT"
[[channel]]
name = "c"
path = "$S/src"
EOF
  "$BUILD/distd" --config "$S/hq.toml" >"$S/hqd.log" 2>&1 &
  PIDS+=($!)
  wait_port "$HQ_PORT"
  P_PORT=$(free_port); S_CTL=$(free_port)
  "$PROXY" --listen "$P_PORT" --upstream "127.0.0.1:$HQ_PORT" --control "$S_CTL" --seed "$RESUME_SEED" \
    --log "$S/proxy.log" ${PROXY_ARGS:-} &
  PIDS+=($!)
  wait_port "$S_CTL"
  regional_config "http://127.0.0.1:$P_PORT"
  R_PORT=$(free_port); R_PPORT=$(free_port); R_CTL=$(free_port)
  cat >"$S/rsyncd.conf" <<EOF
use chroot = false
pid file = $S/rsyncd.pid
log file = $S/rsyncd.log
[m]
path = $S/src
read only = true
EOF
  rsync --daemon --no-detach --port "$R_PORT" --address 127.0.0.1 --config "$S/rsyncd.conf" &
  PIDS+=($!)
  wait_port "$R_PORT"
  "$PROXY" --listen "$R_PPORT" --upstream "127.0.0.1:$R_PORT" --control "$R_CTL" --seed "$RESUME_SEED" \
    --log "$S/rproxy.log" ${PROXY_ARGS:-} &
  PIDS+=($!)
  wait_port "$R_CTL"
}
regional_config() {
  cat >"$S/center.toml" <<EOF
role = "regional"
site = "center-1"
state_dir = "$S/center-state"
[regional]
hq_url = "$1"
hq_public_key = "$S/hq.pub"
site_secret_key = "$S/site.key"
connect_timeout = 5
low_speed_limit = 1000
low_speed_time = 10
max_attempts = ${MAX_ATTEMPTS:-3}
[[channel]]
name = "c"
path = "$S/dst"
EOF
}
publish() { "$DISTCTL" publish --channel c --config "$S/hq.toml" >/dev/null; }
distd_sync() { "$DISTCTL" sync --config "$S/center.toml" --json >"$S/sync.json" 2>"$S/sync.err"; }
rsync_pull() { rsync -a --delete --stats "rsync://127.0.0.1:$R_PPORT/m/" "$S/rdst/" >"$S/rsync.out" 2>&1; }
rsync_stats_bytes() {
  python3 - "$S/rsync.out" <<'PY'
import re, sys
t = open(sys.argv[1]).read().replace(",", "")
s = int(re.search(r"Total bytes sent: (\d+)", t).group(1)); r = int(re.search(r"Total bytes received: (\d+)", t).group(1))
print(s + r)
PY
}
check_same() { diff -r --exclude=.distd-staging "$S/src" "$S/dst" >/dev/null && diff -r "$S/src" "$S/rdst" >/dev/null || { say "MISMATCH after $1"; exit 1; }; }

# One wire scenario: both tools bring their copy from the previous state to the new one.
WIRE_ROWS=()
wire_case() {
  local name=$1
  publish
  local d0 r0 d1 r1 td tr
  read -r d0 _ _ < <(proxy_bytes "$S_CTL")
  td=$(TIMED_OUT=$S/sync.json TIMED_ERR=$S/sync.err timed "$DISTCTL" sync --config "$S/center.toml" --json)
  read -r d1 _ _ < <(proxy_bytes "$S_CTL")
  read -r r0 _ _ < <(proxy_bytes "$R_CTL")
  tr=$(TIMED_OUT=$S/rsync.out timed rsync -a --delete --stats "rsync://127.0.0.1:$R_PPORT/m/" "$S/rdst/")
  read -r r1 _ _ < <(proxy_bytes "$R_CTL")
  local rs_own plan
  rs_own=$(rsync_stats_bytes)
  plan=$(python3 -c "import json,sys; c=json.load(open(sys.argv[1]))['channels'][0]; print(f\"{c['copied']} copied, {c['delta']} delta, {c['full']} full, {c['delta_fallbacks']} fallbacks\")" "$S/sync.json")
  check_same "$name"
  local dw=$((d1 - d0)) rw=$((r1 - r0))
  local verdict="ok"
  [ "$dw" -le "$rw" ] || verdict="MORE THAN RSYNC"
  printf '%-34s distd %10d B %7.2f s | rsync %10d B %7.2f s | bytes %s  time %s  %s\n' \
    "$name" "$dw" "$td" "$rw" "$tr" "$(ratio "$dw" "$rw")" "$(ratio "$td" "$tr")" "$verdict"
  printf '%-34s   (distd: %s; rsync --stats sent+received %d B)\n' "" "$plan" "$rs_own"
}

bench_wire() {
  say "== Bytes on the wire and wall time vs rsync daemon (loopback, through a fault-free relay)"
  site wire
  rand_file "$S/src/big.bin" "$WIRE_BIG_MIB" big
  python3 - "$S/src" "$WIRE_RENAMES" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2]); rnd = random.Random(3)
os.makedirs(f"{root}/old", exist_ok=True)
for i in range(n):
    with open(f"{root}/old/doc{i:05d}.pdf", "wb") as f: f.write(rnd.randbytes(rnd.randrange(2048, 16384)))
PY
  publish
  distd_sync || { say "initial distd sync failed: $(cat "$S/sync.err")"; exit 1; }
  rsync_pull
  check_same initial
  say "(each line: bytes = proxy bytes up+down; ratio = distd / rsync; goal: bytes ratio <= 1.00)"
  # 1. a small edit in the middle of the big file (100 bytes overwritten)
  python3 - "$S/src/big.bin" <<'PY'
import os, sys
p = sys.argv[1]; n = os.path.getsize(p)
with open(p, "r+b") as f: f.seek(n // 2 + 12345); f.write(b"E" * 100)
PY
  wire_case "small edit in ${WIRE_BIG_MIB} MiB file"
  # 2. an append of 64 KiB
  python3 -c "import sys; open(sys.argv[1],'ab').write(__import__('random').Random(5).randbytes(65536))" "$S/src/big.bin"
  wire_case "append 64 KiB"
  # 3. an insert of 4 KiB in the middle
  python3 - "$S/src/big.bin" <<'PY'
import random, sys
p = sys.argv[1]; b = open(p, "rb").read(); m = len(b) // 3
open(p, "wb").write(b[:m] + random.Random(9).randbytes(4096) + b[m:])
PY
  wire_case "insert 4 KiB in the middle"
  # 4. a rename of every small file (another directory, same names)
  mv "$S/src/old" "$S/src/renamed"
  wire_case "rename of $WIRE_RENAMES files"
  # 5. the same new file at two paths
  rand_file "$S/src/a/dup.bin" "$WIRE_DUP_MIB" dup
  mkdir -p "$S/src/b" && cp "$S/src/a/dup.bin" "$S/src/b/copy-of-dup.bin"
  wire_case "same ${WIRE_DUP_MIB} MiB file at two paths"
  # 6. new small files
  python3 - "$S/src" "$WIRE_NEW" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2]); rnd = random.Random(4)
os.makedirs(f"{root}/new", exist_ok=True)
for i in range(n):
    with open(f"{root}/new/img{i:05d}.png", "wb") as f: f.write(rnd.randbytes(rnd.randrange(1024, 8192)))
PY
  wire_case "$WIRE_NEW new small files"
}

bench_resume() {
  say ""
  local size=$((RESUME_MIB * 1024 * 1024)) every=$((RESUME_MIB * 1024 * 1024 / (RESUME_CUTS + 1)))
  say "== Resume: a $RESUME_MIB MiB object, the link cut about every $(human $every) (seed $RESUME_SEED, ~$RESUME_CUTS cuts)"
  PROXY_ARGS="--cut-every $every" MAX_ATTEMPTS=50 site resume
  rand_file "$S/src/video.mp4" "$RESUME_MIB" resume
  publish
  local runs=0 t0 t1
  t0=$(date +%s.%N)
  until distd_sync; do
    runs=$((runs + 1)); [ $runs -lt 100 ] || { say "distd did not converge: $(cat "$S/sync.err")"; exit 1; }
  done
  t1=$(date +%s.%N)
  local dall ddown dcuts
  read -r dall ddown dcuts < <(proxy_bytes "$S_CTL")
  say "distd:           $dcuts cuts, $((runs + 1)) runs of distctl sync, received $ddown B = $(ratio "$ddown" "$size") x the file (goal <= 1.03); up+down $(ratio "$dall" "$size") x; $(python3 -c "print(f'{$t1-$t0:.1f}')") s"
  runs=0
  t0=$(date +%s.%N)
  until rsync -a --partial "rsync://127.0.0.1:$R_PPORT/m/" "$S/rdst/" >/dev/null 2>&1; do
    runs=$((runs + 1)); [ $runs -lt 200 ] || { say "rsync did not converge"; break; }
  done
  t1=$(date +%s.%N)
  local rall rdown rcuts
  read -r rall rdown rcuts < <(proxy_bytes "$R_CTL")
  say "rsync --partial: $rcuts cuts, $((runs + 1)) runs, received $rdown B = $(ratio "$rdown" "$size") x the file; up+down $(ratio "$rall" "$size") x; $(python3 -c "print(f'{$t1-$t0:.1f}')") s"
  check_same resume
}

bench_rss() {
  say ""
  say "== Peak RSS of distctl sync (the regional process), goal < 64 MiB"
  site rss-big
  rand_file "$S/src/course-video.bin" "$RSS_BIG_MIB" rssbig
  publish
  regional_config "http://127.0.0.1:$HQ_PORT"
  local t0=$(date +%s.%N) rss
  rss=$(peak_rss_mib "$DISTCTL" sync --config "$S/center.toml" --json)
  say "one $RSS_BIG_MIB MiB file:   ${rss} MiB  ($(python3 -c "print(f'{$(date +%s.%N)-$t0:.1f}')") s)"
  cmp -s "$S/src/course-video.bin" "$S/dst/course-video.bin" || { say "MISMATCH"; exit 1; }
  cleanup; PIDS=()
  rm -rf "$S"
  site rss-many
  python3 "$BENCH_ROOT/bench/gen_tree.py" "$S/src" --files "$RSS_FILES" --total $((RSS_FILES * 2048)) --seed 2
  local tp=$(timed "$DISTCTL" publish --channel c --config "$S/hq.toml")
  regional_config "http://127.0.0.1:$HQ_PORT"
  t0=$(date +%s.%N)
  rss=$(peak_rss_mib "$DISTCTL" sync --config "$S/center.toml" --json)
  local t=$(python3 -c "print(f'{$(date +%s.%N)-$t0:.1f}')")
  say "a $RSS_FILES-file tree: ${rss} MiB  (initial sync $t s, $(python3 -c "print(f'{$RSS_FILES/$t:.0f}')") files/s; publish took $tp s)"
  t0=$(date +%s.%N)
  rss=$(peak_rss_mib "$DISTCTL" sync --config "$S/center.toml" --json)
  say "  the same, up to date:   ${rss} MiB  ($(python3 -c "print(f'{$(date +%s.%N)-$t0:.1f}')") s)"
  local tr=$(timed rsync -a "rsync://127.0.0.1:$R_PORT/m/" "$S/rdst/")
  say "  rsync -a of the same tree (no fsync): $tr s"
  cleanup; PIDS=()
}

bench_throughput() {
  say ""
  say "== Full-object download of $TPUT_MIB MiB from distd hq on loopback: distctl sync vs curl -o (best of 3)"
  site tput
  rand_file "$S/src/big.iso" "$TPUT_MIB" tput
  publish
  regional_config "http://127.0.0.1:$HQ_PORT"
  local hex
  hex=$(b2sum -l 256 "$S/src/big.iso" | cut -c1-64)
  local url="http://127.0.0.1:$HQ_PORT/objects/${hex:0:2}/$hex"
  cat "$S/src/big.iso" >/dev/null
  local tc tcs td
  # Each run starts from nothing (the removal of the previous output is not timed) with the
  # previous run's dirty pages written back, so no run pays for another's.
  tc=$(best_of_setup 3 "rm -f '$S/curl.out'; sync" curl -s -f -o "$S/curl.out" "$url")
  tcs=$(best_of_setup 3 "rm -f '$S/curl.out'; sync" sh -c "curl -s -f -o '$S/curl.out' '$url' && python3 -c 'import os,sys; f=os.open(sys.argv[1], os.O_RDONLY); os.fsync(f)' '$S/curl.out'")
  rm -f "$S/curl.out"
  td=$(best_of_setup 3 "rm -rf '$S/dst' '$S/center-state'; sync" "$DISTCTL" sync --config "$S/center.toml" --json)
  cmp -s "$S/src/big.iso" "$S/dst/big.iso" || { say "MISMATCH"; exit 1; }
  say "curl -o:             ${tc} s  $(python3 -c "print(f'{$TPUT_MIB/$tc:.0f}')") MiB/s"
  say "curl -o, then fsync: ${tcs} s  $(python3 -c "print(f'{$TPUT_MIB/$tcs:.0f}')") MiB/s"
  say "distctl sync:        ${td} s  $(python3 -c "print(f'{$TPUT_MIB/$td:.0f}')") MiB/s   throughput vs curl $(ratio "$tc" "$td") (goal >= 0.80); vs curl+fsync $(ratio "$tcs" "$td")"
}

say "load: $(uptime)"
for p in $PARTS; do "bench_$p"; done
say ""
say "load: $(uptime)"
say "data kept in $WORK (remove it when done)"
