#!/usr/bin/env bash
# Course backups: (1) re-publishing a ~100 MiB .mbz in which one 1 MiB file changed — bytes over
# the link with distd (publish-course + distctl sync) vs rsync of the .mbz file (rsync daemon on
# loopback, --stats); goal <= 10% of rsync. (3) moodledata synced after its course (dedupe across
# channels) vs rsync -z of the tree. (2) publish-course of a ~1 GiB backup vs `tar tzf`
# of it; goal within 2x.
#   BUILD=build-xyz bench/bench_course.sh     (BENCH_BIG_FILES=N for the big backup's 1 MiB files)
source "$(dirname "$0")/lib.sh"
BUILD=$(cd "$BUILD" && pwd)  # BUILD=build-xyz works from the source root (the script cd's away)
DISTCTL=$BUILD/distctl
MAKE_MBZ="python3 $BENCH_ROOT/tests/support/make_mbz.py"
DISTD=$BUILD/distd

cd "$WORK"
say "work dir: $WORK"
$DISTCTL keygen --secret hq.key --public hq.pub >/dev/null
mkdir -p hq-state/sites center-state  # the center's site key, enrolled (deltas are for enrolled sites)
$DISTCTL keygen --secret center-state/site.key --public hq-state/sites/center-01.pub >/dev/null
PORT=$(free_port)
hq_toml "$WORK/hq-state" "$WORK/hq.key" "$PORT" "" "courses=$WORK/hq-courses+link" > hq.toml
center_toml center-01 "$WORK/center-state" "http://127.0.0.1:$PORT" "$WORK/hq.pub" "" "courses=$WORK/center-courses" \
  > center.toml

# 1. ~100 MiB backup (140 files of ~1 MiB, half text-like, half media), then one file changed.
$MAKE_MBZ v1.mbz --files 140 --file-size 1048576 --text
$MAKE_MBZ v2.mbz --files 140 --file-size 1048576 --text --version 2
say "backup: $(stat -c %s v1.mbz) bytes (v1), $(stat -c %s v2.mbz) bytes (v2); file 0 (1 MiB, text) changed"
$DISTCTL publish-course v1.mbz --config hq.toml >/dev/null
"$DISTD" --config hq.toml 2>distd.log & PIDS+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
$DISTCTL sync --config center.toml --json > sync1.json
$DISTCTL publish-course v2.mbz --config hq.toml >/dev/null
$DISTCTL sync --config center.toml --json > sync2.json
DISTD_RECV=$(python3 -c 'import json,sys; c=json.load(open("sync2.json"))["channels"][0]; print(c["bytes_received"]+c["bytes_sent"])')
cmp <(tar xzOf v2.mbz | md5sum) <(tar xzOf center-state/courses/BIO101.mbz | md5sum) && say "rebuilt v2 at the center: same member bytes"

# rsync daemon on loopback, the same two files.
RPORT=$(free_port)
mkdir -p rsync-src rsync-dst
cp v1.mbz rsync-src/course.mbz
cat > rsyncd.conf <<EOT
use chroot = no
[m]
path = $WORK/rsync-src
read only = yes
EOT
rsync --daemon --no-detach --port "$RPORT" --config rsyncd.conf --address 127.0.0.1 & PIDS+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$RPORT) 2>/dev/null && break; sleep 0.1; done
rsync -t "rsync://127.0.0.1:$RPORT/m/course.mbz" rsync-dst/ >/dev/null
cp v2.mbz rsync-src/course.mbz
touch -d '+1 min' rsync-src/course.mbz
rsync -t --stats "rsync://127.0.0.1:$RPORT/m/course.mbz" rsync-dst/ > rsync.stats
RSYNC_BYTES=$(python3 -c '
import re,sys
t=open("rsync.stats").read()
num=lambda k: int(re.search(k+r": ([\d,]+)",t).group(1).replace(",",""))
print(num("Total bytes sent")+num("Total bytes received"))')
say ""
say "re-publish, one 1 MiB file changed in a $(( $(stat -c %s v2.mbz) / 1048576 )) MiB backup:"
say "  distd  : $DISTD_RECV bytes over the link"
say "  rsync  : $RSYNC_BYTES bytes over the link"
say "  ratio  : $(ratio "$DISTD_RECV" "$RSYNC_BYTES") (goal <= 0.10)"

# 3. moodledata after its course arrived: HQ's filedir holds the course's files (the same bytes
#    as the backup's files/<sha1> members) and a few others; the center, which has the course,
#    fetches only those others (dedupe across channels). Peer: rsync -z of the same tree.
python3 - v2.mbz hq-moodledata/filedir <<'PY'
import hashlib, os, random, sys, tarfile
out = sys.argv[2]
def put(data):
    h = hashlib.sha1(data).hexdigest()
    d = os.path.join(out, h[:2], h[2:4]); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, h), "wb").write(data)
with tarfile.open(sys.argv[1]) as t:
    for m in t.getmembers():
        if m.isfile() and m.name.startswith("files/"): put(t.extractfile(m).read())
rnd = random.Random(5)
for i in range(2): put(rnd.randbytes(1 << 20))  # files no course holds
PY
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true; PIDS=("${PIDS[@]:1}")
printf '[[channel]]\nname = "moodledata"\npath = "%s/hq-moodledata"\npreset = "moodledata"\n' "$WORK" >> hq.toml
printf '[[channel]]\nname = "moodledata"\npath = "%s/center-moodledata"\npreset = "moodledata"\n' "$WORK" >> center.toml
$DISTCTL publish --channel moodledata --config hq.toml >/dev/null
"$DISTD" --config hq.toml 2>>distd.log & PIDS+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
$DISTCTL sync --config center.toml --channel moodledata --json > sync3.json
read -r MD_WIRE MD_COPIED < <(python3 -c 'import json; c=json.load(open("sync3.json"))["channels"][0]; print(c["bytes_received"]+c["bytes_sent"], c["copied"])')
MD_BYTES=$(du -sb --apparent-size hq-moodledata | cut -f1)
mkdir -p rsync-md
rsync -az --stats "$WORK/hq-moodledata/" rsync-md/ > rsync-md.stats
RSYNC_MD=$(python3 -c '
import re
t=open("rsync-md.stats").read()
num=lambda k: int(re.search(k+r": ([\d,]+)",t).group(1).replace(",",""))
print(num("Total bytes sent")+num("Total bytes received"))')
say ""
say "moodledata ($MD_BYTES bytes, $(find hq-moodledata -type f | wc -l) files) after its course arrived:"
say "  distd    : $MD_WIRE bytes over the link, $MD_COPIED files copied from the courses channel"
say "  rsync -z : $RSYNC_MD bytes (local, the whole tree)"
OTHER=$((2 * 1048576))  # the two files no course holds: they must travel
say "  distd / moodledata bytes: $(ratio "$MD_WIRE" "$MD_BYTES") (the 2 files in no course are $OTHER bytes)"
say "  beyond those, for the $(( $(find hq-moodledata -type f | wc -l) - 2 )) files the course holds: $(python3 -c "print(f'{($MD_WIRE-$OTHER)/($MD_BYTES-$OTHER):.4f}')") of their bytes (goal <= 0.01)"

# 2. Publish time of a ~1 GiB backup vs tar tzf.
N=${BENCH_BIG_FILES:-1024}
$MAKE_MBZ big.mbz --shortname BIG1 --course-id 9 --files "$N" --file-size 1048576 --text
sync
cat big.mbz > /dev/null
TAR_T=$(best_of 1 tar tzf big.mbz)
T0=$(date +%s.%N)
$DISTCTL publish-course big.mbz --config hq.toml > big.out
T1=$(date +%s.%N)
PUB_T=$(python3 -c "print(f'{$T1-$T0:.3f}')")
T0=$(date +%s.%N)
$DISTCTL publish-course big.mbz --config hq.toml --force > big2.out
T1=$(date +%s.%N)
REPUB_T=$(python3 -c "print(f'{$T1-$T0:.3f}')")
say ""
say "publish a $(( $(stat -c %s big.mbz) / 1048576 )) MiB backup ($N files):"
say "  tar tzf            : ${TAR_T} s"
say "  publish-course     : ${PUB_T} s  (ratio $(ratio "$PUB_T" "$TAR_T"), goal <= 2)"
say "  same backup again  : ${REPUB_T} s  (ratio $(ratio "$REPUB_T" "$TAR_T"); members unchanged, nothing rehashed by the scan)"
