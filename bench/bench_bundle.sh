#!/usr/bin/env bash
# Issue 4 benchmarks (sneakernet bundles), same data in the same run:
#   1. export throughput vs `tar cf` of the same objects; import (with verification, fsync and
#      the journal) vs `tar xf` of that tar (goal: >= 70% of tar's speed);
#   2. bytes on the stick for a realistic update vs a plain tar of the changed files (goal: no
#      more than tar; fewer where deltas or dedupe apply).
#   bench/bench_bundle.sh      (BUILD=build by default; BENCH_DIR keeps the data; FILES, TOTAL scale it;
#                               ROUNDS: timed rounds, best of them counts)
# Fair comparison: distctl's export fsyncs every volume and its import makes every file durable
# before it is renamed into place and journaled (power cuts), so they are compared with
# `tar cf` + `sync -f` and `tar xf` + `sync -f` (tar's bytes on disk too); the plain tar times
# are printed beside them. The runs are interleaved (tar, distctl, tar, distctl, ...), so that the
# load of a shared machine weighs on both sides alike.
source "$(dirname "$0")/lib.sh"
DISTCTL=$(cd "$(dirname "$DISTCTL")" && pwd)/distctl  # BUILD may be relative to where we started
ROUNDS=${ROUNDS:-5}

# interleaved N NAME=CMD...: runs each CMD once per round, N rounds, round-robin; prints
# "NAME BEST" lines (fastest wall time in seconds).
interleaved() {
  python3 - "$@" <<'PY'
import os, subprocess, sys, time
n = int(sys.argv[1]); cmds = [a.split("=", 1) for a in sys.argv[2:]]
best = {}
for _ in range(n):
    for name, cmd in cmds:
        os.sync()  # untimed: no run pays for the previous run's write-back
        t = time.perf_counter()
        subprocess.run(["sh", "-c", cmd], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        d = time.perf_counter() - t
        best[name] = min(best.get(name, d), d)
for name, _ in cmds:
    print(name, f"{best[name]:.3f}")
PY
}
FILES=${FILES:-2000}
TOTAL=${TOTAL:-$((400 * 1024 * 1024))}
W="$WORK/bundle"
rm -rf "$W" && mkdir -p "$W"
"$DISTCTL" keygen --secret "$W/hq.key" --public "$W/hq.pub" >/dev/null
python3 "$BENCH_ROOT/bench/gen_tree.py" "$W/src" --files "$FILES" --total "$TOTAL" --seed 4
cat > "$W/hq.toml" <<EOF
role = "hq"
site = "hq"
state_dir = "hq-state"
[hq]
secret_key = "hq.key"
[[channel]]
name = "c"
path = "src"
EOF
cat > "$W/center.toml" <<EOF
role = "regional"
site = "center-1"
state_dir = "c-state"
[regional]
hq_url = "http://127.0.0.1:1"
hq_public_key = "hq.pub"
[[channel]]
name = "c"
path = "center/moodle"
EOF
cd "$W"
"$DISTCTL" publish --config hq.toml --channel c >/dev/null
OBJ_BYTES=$(du -sb hq-state/public/objects | cut -f1)
say "== Throughput: $FILES files, $((OBJ_BYTES / 1024 / 1024)) MiB of objects (page cache warm), best of $ROUNDS interleaved rounds"
say "   load before: $(uptime | sed 's/.*load average/load average/') on $(nproc) cores"
tar cf /dev/null -C hq-state/public objects  # warm
eval "$(interleaved "$ROUNDS" \
  "t_tar_c=rm -f t.tar; tar cf t.tar -C hq-state/public objects" \
  "t_tar_cs=rm -f t.tar; tar cf t.tar -C hq-state/public objects && sync -f t.tar" \
  "t_exp=rm -rf stick; '$DISTCTL' bundle export --config hq.toml --to stick" | sed 's/ /=/')"
say "tar cf:                      ${t_tar_c} s   (+ sync: ${t_tar_cs} s)"
say "distctl bundle export:       ${t_exp} s   speed vs tar cf+sync $(ratio "$t_tar_cs" "$t_exp") (goal >= 0.70), vs plain tar cf $(ratio "$t_tar_c" "$t_exp")  (export hashes every byte, fsyncs the volume)"
eval "$(interleaved "$ROUNDS" \
  "t_tar_x=rm -rf x && mkdir x && tar xf t.tar -C x" \
  "t_tar_xs=rm -rf x && mkdir x && tar xf t.tar -C x && sync -f x" \
  "t_imp=rm -rf center c-state && '$DISTCTL' bundle import --config center.toml --from stick" | sed 's/ /=/')"
say "tar xf:                      ${t_tar_x} s   (+ sync: ${t_tar_xs} s)"
say "distctl bundle import:       ${t_imp} s   speed vs tar xf+sync $(ratio "$t_tar_xs" "$t_imp") (goal >= 0.70), vs plain tar xf $(ratio "$t_tar_x" "$t_imp")  (verifies every byte, durable before rename, journaled)"
say "   load after:  $(uptime | sed 's/.*load average/load average/')"
rm -rf x t.tar

say ""
say "== Bytes on the stick for an update: 30 new files, 5 large files edited, 20 renamed, 2 copied, 10 deleted"
python3 - <<'PY'
import os, random
rnd = random.Random(7)
files = sorted(os.path.join(d, f) for d, _, fs in os.walk("src") for f in fs)
changed = []
big = sorted(files, key=os.path.getsize)[-5:]
for p in big:  # a small edit in the middle of a large file (a new inode: the store may link the old)
    b = bytearray(open(p, "rb").read()); b[len(b) // 2:len(b) // 2 + 16] = rnd.randbytes(16)
    os.remove(p); open(p, "wb").write(b); changed.append(p)
rest = [f for f in files if f not in big]
rnd.shuffle(rest)
for p in rest[:20]:
    q = p + ".renamed"; os.rename(p, q); changed.append(q)
for p in rest[20:22]:
    q = p + ".copy"; open(q, "wb").write(open(p, "rb").read()); changed.append(q)
for p in rest[22:32]:
    os.remove(p)
os.makedirs("src/new", exist_ok=True)
for i in range(30):
    q = f"src/new/n{i}"; open(q, "wb").write(rnd.randbytes(rnd.randrange(1000, 200000))); changed.append(q)
open("changed.list", "w").write("\n".join(os.path.relpath(c, "src") for c in changed) + "\n")
PY
"$DISTCTL" publish --config hq.toml --channel c >/dev/null
rm -rf center c-state stick stick1
# --since 1 answers a center at version 1 exactly like its request would (held = version 1).
"$DISTCTL" bundle export --config hq.toml --to stick1 --channel c --since 1 --json > update.json
tar cf changed.tar -C src -T changed.list
TAR_BYTES=$(stat -c %s changed.tar)
B_BYTES=$(( $(stat -c %s stick1/distd-bundle.idx) + $(cat stick1/distd-bundle-*.tar | wc -c) ))
say "plain tar of the changed files:        $TAR_BYTES bytes"
say "bundle --since 1 (deltas, dedupe):     $B_BYTES bytes   ratio to tar $(ratio "$B_BYTES" "$TAR_BYTES")  (goal <= 1.0)"
python3 - <<'PY'
import json
j = json.load(open("update.json"))
print(f"  {j['objects']} objects ({j['object_bytes']} B), {j['deltas']} deltas ({j['delta_bytes']} B standing for "
      f"{j['delta_target_bytes']} B), {j['held_entries']} entries already at the center, {j['shared_entries']} deduplicated")
PY
