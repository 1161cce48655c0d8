#!/usr/bin/env bash
# Compression (docs/formats/compression.md), on loopback, peers in the same run on the same data:
#   throughput  a compressible TPUT_MIB (1024) MiB object: distctl sync (fetches the stored zstd
#               form, decodes, verifies, fsyncs) vs curl+fsync of the stored form and of the
#               object; peak RSS of distctl sync (goal <= 64 MiB); goal >= 0.8x curl+fsync.
#   cost        publish of MIXED_MIB (2048) MiB of mixed moodledata-like files (30% text, 70%
#               media) at [hq] compression_level 19 vs `zstd -19 -T0` of the same files, and vs
#               the same publish with compression_level = 0. COST_EACH=0 skips zstd file by file.
#   bench/bench_compression.sh [throughput] [cost]      BUILD=build, BENCH_DIR keeps the data
source "$(dirname "$0")/lib.sh"
TPUT_MIB=${TPUT_MIB:-1024}
MIXED_MIB=${MIXED_MIB:-2048}
PARTS=${*:-throughput cost}

# text_file PATH MIB: MIB MiB of text that compresses about 4x at zstd -19 (a 16 MiB block of
# generated XML-like lines, repeated: the repeats are farther apart than zstd's 8 MiB window).
text_file() {
  python3 - "$@" <<'PY'
import os, random, sys
path, mib = sys.argv[1], int(sys.argv[2])
os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
rng = random.Random(path)
words = ["activity", "section", "course", "forum", "grade", "user", "module", "files", "discussion",
         "post", "quiz", "attempt", "question", "resource", "folder", "page", "label", "assign"]
lines = []
n = 0
while n < (16 << 20):
    w = rng.choice(words)
    line = f'  <{w} id="{rng.randrange(1000000)}" time="{1700000000 + rng.randrange(10**7)}">{rng.choice(words)} {rng.randrange(10**6)}</{w}>\n'
    lines.append(line); n += len(line)
block = "".join(lines).encode()[: 16 << 20]
with open(path, "wb") as f:
    left = mib << 20
    while left > 0:
        f.write(block[: min(left, len(block))]); left -= min(left, len(block))
PY
}

hq_site() {  # hq_site DIR LEVEL: an HQ config with channel c at DIR/src (not started)
  local d=$1
  mkdir -p "$d/src" "$d/hq-state/sites"
  [ -f "$d/hq.key" ] || "$DISTCTL" keygen --secret "$d/hq.key" --public "$d/hq.pub" >/dev/null
  [ -f "$d/site.key" ] || "$DISTCTL" keygen --secret "$d/site.key" --public "$d/hq-state/sites/center-1.pub" >/dev/null
  PORT=$(free_port)
  hq_toml "$d/hq-state" "$d/hq.key" "$PORT" "public_key = \"$d/hq.pub\"
compression_level = $2" "c=$d/src" > "$d/hq.toml"
  center_toml center-1 "$d/center-state" "http://127.0.0.1:$PORT" "$d/hq.pub" "site_secret_key = \"$d/site.key\"" \
    "c=$d/dst" > "$d/center.toml"
}

bench_throughput() {
  say ""
  say "== A compressible $TPUT_MIB MiB object over loopback: distctl sync vs curl -o + fsync (best of 3)"
  local d=$WORK/tput
  rm -rf "$d"; hq_site "$d" 19
  text_file "$d/src/backup.xml" "$TPUT_MIB"
  local tp=$(best_of 1 "$DISTCTL" publish --channel c --config "$d/hq.toml")
  "$BUILD/distd" --config "$d/hq.toml" >"$d/hqd.log" 2>&1 &
  PIDS+=($!)
  wait_port "$PORT"
  local hex=$(b2sum -l 256 "$d/src/backup.xml" | cut -c1-64)
  local obj="$d/hq-state/public/objects/${hex:0:2}/$hex"
  local url="http://127.0.0.1:$PORT/objects/${hex:0:2}/$hex"
  local zs=$(stat -c %s "$obj.zst")
  say "object $(human $((TPUT_MIB << 20))), stored form $(human "$zs") ($(ratio $((TPUT_MIB << 20)) "$zs"):1); publish took $tp s"
  cat "$obj" "$obj.zst" >/dev/null
  local fsync_py="import os,sys; f=os.open(sys.argv[1], os.O_RDONLY); os.fsync(f)"
  local tcz tcr td rss
  tcz=$(best_of_setup 3 "rm -f '$d/curl.out'; sync" sh -c "curl -s -f -o '$d/curl.out' '$url.zst' && python3 -c '$fsync_py' '$d/curl.out'")
  tcr=$(best_of_setup 3 "rm -f '$d/curl.out'; sync" sh -c "curl -s -f -o '$d/curl.out' '$url' && python3 -c '$fsync_py' '$d/curl.out'")
  rm -f "$d/curl.out"
  td=$(best_of_setup 3 "rm -rf '$d/dst' '$d/center-state'; sync" "$DISTCTL" sync --config "$d/center.toml" --json)
  cmp -s "$d/src/backup.xml" "$d/dst/backup.xml" || { say "MISMATCH"; exit 1; }
  rm -rf "$d/dst" "$d/center-state"; sync
  rss=$(peak_rss_mib "$DISTCTL" sync --config "$d/center.toml" --json)
  say "curl -o of the stored form + fsync: ${tcz} s"
  say "curl -o of the object + fsync:      ${tcr} s  $(python3 -c "print(f'{$TPUT_MIB/$tcr:.0f}')") MiB/s"
  say "distctl sync (form, decode, verify, fsync): ${td} s  $(python3 -c "print(f'{$TPUT_MIB/$td:.0f}')") MiB/s of content"
  say "  throughput vs curl+fsync of the stored form $(ratio "$tcz" "$td"), of the object $(ratio "$tcr" "$td") (goal >= 0.80)"
  say "  peak RSS of distctl sync: $rss MiB (goal <= 64)"
  cleanup; PIDS=()
}

bench_cost() {
  say ""
  say "== Compression cost at HQ: publish of $MIXED_MIB MiB of mixed files vs zstd -19 -T0 of the same files"
  local d=$WORK/cost
  rm -rf "$d"; hq_site "$d" 19
  local text_mib=$((MIXED_MIB * 3 / 10)) media_mib=$((MIXED_MIB - MIXED_MIB * 3 / 10))
  # Text: files of 64 KiB .. 32 MiB; media: random files of 256 KiB .. 64 MiB (like moodledata's
  # PDFs, images and videos).
  python3 - "$d/src" "$text_mib" "$media_mib" <<'PY'
import hashlib, os, random, sys
root, text_mib, media_mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
words = [b"forum", b"post", b"grade", b"quiz", b"course", b"section", b"user", b"module", b"files"]
chunk = b"".join(b'<%s id="%d">%s %d</%s>\n' % (w, rng.randrange(10**6), rng.choice(words), rng.randrange(10**6), w)
                 for w in (rng.choice(words) for _ in range(400000)))
def put(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f: f.write(data)
left, i = text_mib << 20, 0
while left > 0:
    n = min(left, rng.choice([64 << 10, 512 << 10, 4 << 20, 32 << 20]))
    off = rng.randrange(len(chunk) - 1)
    data = (chunk[off:] + chunk)[:n] if n <= len(chunk) else (chunk * (n // len(chunk) + 1))[:n]
    put(f"{root}/filedir/t{i % 97:02d}/text{i}", data); left -= n; i += 1
left, i = media_mib << 20, 0
while left > 0:
    n = min(left, rng.choice([256 << 10, 2 << 20, 16 << 20, 64 << 20]))
    key = hashlib.sha256(b"%d" % i).digest()
    data = b"".join(hashlib.shake_256(key + j.to_bytes(4, "little")).digest(1 << 20) for j in range((n >> 20) + 1))[:n]
    put(f"{root}/filedir/m{i % 97:02d}/media{i}", data); left -= n; i += 1
PY
  local files=$(find "$d/src" -type f | wc -l)
  sync
  cat $(find "$d/src" -type f) >/dev/null
  # distd first, each figure printed as it is measured (a long run stopped early keeps them).
  say "$files files, $MIXED_MIB MiB ($text_mib MiB text, $media_mib MiB media)"
  local tp=$(best_of 1 "$DISTCTL" publish --channel c --config "$d/hq.toml")
  local forms=$(find "$d/hq-state/public/objects" -name '*.zst' | wc -l)
  local zbytes=$(find "$d/hq-state/public/objects" -name '*.zst' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
  say "distctl publish, compression_level 19:  ${tp} s ($forms stored forms, $(human "$zbytes"))"
  rm -rf "$d/hq-state/public" "$d/hq-state/statcache"
  sed -i 's/^compression_level = 19/compression_level = 0/' "$d/hq.toml"
  local tp0=$(best_of 1 "$DISTCTL" publish --channel c --config "$d/hq.toml")
  say "distctl publish, compression_level 0:   ${tp0} s"
  local tz=$(best_of 1 sh -c "find '$d/src' -type f -print0 | xargs -0 cat | zstd -19 -T0 -q -c > /dev/null")
  say "zstd -19 -T0 of all of it, one stream:  ${tz} s"
  local each=""
  if [ "${COST_EACH:-1}" = 1 ]; then  # COST_EACH=0 skips it (a 10 GB run is then about an hour shorter)
    local tz_each=$(best_of 1 sh -c "find '$d/src' -type f -exec zstd -19 -T0 -q -c {} + > /dev/null")
    say "zstd -19 -T0 file by file:              ${tz_each} s"
    each=", $(ratio "$tp" "$tz_each") (file by file)"
  fi
  say "  publish at 19 / zstd -19 -T0: $(ratio "$tp" "$tz") (one stream)$each; compression's share: $(ratio "$(python3 -c "print($tp-$tp0)")" "$tp")"
}

say "load: $(uptime)"
for p in $PARTS; do "bench_$p"; done
say ""
say "load: $(uptime)"
say "data kept in $WORK (remove it when done)"
