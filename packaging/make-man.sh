#!/bin/sh
# Makes the man pages, the bash completion and changelog.Debian.gz of the package from the
# binaries being installed (run by packaging/cpack.cmake's install step), so they match them:
#   distctl.1      help2man of distctl --help, with every subcommand's --help (cli_walk.py)
#   distd.8        help2man of distd --help
#   distd.toml.5   docs/config.md converted by md2man.py
#   changelog.Debian.gz, and the bash completion (cli_walk.py)
# Usage: make-man.sh DISTD DISTCTL PACKAGING_DIR OUT_DIR VERSION DEBIAN_REVISION
set -eu
distd=$1 distctl=$2 pkg=$3 out=$4 version=$5 revision=$6
src=$pkg/..
command -v help2man >/dev/null || { echo "make-man.sh: help2man is missing: apt-get install help2man" >&2; exit 1; }
mkdir -p "$out/man"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 "$pkg/cli_walk.py" roff "$distctl" > "$tmp/distctl.h2m"
help2man --no-info --section=1 --version-string="$version" --include="$tmp/distctl.h2m" \
  --name="operate distd: keys, manifests, publish, sync, status, USB bundles, forum posts" \
  "$distctl" > "$tmp/distctl.1"

cat > "$tmp/distd.h2m" <<'H2M'
[FILES]
/etc/distd/distd.toml (see \fBdistd.toml\fR(5)); /var/lib/distd (state).
.br
Units: distd.service (the daemon), distd-sync.timer and distd-sync.service (a nightly sync of a
center), distd-stick-import.service and media-distd.mount (a USB stick labelled DISTD, started by
the udev rule 90-distd-stick.rules).
[SEE ALSO]
\fBdistctl\fR(1), \fBdistd.toml\fR(5), /usr/share/doc/distd/hq.md, /usr/share/doc/distd/regional.md,
/usr/share/doc/distd/packaging.md
H2M
help2man --no-info --section=8 --version-string="$version" --include="$tmp/distd.h2m" \
  --name="offline-capable distributor of Moodle files and courses (HQ or regional center)" \
  "$distd" > "$tmp/distd.8"

python3 "$pkg/md2man.py" "$src/docs/config.md" "$version" > "$tmp/distd.toml.5"

for page in distctl.1 distd.8 distd.toml.5; do
  gzip -9n < "$tmp/$page" > "$out/man/$page.gz"
done
python3 "$pkg/cli_walk.py" bash "$distctl" > "$out/distctl.bash-completion"
# The package's changelog: one entry for this version, dated by $SOURCE_DATE_EPOCH if set.
when=$(LC_ALL=C date -u -R ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"})
cat > "$tmp/changelog.Debian" <<CHANGELOG
distd ($version-$revision) unstable; urgency=medium

  * Package of distd $version, built with CPack from the project's build tree
    (packaging/cpack.cmake, /usr/share/doc/distd/packaging.md).

 -- distd maintainers <maintainers@users.noreply.r-seed-f1c987f3.example>  $when
CHANGELOG
gzip -9n < "$tmp/changelog.Debian" > "$out/changelog.Debian.gz"
