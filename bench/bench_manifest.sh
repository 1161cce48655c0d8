#!/usr/bin/env bash
# Issue 2 benchmarks: full hash vs b2sum, rescan vs find, peak RSS of a 100,000-entry manifest.
#   bench/bench_manifest.sh            (BUILD=build by default; BENCH_DIR to keep the data)
# Sizes can be scaled down for a quick look: HASH_FILES, HASH_BYTES, RESCAN_FILES.
source "$(dirname "$0")/lib.sh"
HASH_FILES=${HASH_FILES:-20000}
HASH_BYTES=${HASH_BYTES:-$((2 * 1024 * 1024 * 1024))}
RESCAN_FILES=${RESCAN_FILES:-100000}

"$DISTCTL" keygen --secret "$WORK/k.sec" --public "$WORK/k.pub" >/dev/null 2>&1 || true

say "== Full hash: $HASH_FILES files, $((HASH_BYTES / 1024 / 1024)) MiB (page cache warm), best of 3"
[ -d "$WORK/hash" ] || python3 "$BENCH_ROOT/bench/gen_tree.py" "$WORK/hash" --files "$HASH_FILES" --total "$HASH_BYTES"
( cd "$WORK/hash" && find . -type f -print0 | sort -z > "$WORK/hash.list" )
( cd "$WORK/hash" && xargs -0 cat < "$WORK/hash.list" > /dev/null )  # warm the page cache
t_b2=$(cd "$WORK/hash" && best_of 3 sh -c "xargs -0 b2sum -l 256 < '$WORK/hash.list' > /dev/null")
t_one=$(best_of 3 "$DISTCTL" manifest build "$WORK/hash" --channel bench --version 1 --key "$WORK/k.sec" -o "$WORK/hash.manifest" --threads 1)
t_all=$(best_of 3 "$DISTCTL" manifest build "$WORK/hash" --channel bench --version 1 --key "$WORK/k.sec" -o "$WORK/hash.manifest" --threads "$(nproc)")
say "b2sum -l 256 (one process):        ${t_b2} s"
say "distctl manifest build, 1 thread:  ${t_one} s   ratio to b2sum $(ratio "$t_one" "$t_b2")  (goal <= 1.2)"
say "distctl manifest build, $(nproc) threads: ${t_all} s   ratio to b2sum $(ratio "$t_all" "$t_b2")  (goal < 1.0)"

say ""
say "== Rescan of an unchanged $RESCAN_FILES-file tree (stat cache warm), best of 5"
[ -d "$WORK/many" ] || python3 "$BENCH_ROOT/bench/gen_tree.py" "$WORK/many" --files "$RESCAN_FILES" --total $((RESCAN_FILES * 2048)) --seed 2
rm -f "$WORK/many.cache"*
"$DISTCTL" manifest build "$WORK/many" --channel bench --version 1 --key "$WORK/k.sec" -o "$WORK/many.manifest" --stat-cache "$WORK/many.cache" >/dev/null
t_find=$(best_of 5 sh -c "find '$WORK/many' -type f -printf '%s %T@\n' > /dev/null")
t_rescan=$(best_of 5 "$DISTCTL" manifest build "$WORK/many" --channel bench --version 1 --key "$WORK/k.sec" -o "$WORK/many.manifest" --stat-cache "$WORK/many.cache")
hashed=$("$DISTCTL" manifest build "$WORK/many" --channel bench --version 1 --key "$WORK/k.sec" -o "$WORK/many.manifest" --stat-cache "$WORK/many.cache" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["hashed_files"])')
say "find -printf '%s %T@':                 ${t_find} s"
say "distctl manifest build (rescan):       ${t_rescan} s   ratio to find $(ratio "$t_rescan" "$t_find")  (goals: < 1 s, <= 3.0); files hashed: $hashed"

say ""
say "== Peak RSS building a $RESCAN_FILES-entry manifest"
rm -f "$WORK/many.cache"*
rss_cold=$(peak_rss_mib "$DISTCTL" manifest build "$WORK/many" --channel bench --version 1 --key "$WORK/k.sec" -o "$WORK/many.manifest" --stat-cache "$WORK/many.cache")
rss_warm=$(peak_rss_mib "$DISTCTL" manifest build "$WORK/many" --channel bench --version 1 --key "$WORK/k.sec" -o "$WORK/many.manifest" --stat-cache "$WORK/many.cache")
say "first scan (hash everything): ${rss_cold} MiB; rescan: ${rss_warm} MiB  (goal < 64 MiB)"
say ""
say "data kept in $WORK (remove it when done)"
