#!/usr/bin/env bash
# ctest `package`: builds the Debian package from the build tree (cpack, no second compile),
# installs it with dpkg as an admin would, checks what it installed (binaries, the distd user,
# units that `systemd-analyze verify` accepts, example configs that `distd --check-config`
# accepts, man pages without groff warnings, the bash completion, lintian when installed), then
# removes and purges it and checks nothing of it is left. Runs as root (the suite does).
# Usage: test_package.sh BUILD_DIR. Exit 77 (skipped) only when dpkg is missing.
set -euo pipefail
build=$(cd "${1:?usage: test_package.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)

if ! command -v dpkg >/dev/null || ! command -v dpkg-deb >/dev/null; then
  echo "SKIP: dpkg is not installed: this test builds and installs a .deb"
  exit 77
fi
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
now() { date +%s.%N; }
# dpkg knows distd as installed, or removed with its config files left
known() { dpkg-query -W -f='${Status}' distd 2>/dev/null | grep -qE ' (installed|config-files)$'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (dpkg -i); the suite runs as root"
# Never touch an admin's install: the test removes and purges what it installed.
if known; then
  fail "a distd package is already installed here; remove it first (dpkg -P distd)"
fi
for d in /etc/distd /var/lib/distd; do
  [ ! -e "$d" ] || fail "$d exists without the package; purging would delete it: move it away first"
done

tmp=$(mktemp -d /tmp/distd-package.XXXXXX)
installed=0 links=()
cleanup() {
  if [ "$installed" = 1 ]; then dpkg -P distd >/dev/null 2>&1 || true; fi
  for l in "${links[@]}"; do rm -f "$l"; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

step "cpack -G DEB (from the built tree)"
t0=$(now)
(cd "$build" && cpack -G DEB -B "$tmp/out" >"$tmp/cpack.log" 2>&1) || { cat "$tmp/cpack.log"; fail "cpack failed"; }
t1=$(now)
deb=$(ls "$tmp"/out/distd_*.deb)
echo "package: $(basename "$deb"), $(stat -c %s "$deb") bytes, built in $(secs "$t0" "$t1") s"

step "control: Depends computed by dpkg-shlibdeps"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for lib in libc6 libsodium libarchive librsync libcurl libsystemd0 libstdc++6; do
  [[ $depends == *"$lib"* ]] || fail "Depends lacks $lib: dpkg-shlibdeps did not run"
done

if command -v lintian >/dev/null; then
  step "lintian (errors and warnings fail; packaging/lintian-overrides holds the justified ones)"
  lintian --fail-on error,warning --info "$deb" | tee "$tmp/lintian.log" || fail "lintian: see above"
else
  echo "lintian is not installed: not run (apt-get install lintian)"
fi

step "dpkg -i"
t0=$(now)
installed=1
if ! DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -f -y -qq >>"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -i"; }
fi
t1=$(now)
echo "installed in $(secs "$t0" "$t1") s"
dpkg -L distd | sort >"$tmp/files"
# The package's files (not its directories, which other packages share: /lib, /usr/share/man/...).
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort >"$tmp/shipped"
[ -s "$tmp/shipped" ] || fail "dpkg-deb -c lists no files"
comm -23 "$tmp/shipped" "$tmp/files" | grep . && fail "dpkg -L lacks the files above"
while read -r f; do [ -f "$f" ] || fail "$f is in the package but not installed"; done <"$tmp/shipped"

step "binaries, the distd user, the directories"
[[ $(/usr/bin/distd --help) == *--check-config* ]] || fail "/usr/bin/distd --help"
[[ $(/usr/bin/distctl --version) == *[0-9]* ]] || fail "/usr/bin/distctl --version"
getent passwd distd >/dev/null || fail "no distd user after install"
uid=$(getent passwd distd | cut -d: -f3)
[ "$(getent passwd distd | cut -d: -f6)" = /var/lib/distd ] || fail "distd's home is not /var/lib/distd"
getent group distd >/dev/null || fail "no distd group after install"
[ "$(stat -c %U:%G:%a /var/lib/distd)" = distd:distd:755 ] || fail "/var/lib/distd: $(stat -c %U:%G:%a /var/lib/distd)"
[ "$(stat -c %U:%G:%a /etc/distd)" = root:distd:750 ] || fail "/etc/distd: $(stat -c %U:%G:%a /etc/distd)"

units=(/lib/systemd/system/distd.service /lib/systemd/system/distd-sync.service
       /lib/systemd/system/distd-sync.timer /lib/systemd/system/distd-stick-import.service
       /lib/systemd/system/media-distd.mount)
for f in "${units[@]}" /lib/udev/rules.d/90-distd-stick.rules /usr/lib/sysusers.d/distd.conf \
         /usr/lib/tmpfiles.d/distd.conf /usr/share/doc/distd/examples/hq.toml \
         /usr/share/doc/distd/examples/center.toml /usr/share/doc/distd/copyright \
         /usr/share/doc/distd/changelog.Debian.gz /usr/share/bash-completion/completions/distctl \
         /usr/share/man/man1/distctl.1.gz /usr/share/man/man8/distd.8.gz /usr/share/man/man5/distd.toml.5.gz; do
  grep -qx "$f" "$tmp/files" || fail "$f is not in the package (dpkg -L distd)"
  [ -f "$f" ] || fail "$f was not installed"
done
# Every unit in systemd/ is installed, and what the units name is there.
for u in "$src"/systemd/*.{service,timer,mount,path,socket}; do
  [ -e "$u" ] || continue
  [ -f "/lib/systemd/system/$(basename "$u")" ] || fail "unit $(basename "$u") not installed"
done
for u in "${units[@]}"; do
  for doc in $(sed -n 's/^Documentation=//p' "$u"); do
    [ -f "${doc#file:}" ] || fail "$u: Documentation=$doc is not installed"
  done
  for exe in $(sed -n 's/^ExecStart=[-+!@]*\([^ ]*\).*/\1/p' "$u"); do
    [ -x "$exe" ] || fail "$u: ExecStart $exe is not installed"
  done
done

# Linked with -z now, stripped of .comment (docs/packaging.md, lintian).
if command -v readelf >/dev/null; then
  for exe in /usr/bin/distd /usr/bin/distctl; do
    readelf -d "$exe" | grep -q BIND_NOW || fail "$exe is not linked with -z now"
    if readelf -S "$exe" | grep -qE '\.comment|\.debug_info'; then fail "$exe is not stripped"; fi
  done
fi

step "systemd-analyze verify on the installed units"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify --man=no "${units[@]}" >"$tmp/verify.log" 2>&1 || { cat "$tmp/verify.log"; fail "systemd-analyze verify"; }
  if grep -i "distd" "$tmp/verify.log"; then fail "systemd-analyze verify warned about distd's units"; fi
else
  echo "systemd-analyze is not installed: not run"
fi

step "distd --check-config on the example configs (keys from distctl keygen)"
mkdir -p "$tmp/keys"
/usr/bin/distctl keygen --secret "$tmp/keys/hq.key" --public "$tmp/keys/hq.pub" >/dev/null
for ex in hq center; do
  sed "/^[^#]/ { s|/etc/distd/hq\.key|$tmp/keys/hq.key|; s|/etc/distd/hq\.pub|$tmp/keys/hq.pub|; }" \
    "/usr/share/doc/distd/examples/$ex.toml" >"$tmp/$ex.toml"
  out=$(/usr/bin/distd --check-config --config "$tmp/$ex.toml") || fail "distd --check-config $ex.toml"
  echo "$out"
  [[ $out == *": OK (role "* ]] || fail "$ex.toml: $out"
done
# Only the key paths were changed: the copy differs from the example in those lines alone.
[ "$(diff "/usr/share/doc/distd/examples/hq.toml" "$tmp/hq.toml" | grep -c '^>')" = 2 ] || fail "hq.toml copy"

step "man pages: no warnings from man or groff; distctl(1) has every subcommand"
for page in /usr/share/man/man1/distctl.1.gz /usr/share/man/man8/distd.8.gz /usr/share/man/man5/distd.toml.5.gz; do
  warn=$(zcat "$page" | LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z 2>&1)
  [ -z "$warn" ] || fail "groff warns on $page: $warn"
  if command -v man >/dev/null; then
    warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
    [ -z "$warn" ] || fail "man warns on $page: $warn"
  fi
done
text=$(zcat /usr/share/man/man1/distctl.1.gz | LC_ALL=C.UTF-8 groff -man -Tutf8 2>/dev/null | sed 's/.\x08//g')
for cmd in "keygen" "key rotate" "manifest build" "manifest verify" "publish" "publish-course" "sync" "status" \
           "bundle export" "bundle auto-import" "post submit" "replica profile"; do
  [[ $text == *"distctl $cmd"* ]] || fail "distctl(1) does not describe 'distctl $cmd'"
done

step "bash completion"
complete_words() {
  bash -c 'source /usr/share/bash-completion/completions/distctl; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _distctl; echo "${COMPREPLY[*]}"' _ "$@"
}
[ "$(complete_words distctl manif)" = manifest ] || fail "completion of 'distctl manif': $(complete_words distctl manif)"
[ "$(complete_words distctl manifest bu)" = build ] || fail "completion of 'distctl manifest bu'"
[[ " $(complete_words distctl sync --)" == *" --config "* ]] || fail "completion of 'distctl sync --'"

step "dpkg -i again (postinst configure with the replaced version, as an upgrade): config and state stay"
echo "secret" >/etc/distd/hq.key
echo "state" >/var/lib/distd/journal
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -i (again)"; }
[ "$(cat /etc/distd/hq.key)" = secret ] && [ "$(cat /var/lib/distd/journal)" = state ] || fail "reinstall touched /etc/distd or /var/lib/distd"
[ "$(getent passwd distd | cut -d: -f3)" = "$uid" ] || fail "reinstall changed distd's uid"

step "dpkg -r: the package's files go, /etc/distd and /var/lib/distd stay"
# As an admin would (docs/packaging.md); purge removes these links. systemctl works offline.
if command -v systemctl >/dev/null && systemctl enable distd.service distd-sync.timer >/dev/null 2>&1; then
  links=(/etc/systemd/system/multi-user.target.wants/distd.service /etc/systemd/system/timers.target.wants/distd-sync.timer)
  for l in "${links[@]}"; do [ -L "$l" ] || fail "systemctl enable made no $l"; done
fi
dpkg -r distd >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -r"; }
while read -r f; do
  if [ -e "$f" ] || [ -L "$f" ]; then fail "$f is left after dpkg -r"; fi
done <"$tmp/shipped"
[ -f /etc/distd/hq.key ] || fail "dpkg -r deleted the admin's /etc/distd/hq.key"
[ -f /var/lib/distd/journal ] || fail "dpkg -r deleted /var/lib/distd"

step "dpkg -P: /etc/distd and /var/lib/distd go too"
dpkg -P distd >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -P"; }
installed=0
for d in /etc/distd /var/lib/distd; do [ ! -e "$d" ] || fail "$d is left after dpkg -P"; done
for l in "${links[@]}"; do if [ -L "$l" ]; then fail "enablement link $l is left after dpkg -P"; fi; done
if known; then fail "dpkg still lists distd"; fi
while read -r f; do
  if [ -e "$f" ] || [ -L "$f" ]; then fail "$f is left after dpkg -P"; fi
done <"$tmp/shipped"
echo "PASS"
