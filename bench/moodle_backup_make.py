"""Helper of bench/bench_moodle_backup.sh: two real backups of one course from a real Moodle 4.5.

Starts HQ's Moodle from the test fixture (tests/support/moodle_fixture.py: the template is made
once under MOODLE_BUILD/moodle-fixture, about a minute), makes a course with Moodle's own course
generator (admin/tool/generator/cli/maketestcourse.php) plus a folder of text handouts and a
discussion forum (bench/moodle_backup_edit.php --step=setup), backs it up with
admin/cli/backup.php (v1), lets a teacher edit it (--step=edit), backs it up again (v2), and
stops Moodle. Prints one JSON object: the two .mbz paths, the course id, what the edit did and
the time each step took.

  python3 bench/moodle_backup_make.py MOODLE_BUILD OUT_DIR [--size XS|S|M]
"""
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "support"))
import moodle_fixture as mf  # noqa: E402

mf.log = lambda msg: print(f"[moodle-fixture] {msg}", file=sys.stderr, flush=True)  # stdout: the JSON


def main():
    args = sys.argv[1:]
    size = "S"
    if "--size" in args:
        i = args.index("--size")
        size = args[i + 1]
        del args[i:i + 2]
    build, out = Path(args[0]), Path(args[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    times = {}
    t = time.time()
    w = mf.World(build, tag="bench-mbz")
    times["moodle_start"] = round(time.time() - t, 1)
    try:
        site = w.hq
        t = time.time()
        r = site.php_cli("admin/tool/generator/cli/maketestcourse.php", "--shortname=PHYS245",
                         "--fullname=Waves and optics (PHYS 245)", f"--size={size}", "--fixeddataset", "--quiet",
                         timeout=1800)
        cid = int(site.db.scalar(f"SELECT id FROM {mf.DB_NAME}.mdl_course WHERE shortname='PHYS245'"))
        times["maketestcourse"] = round(time.time() - t, 1)
        t = time.time()
        setup = mf.php([HERE / "moodle_backup_edit.php", f"--moodle={site.www}", f"--course={cid}", "--step=setup"])
        times["setup"] = round(time.time() - t, 1)
        mbz = {}
        for v in ("v1", "v2"):
            if v == "v2":
                t = time.time()
                edit = mf.php([HERE / "moodle_backup_edit.php", f"--moodle={site.www}", f"--course={cid}",
                               "--step=edit"])
                times["edit"] = round(time.time() - t, 1)
            d = out / v
            d.mkdir(exist_ok=True)
            for old in d.glob("*.mbz"):
                old.unlink()
            t = time.time()
            site.php_cli("admin/cli/backup.php", f"--courseid={cid}", f"--destination={d}", timeout=1800)
            times[f"backup_{v}"] = round(time.time() - t, 1)
            found = sorted(d.glob("*.mbz"))
            if len(found) != 1:
                raise mf.FixtureError(f"backup.php left {len(found)} .mbz files in {d}")
            mbz[v] = str(found[0])
        print(json.dumps({"course_id": cid, "size": size, "release": w.facts["release"], "v1": mbz["v1"],
                          "v2": mbz["v2"], "setup": json.loads(setup.stdout.strip().splitlines()[-1]),
                          "edit": json.loads(edit.stdout.strip().splitlines()[-1]), "seconds": times}))
    finally:
        w.stop()


if __name__ == "__main__":
    try:
        main()
    except mf.FixtureError as e:
        print(f"moodle_backup_make: {e}", file=sys.stderr)
        sys.exit(1)
