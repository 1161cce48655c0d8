#!/usr/bin/env bash
# Issue 13: HQ serving a fleet of centers that report every minute. One real HQ (distd, role hq,
# one small published channel), FLEET_SITES enrolled centers (30), each a real `distctl sync` of
# an up-to-date center: a probe of the manifest and a signed POST /report, the path a center's
# daemon takes. HQ distd's CPU time (utime+stime, /proc/PID/stat) and memory (VmRSS sampled every
# second, VmHWM reset at each phase's start through /proc/PID/clear_refs) are measured while the
# fleet reports, against the same HQ idle for the same time.
#   bench/bench_fleet.sh               FLEET_MINUTES (10) real minutes, every center once a minute
#   bench/bench_fleet.sh compressed    FLEET_SECONDS (60) s, every center every FLEET_INTERVAL (2) s
# Env: BUILD (build), BENCH_DIR, FLEET_SITES (30), FLEET_MINUTES, FLEET_SECONDS, FLEET_INTERVAL.
source "$(dirname "$0")/lib.sh"
MODE=${1:-real}
SITES=${FLEET_SITES:-30}
if [ "$MODE" = compressed ]; then
  SECONDS_RUN=${FLEET_SECONDS:-60}; INTERVAL=${FLEET_INTERVAL:-2}
else
  SECONDS_RUN=$(( ${FLEET_MINUTES:-10} * 60 )); INTERVAL=${FLEET_INTERVAL:-60}
fi


S=$WORK/fleet
rm -rf "$S"
mkdir -p "$S/src/sub" "$S/hq-state/sites"
for i in 1 2 3 4 5; do head -c $((i * 20000)) /dev/urandom >"$S/src/sub/f$i"; done
"$DISTCTL" keygen --secret "$S/hq.key" --public "$S/hq.pub" >/dev/null
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
"$DISTCTL" publish --channel c --config "$S/hq.toml" >/dev/null
"$BUILD/distd" --config "$S/hq.toml" >"$S/hqd.log" 2>&1 &
HQ_PID=$!
PIDS+=($HQ_PID)
wait_port "$HQ_PORT"

# The centers: own state, site key enrolled at HQ, brought up to date once (not measured).
for n in $(seq -w 1 "$SITES"); do
  C=$S/center-$n
  mkdir -p "$C/state"
  "$DISTCTL" keygen --secret "$C/state/site.key" --public "$S/hq-state/sites/center-$n.pub" >/dev/null
  cat >"$C/center.toml" <<EOF
role = "regional"
site = "center-$n"
state_dir = "$C/state"
[regional]
hq_url = "http://127.0.0.1:$HQ_PORT"
hq_public_key = "$S/hq.pub"
[[channel]]
name = "c"
path = "$C/dst"
EOF
  "$DISTCTL" sync --config "$C/center.toml" >"$C/sync.log" 2>&1 || { say "initial sync of center-$n failed: $C/sync.log"; exit 1; }
done

python3 - "$HQ_PID" "$S" "$SITES" "$SECONDS_RUN" "$INTERVAL" "$DISTCTL" <<'PY'
import os, subprocess, sys, time
pid, S, sites, run_s, interval, distctl = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
tick = os.sysconf("SC_CLK_TCK")

def cpu():  # utime + stime of every thread, seconds
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick

def mem():
    d = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"): d[k] = int(v.split()[0]) / 1024
    return d

def reset_hwm():  # "5" resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0)
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f: f.write("5")
        return True
    except OSError:
        return False

def phase(name, load):
    hwm_reset = reset_hwm()
    c0, t0, rss = cpu(), time.monotonic(), []
    procs, reports, failed = [], 0, 0
    # center i reports at t0 + i*interval/sites + k*interval: spread over the interval
    due = [t0 + i * interval / sites for i in range(sites)] if load else []
    last_sample = 0.0
    width = len(str(sites))
    while True:
        now = time.monotonic()
        if now - t0 >= run_s: break
        for i, t in enumerate(due):
            if t <= now:
                cfg = f"{S}/center-{i + 1:0{width}d}/center.toml"
                procs.append(subprocess.Popen([distctl, "sync", "--config", cfg],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                due[i] = t + interval
        still = []
        for p in procs:
            rc = p.poll()
            if rc is None:
                still.append(p)
            else:
                reports += 1
                failed += rc != 0
        procs = still
        if now - last_sample >= 1.0:
            rss.append(mem()["VmRSS"]); last_sample = now
        time.sleep(0.02)
    for p in procs:
        failed += p.wait() != 0; reports += 1
    m = mem()
    return dict(name=name, cpu=cpu() - c0, wall=time.monotonic() - t0, rss_mean=sum(rss) / len(rss),
                rss_max=max(rss), hwm=m["VmHWM"], hwm_reset=hwm_reset, reports=reports, failed=failed)

print(f"HQ distd pid {pid}; {sites} centers; {run_s:.0f} s per phase; a report per center every {interval:g} s")
idle = phase("idle", False)
load = phase("fleet", True)
print(f"{'phase':8} {'wall s':>7} {'reports':>8} {'failed':>6} {'CPU s':>7} {'CPU %':>6} "
      f"{'RSS mean MiB':>13} {'RSS max MiB':>12} {'VmHWM MiB':>10}")
for p in (idle, load):
    print(f"{p['name']:8} {p['wall']:7.1f} {p['reports']:8d} {p['failed']:6d} {p['cpu']:7.2f} "
          f"{100 * p['cpu'] / p['wall']:6.2f} {p['rss_mean']:13.1f} {p['rss_max']:12.1f} {p['hwm']:10.1f}")
extra = load["cpu"] - idle["cpu"]
if load["reports"]:
    print(f"HQ CPU per report (fleet - idle): {1000 * extra / load['reports']:.2f} ms; "
          f"RSS max fleet/idle: {load['rss_max'] / idle['rss_max']:.2f}; VmHWM fleet/idle: {load['hwm'] / idle['hwm']:.2f}"
          + ("" if load["hwm_reset"] else " (VmHWM not reset: /proc/PID/clear_refs refused; it is since start)"))
if load["failed"]:
    sys.exit(f"{load['failed']} of {load['reports']} syncs failed; see {S}/hqd.log")
PY
n=$(ls "$S/hq-state/fleet" 2>/dev/null | grep -c '\.json$' || true)
say "HQ holds the latest report of $n centers ($S/hq-state/fleet)"

# GET /metrics for 30 and 1,000 more sites (beside the centers above): a stored report copied
# under new site names, then the
# scrape's time against the same HQ serving a static object of the same size (the peer: what a
# scrape would cost if the text were a file).
for n in ${FLEET_SCRAPE_SITES:-30 1000}; do
  python3 - "$S/hq-state/fleet" "$n" <<'PY'
import json, os, sys
d, n = sys.argv[1], int(sys.argv[2])
src = json.load(open(os.path.join(d, sorted(f for f in os.listdir(d) if f.endswith(".json") and "history" not in f)[0])))
for f in os.listdir(d):
    if f.startswith("scrape-"): os.remove(os.path.join(d, f))
for i in range(n):
    r = dict(src, site=f"scrape-{i:04d}")
    with open(os.path.join(d, f"scrape-{i:04d}.json"), "w") as out: out.write(json.dumps(r) + "\n")
PY
  curl -sf "http://127.0.0.1:$HQ_PORT/metrics" >"$S/metrics-$n.txt"
  size=$(stat -c %s "$S/metrics-$n.txt")
  head -c "$size" /dev/urandom >"$S/src/scrape-peer-$n.bin"
  "$DISTCTL" publish --channel c --config "$S/hq.toml" >/dev/null
  hex=$(b2sum -l 256 "$S/src/scrape-peer-$n.bin" | cut -d' ' -f1)
  python3 - "http://127.0.0.1:$HQ_PORT" "$hex" "$S/hq-state/fleet" "$size" <<'PY'
import os, sys, time, urllib.request
base, hex, d, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
n = sum(1 for f in os.listdir(d) if f.endswith(".json") and not f.endswith(".history.json"))
def mean_ms(url, k=20):
    urllib.request.urlopen(url).read()  # warm
    t0 = time.perf_counter()
    for _ in range(k): urllib.request.urlopen(url).read()
    return 1000 * (time.perf_counter() - t0) / k
m = mean_ms(base + "/metrics")
o = mean_ms(f"{base}/objects/{hex[:2]}/{hex}")
print(f"GET /metrics, {n} sites stored ({size} bytes): {m:.2f} ms; "
      f"a static object of the same size: {o:.2f} ms; ratio {m / o:.1f}")
PY
done
