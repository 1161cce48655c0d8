#!/usr/bin/env bash
# Two backups of a real course from a real Moodle 4.5.6 (tests/support/moodle_fixture.py, HQ only):
# a course made by Moodle's own generator (maketestcourse.php) plus text handouts and a forum,
# backed up with admin/cli/backup.php (v1); a teacher edits one forum post, starts a discussion
# with a ~100 KB attachment and a reply, replaces one handout, adds a ~200 KB resource
# (bench/moodle_backup_edit.php, Moodle's PHP API); backed up again (v2). Measured on those two
# files in one run:
#   1. distd: publish-course v1, a center syncs it; publish-course v2, the center syncs again
#      through flaky_proxy without faults (a byte-counting relay): bytes down/up of the update.
#   2. rsync of the .mbz v1 -> v2 (rsync daemon on loopback, --stats), with -z and without.
#   3. zstd -19 of a tar of the members that are new or changed in v2 (by path and bytes): what
#      the update carries at least. Goals: distd <= 1.1x that, distd <= 0.1x rsync -z.
#   4. the stick: bundle request at the center (after v1), bundle export at HQ (after v2).
#   5. v1's XML members as new files: a plain channel of them synced to a fresh center vs
#      rsync -z -r of the same tree into an empty directory. Goal <= 0.8x rsync -z.
#   BUILD=build bench/bench_moodle_backup.sh
# Environment: BUILD (distctl, distd, tests/flaky_proxy; or DISTCTL, DISTD, FLAKY_PROXY),
# MOODLE_BUILD (where the Moodle template lives: MOODLE_BUILD/moodle-fixture, default $BUILD),
# BENCH_MOODLE_SIZE (maketestcourse size, default S: ~10 MB backup; XS is tiny),
# BENCH_MBZ_V1 + BENCH_MBZ_V2 (use these two backups instead of making them; no Moodle needed).
# A benchmark, not a test: it exits 0 whether or not the goals are met.
_DISTCTL=${DISTCTL:-} _DISTD=${DISTD:-} _FLAKY=${FLAKY_PROXY:-}
source "$(dirname "$0")/lib.sh"
BUILD=$(cd "$BUILD" && pwd)  # BUILD=build works from the source root (the script cd's away)
DISTCTL=${_DISTCTL:-$BUILD/distctl}
DISTD=${_DISTD:-$BUILD/distd}
FLAKY_PROXY=${_FLAKY:-$BUILD/tests/flaky_proxy}
[ -x "$FLAKY_PROXY" ] || FLAKY_PROXY=$BUILD/flaky_proxy
MOODLE_BUILD=${MOODLE_BUILD:-$BUILD}
T_START=$(date +%s.%N)
for b in "$DISTCTL" "$DISTD" "$FLAKY_PROXY"; do [ -x "$b" ] || { echo "missing $b (build it first)" >&2; exit 2; }; done

# num KEY FILE: a figure from rsync --stats ("Total bytes received: 1,234").
num() { python3 -c 'import re,sys; print(int(re.search(sys.argv[1]+r": ([\d,]+)", open(sys.argv[2]).read()).group(1).replace(",","")))' "$1" "$2"; }
# jget FILE EXPR: a value of a JSON file (EXPR in Python over j).
jget() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
ratio3() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.3f}')" "$1" "$2"; }  # goals: 3 places
goal() {  # goal VALUE LIMIT: "goal met" or "goal MISSED"
  python3 -c 'import sys; print("goal met" if float(sys.argv[1]) <= float(sys.argv[2]) else "goal MISSED")' "$1" "$2"
}
# proxy_stats: "bytes_down bytes_up" so far through the relay.
proxy_stats() {
  local line
  exec 4<>/dev/tcp/127.0.0.1/"$CPORT"
  echo stats >&4
  read -r line <&4
  exec 4>&-
  python3 -c 'import json,sys; s=json.loads(sys.argv[1]); print(s["bytes_down"], s["bytes_up"])' "$line"
}

cd "$WORK"
say "work dir: $WORK"
trap 'echo "bench_moodle_backup: failed at line $LINENO; the end of $WORK/distctl.log:" >&2; tail -5 "$WORK/distctl.log" >&2 2>/dev/null' ERR

# --- the two backups, from a real Moodle ---
if [ -n "${BENCH_MBZ_V1:-}" ]; then
  V1=$(readlink -f "$BENCH_MBZ_V1"); V2=$(readlink -f "$BENCH_MBZ_V2")
  say "backups given: $V1, $V2"
else
  T0=$(date +%s.%N)
  python3 "$BENCH_ROOT/bench/moodle_backup_make.py" "$MOODLE_BUILD" "$WORK/moodle" \
    --size "${BENCH_MOODLE_SIZE:-S}" > mbz.json 2> moodle.log || { cat moodle.log >&2; exit 1; }
  T1=$(date +%s.%N)
  V1=$(jget mbz.json 'j["v1"]'); V2=$(jget mbz.json 'j["v2"]')
  say "Moodle $(jget mbz.json 'j["release"]'): course id $(jget mbz.json 'j["course_id"]') (maketestcourse --size=$(jget mbz.json 'j["size"]') + handouts + forum), two backups in $(python3 -c "print(f'{$T1-$T0:.0f}')") s ($(jget mbz.json '", ".join(f"{k} {v} s" for k,v in j["seconds"].items())'))"
  say "  teacher's edit: post $(jget mbz.json 'j["edit"]["edited_post"]["id"]') edited ($(jget mbz.json 'j["edit"]["edited_post"]["bytes_before"]') -> $(jget mbz.json 'j["edit"]["edited_post"]["bytes_after"]') bytes), new discussion with a $(jget mbz.json 'j["edit"]["new_discussion"]["attachment_bytes"]')-byte attachment and a reply, handout $(jget mbz.json 'j["edit"]["replaced_file"]["name"]') replaced ($(jget mbz.json 'j["edit"]["replaced_file"]["bytes"]') bytes), new resource of $(jget mbz.json 'j["edit"]["new_resource"]["bytes"]') bytes"
fi
V1_SIZE=$(stat -c %s "$V1"); V2_SIZE=$(stat -c %s "$V2")
mkdir -p x1 x2
tar xzf "$V1" -C x1
tar xzf "$V2" -C x2
fbytes() { find "$1" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }  # file bytes of a tree
say "backup v1: $V1_SIZE bytes, $(find x1 -type f | wc -l) file members, $(fbytes x1) bytes unpacked"
say "backup v2: $V2_SIZE bytes, $(find x2 -type f | wc -l) file members, $(fbytes x2) bytes unpacked"

# --- 3. what is new or changed in v2: members whose path is new or whose bytes differ ---
python3 - x1 x2 changed.list <<'PY' > changed.txt
import hashlib, os, sys
a, b, out = sys.argv[1:]
def tree(root):
    r = {}
    for d, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(d, f)
            r[os.path.relpath(p, root)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return r
t1, t2 = tree(a), tree(b)
held = set(t1.values())
new = sorted(p for p in t2 if p not in t1)
changed = sorted(p for p in t2 if p in t1 and t1[p] != t2[p])
removed = sorted(p for p in t1 if p not in t2)
size = lambda ps: sum(os.path.getsize(os.path.join(b, p)) for p in ps)
with open(out, "w") as f:
    f.write("".join(p + "\n" for p in new + changed))
with open(out + ".new", "w") as f:
    f.write("".join(p + "\n" for p in new))
with open(out + ".changed", "w") as f:
    f.write("".join(p + "\n" for p in changed))
print(len(new), size(new), len(changed), size(changed), len(removed), sum(1 for p in new if t2[p] in held))
for p in new: print("  new     %8d  %s" % (os.path.getsize(os.path.join(b, p)), p))
for p in changed: print("  changed %8d  %s" % (os.path.getsize(os.path.join(b, p)), p))
for p in removed: print("  removed %8d  %s" % (os.path.getsize(os.path.join(a, p)), p))
PY
read -r N_NEW B_NEW N_CHG B_CHG N_RM N_NEW_HELD < <(head -1 changed.txt)
tar cf changed.tar -C x2 --sort=name -T changed.list
zstd -19 -q -f changed.tar -o changed.tar.zst
ZSTD_CHG=$(stat -c %s changed.tar.zst)
zsize() { tar cf - -C x2 --sort=name -T "$1" | zstd -19 -q -c | wc -c; }
ZSTD_EACH=$(while read -r p; do zstd -19 -q -c "x2/$p" | wc -c; done < changed.list | awk '{s+=$1} END {print s+0}')
say "v1 -> v2: $N_NEW new members ($B_NEW bytes; $N_NEW_HELD of them with bytes v1 had elsewhere), $N_CHG changed ($B_CHG bytes), $N_RM removed:"
tail -n +2 changed.txt
say "  their tar: $(stat -c %s changed.tar) bytes; zstd -19 of it: $ZSTD_CHG bytes (new ones alone $(zsize changed.list.new), changed ones alone $(zsize changed.list.changed))"

# --- distd: HQ with a courses channel and a plain channel of v1's XML members ---
mkdir -p xml-src
(cd x1 && find . -name '*.xml' -type f -print0 | tar cf - --null -T -) | tar xf - -C xml-src
XML_FILES=$(find xml-src -type f | wc -l); XML_BYTES=$(fbytes xml-src)
$DISTCTL keygen --secret hq.key --public hq.pub >/dev/null
mkdir -p hq-state/sites center-state center-xml-state  # the centers' site keys, enrolled
$DISTCTL keygen --secret center-state/site.key --public hq-state/sites/center-01.pub >/dev/null
$DISTCTL keygen --secret center-xml-state/site.key --public hq-state/sites/center-02.pub >/dev/null
PORT=$(free_port); PPORT=$(free_port); CPORT=$(free_port)
hq_toml "$WORK/hq-state" "$WORK/hq.key" "$PORT" "" "courses=$WORK/hq-courses+link" "xml=$WORK/xml-src" > hq.toml
center_toml center-01 "$WORK/center-state" "http://127.0.0.1:$PPORT" "$WORK/hq.pub" "" "courses=$WORK/center-courses" \
  > center.toml
center_toml center-02 "$WORK/center-xml-state" "http://127.0.0.1:$PPORT" "$WORK/hq.pub" "" "xml=$WORK/center-xml" \
  > center-xml.toml

$DISTCTL publish-course "$V1" --config hq.toml --json > pub1.json 2>>distctl.log
$DISTCTL publish --channel xml --config hq.toml >/dev/null 2>>distctl.log
"$DISTD" --config hq.toml 2>distd.log & PIDS+=($!)
wait_port "$PORT"
"$FLAKY_PROXY" --listen "127.0.0.1:$PPORT" --upstream "127.0.0.1:$PORT" --control "$CPORT" --log proxy.log & PIDS+=($!)
wait_port "$PPORT"; wait_port "$CPORT"

# 1. the center syncs v1 (through the relay), writes its request for a stick, then v2 arrives.
read -r D0 U0 < <(proxy_stats)
$DISTCTL sync --config center.toml --json > sync1.json 2>>distctl.log
read -r D1 U1 < <(proxy_stats)
$DISTCTL bundle request --config center.toml --to "$WORK/stick-request" >/dev/null 2>>distctl.log
$DISTCTL publish-course "$V2" --config hq.toml --json > pub2.json 2>>distctl.log
LOG0=$(wc -l < distd.log)
$DISTCTL sync --config center.toml --json > sync2.json 2>>distctl.log
read -r D2 U2 < <(proxy_stats)
tail -n +$((LOG0 + 1)) distd.log > distd-update.log  # HQ's log of the update's requests
UPD_DOWN=$((D2 - D1)); UPD_UP=$((U2 - U1)); UPD=$((UPD_DOWN + UPD_UP))
S2_RECV=$(jget sync2.json 'j["channels"][0]["bytes_received"]'); S2_SENT=$(jget sync2.json 'j["channels"][0]["bytes_sent"]')
REBUILT=$(ls center-state/courses/*.mbz 2>/dev/null || echo none)
if cmp -s <(tar xzOf "$V2" | md5sum) <(tar xzOf "$REBUILT" | md5sum); then REB="the center rebuilt v2: same member bytes"; else REB="the center's rebuilt .mbz DIFFERS from v2"; fi

# 4. the stick for the same update.
if $DISTCTL bundle export --config hq.toml --to "$WORK/stick" --request "$WORK/stick-request/distd-request.txt" \
    --json > bundle.json 2> bundle.err; then
  STICK=$(fbytes stick)  # the files' bytes (du would add the directory's own 4 KiB)
else
  STICK_RC=$?; STICK=""
  STICK_PARTIAL=$(fbytes stick 2>/dev/null || echo 0)
fi

# 5. v1's XML members as new files, to a fresh center, through the relay.
read -r D3 U3 < <(proxy_stats)
LOG1=$(wc -l < distd.log)
$DISTCTL sync --config center-xml.toml --json > sync-xml.json 2>>distctl.log
read -r D4 U4 < <(proxy_stats)
tail -n +$((LOG1 + 1)) distd.log > distd-xml.log
XML_MANIFEST=$(sed -n 's/.*latest\.manifest" 200 \([0-9]*\) B.*/\1/p' distd-xml.log | head -1)
XML_DOWN=$((D4 - D3)); XML_UP=$((U4 - U3)); XML_D=$((XML_DOWN + XML_UP))
diff -r -x .distd-staging xml-src center-xml >/dev/null && XREB="same tree at the center" || XREB="the center's tree DIFFERS"

# 2 and 5 with rsync: a daemon on loopback.
RPORT=$(free_port)
mkdir -p rsync-src rsync-plain rsync-z rsync-xml-z rsync-xml-plain
cp "$V2" rsync-src/course.mbz
touch -d '+1 min' rsync-src/course.mbz
for d in rsync-plain rsync-z; do cp "$V1" $d/course.mbz; done  # what the center had
cat > rsyncd.conf <<EOT
use chroot = no
[m]
path = $WORK/rsync-src
read only = yes
[x]
path = $WORK/xml-src
read only = yes
EOT
rsync --daemon --no-detach --port "$RPORT" --config rsyncd.conf --address 127.0.0.1 & PIDS+=($!)
wait_port "$RPORT"
rsync -t --stats "rsync://127.0.0.1:$RPORT/m/course.mbz" rsync-plain/ > rsync-plain.stats
rsync -tz --stats "rsync://127.0.0.1:$RPORT/m/course.mbz" rsync-z/ > rsync-z.stats
cmp -s rsync-z/course.mbz "$V2" || say "rsync -z did not reproduce v2 (?)"
RS_P_DOWN=$(num "Total bytes received" rsync-plain.stats); RS_P_UP=$(num "Total bytes sent" rsync-plain.stats)
RS_Z_DOWN=$(num "Total bytes received" rsync-z.stats); RS_Z_UP=$(num "Total bytes sent" rsync-z.stats)
RS_P=$((RS_P_DOWN + RS_P_UP)); RS_Z=$((RS_Z_DOWN + RS_Z_UP))
rsync -rtz --stats "rsync://127.0.0.1:$RPORT/x/" rsync-xml-z/ > rsync-xml-z.stats
rsync -rt --stats "rsync://127.0.0.1:$RPORT/x/" rsync-xml-plain/ > rsync-xml-plain.stats
RX_Z_DOWN=$(num "Total bytes received" rsync-xml-z.stats); RX_Z_UP=$(num "Total bytes sent" rsync-xml-z.stats)
RX_P_DOWN=$(num "Total bytes received" rsync-xml-plain.stats); RX_P_UP=$(num "Total bytes sent" rsync-xml-plain.stats)
RX_Z=$((RX_Z_DOWN + RX_Z_UP)); RX_P=$((RX_P_DOWN + RX_P_UP))
tar cf xml.tar -C xml-src --sort=name .
zstd -19 -q -f xml.tar -o xml.tar.zst
XML_ZSTD=$(stat -c %s xml.tar.zst)

# --- the table ---
c2() { jget "$1" "$2"; }
say ""
say "course update v1 -> v2 ($V1_SIZE -> $V2_SIZE bytes .mbz; new+changed members $((B_NEW + B_CHG)) bytes, zstd -19 $ZSTD_CHG):"
say "  publish-course v2 (its summary): $(c2 pub2.json '", ".join("{} {} ({} B)".format(k, j[k]["files"], j[k]["bytes"]) for k in ("new", "changed", "unchanged", "removed"))')"
say "  first sync (v1, whole course) : $((D1 - D0)) bytes down, $((U1 - U0)) up (the .mbz is $V1_SIZE)"
say "  distd update, relay           : $UPD_DOWN bytes down, $UPD_UP up, $UPD total"
say "  distd update, sync --json     : bytes_received $S2_RECV, bytes_sent $S2_SENT; files: $(c2 sync2.json '", ".join("{} {}".format(k, j["channels"][0][k]) for k in ("unchanged","copied","delta","full","deleted","delta_fallbacks"))')"
say "  $REB"
say "  rsync (plain) of the .mbz     : $RS_P_DOWN bytes down, $RS_P_UP up, $RS_P total"
say "  rsync -z of the .mbz          : $RS_Z_DOWN bytes down, $RS_Z_UP up, $RS_Z total"
say "  zstd -19 of new+changed       : $ZSTD_CHG bytes"
if [ -n "$STICK" ]; then
  say "  stick (bundle export)         : $STICK bytes in $(ls stick | wc -l) files ($(ls stick | tr '\n' ' '))"
else
  say "  stick (bundle export)         : FAILED (exit $STICK_RC; ${STICK_PARTIAL:-0} bytes of incomplete files left): $(grep -v '^distctl: request from' bundle.err | tr '\n' ' ')"
fi
R1=$(ratio3 "$UPD" "$ZSTD_CHG"); R2=$(ratio3 "$UPD" "$RS_Z")
R1D=$(ratio "$UPD_DOWN" "$ZSTD_CHG"); R2D=$(ratio "$UPD_DOWN" "$RS_Z_DOWN")
say "  distd / zstd(new+changed)     : $R1 total, $R1D down only (goal <= 1.1: $(goal "$R1" 1.1))"
say "  distd / rsync -z              : $R2 total, $R2D down only (goal <= 0.1: $(goal "$R2" 0.1))"
say "  distd / rsync (plain)         : $(ratio "$UPD" "$RS_P")"
[ -n "$STICK" ] && say "  stick / zstd(new+changed)     : $(ratio3 "$STICK" "$ZSTD_CHG") (the link's goal is <= 1.1: $(goal "$(ratio3 "$STICK" "$ZSTD_CHG")" 1.1))"
UPD_MAN=$(sed -n 's/.*latest\.manifest" 200 \([0-9]*\) B.*/\1/p' distd-update.log | head -1)
UPD_GETS=$(sed -n 's/.*"GET \/\(objects\|deltas\)\/.* 200 \([0-9]*\) B.*/\2/p' distd-update.log | awk '{s+=$1} END {print s+0}')
say "    of which                    : manifest (as a delta) ${UPD_MAN:-?} B; single GETs (a delta or an object over 64 KiB: course.json) $UPD_GETS B; the rest, $((UPD_DOWN - ${UPD_MAN:-0} - UPD_GETS)) B, is the zstd batches of whole members and HTTP"
say "    for comparison              : zstd -19 of each new/changed member alone, summed: $ZSTD_EACH B (the tar of them: $ZSTD_CHG)"
say "  HQ's log of the update (requests through the relay; POST /objects streams, its size is not logged):"
sed -n 's/^distd: 127\.0\.0\.1 /    /p' distd-update.log
say ""
say "v1's XML members as new files ($XML_FILES files, $XML_BYTES bytes; zstd -19 of their tar $XML_ZSTD):"
say "  distd, fresh center, relay    : $XML_DOWN bytes down, $XML_UP up, $XML_D total ($XREB)"
say "  rsync -z -r into an empty dir : $RX_Z_DOWN bytes down, $RX_Z_UP up, $RX_Z total"
say "  rsync -r (plain)              : $RX_P_DOWN bytes down, $RX_P_UP up, $RX_P total"
R5=$(ratio3 "$XML_D" "$RX_Z")
say "    of which the signed manifest : ${XML_MANIFEST:-?} bytes (GET latest.manifest); the rest (files, one zstd batch, HTTP): $((XML_DOWN - ${XML_MANIFEST:-0})) bytes down"
say "  distd / rsync -z              : $R5 total, $(ratio "$XML_DOWN" "$RX_Z_DOWN") down only (goal <= 0.8: $(goal "$R5" 0.8))"
say "  distd / zstd -19 tar          : $(ratio "$XML_D" "$XML_ZSTD")"
say ""
say "total run time: $(python3 -c "import time; print(f'{time.time()-$T_START:.0f}')") s"
exit 0
