"""A course backup made by HQ's real Moodle travels as its members (distctl publish-course at HQ,
distctl sync at a center, docs/courses.md) and the archive the center rebuilds is one Moodle
restores: admin/cli/restore_backup.php takes it into a new course, whose page shows the course and
its activities in the browser and whose file downloads byte for byte. The rebuilt archive stamps
every member with the record's one archive.mtime (docs/formats/course.md, format 2) instead of
the second Moodle wrote it: this is the test that Moodle's restore does not mind.

Moodle restores at HQ: the center's database is a read-only replica (docs/replica.md), and what
matters here is that Moodle accepts the rebuilt file. Screenshots: test-artifacts/CourseRestore/.
"""

import collections
import hashlib
import json
import re
import subprocess
import tarfile
import unittest
import xml.etree.ElementTree as ET

from moodle_case import WorldCase, mf

# What Moodle prints on the command line when it complains (DEVELOPER debugging, display on).
CLI_PROBLEMS = ["Debugging:", "Debug info:", "PHP Warning", "PHP Notice", "PHP Deprecated", "Warning:", "Notice:",
                "Deprecated:", "Exception", "!!!"]


def members(path):
    """[(name, type, mtime, sha1 of the bytes or None)] of a tar.gz in archive order."""
    out = []
    with tarfile.open(path, "r:gz") as t:
        for m in t:
            data = t.extractfile(m).read() if m.isfile() else None
            out.append((m.name.rstrip("/"), "f" if m.isfile() else "d" if m.isdir() else m.type.decode(),
                        m.mtime, hashlib.sha1(data).hexdigest() if data is not None else None))
    return out


class CourseRestore(WorldCase):
    profile = False  # the center's Moodle plays no part: distd at the center rebuilds the archive
    hqd = None  # distd at HQ, once started

    @classmethod
    def tearDownClass(cls):
        if cls.hqd and cls.hqd.poll() is None:
            cls.hqd.terminate()
            cls.hqd.wait(20)
        super().tearDownClass()

    def distctl(self, *args):
        r = self.w.distctl(*map(str, args))
        self.assertEqual(r.returncode, 0, f"distctl {' '.join(map(str, args))}:\n{r.stdout}{r.stderr}")
        return r

    def assert_quiet(self, what, out):
        found = [p for p in CLI_PROBLEMS if p in out]
        self.assertEqual(found, [], f"{what} complained:\n{out[-4000:]}")

    # --- the steps ---
    def test_01_backup_at_hq(self):
        c = self.f["course"]
        d = self.w.tmp / "backup"
        d.mkdir()
        # Moodle's make_backup_temp_directory() writes temp/.htaccess before it makes temp/ (a PHP
        # warning on a dataroot without temp/, as the fixture's template is); a site in use has it.
        (self.w.hq.dataroot / "temp").mkdir(exist_ok=True)
        r = self.w.hq.php_cli("admin/cli/backup.php", f"--courseid={c['id']}", f"--destination={d}", timeout=300)
        self.assert_quiet("backup.php", r.stdout + r.stderr)
        found = sorted(d.glob("*.mbz"))
        self.assertEqual(len(found), 1, f"backup.php left {found} in {d}:\n{r.stdout}")
        type(self).original = found[0]
        with tarfile.open(found[0], "r:gz") as t:
            info = ET.fromstring(t.extractfile("moodle_backup.xml").read()).find("information")
        self.assertEqual(info.findtext("original_course_shortname"), c["shortname"])
        self.assertEqual(info.findtext("original_course_fullname"), c["fullname"])
        # The activities and sections as the backup names them: what the restored course must show.
        acts = [a.findtext("title") for a in info.find("contents/activities")]
        for name in (self.f["forum"]["name"], self.f["page"]["name"], self.f["resource"]["name"]):
            self.assertIn(name, acts)
        type(self).activities = acts
        type(self).sections = info.find("contents/sections")
        print(f"\nbackup of {c['shortname']}: {found[0].stat().st_size} bytes, {len(members(found[0]))} members,"
              f" activities {acts}")

    def test_02_publish_and_sync(self):
        d = self.w.tmp / "distd-courses"
        (d / "hq-state/sites").mkdir(parents=True)
        self.distctl("keygen", "--secret", d / "hq.key", "--public", d / "hq.pub")
        # The center's site key, enrolled at HQ (deltas and batches are for enrolled sites only).
        self.distctl("keygen", "--secret", d / "center-site.key", "--public", d / "hq-state/sites/center-01.pub")
        port = mf.free_port()
        hq = d / "hq.toml"
        hq.write_text(f"""role = "hq"
site = "hq"
state_dir = "{d}/hq-state"
[hq]
secret_key = "{d}/hq.key"
listen = "127.0.0.1:{port}"

[[channel]]
name = "courses"
path = "{d}/hq-courses"
link = true
""")
        center = d / "center.toml"
        center.write_text(f"""role = "regional"
site = "center-01"
state_dir = "{d}/center-state"
[regional]
hq_url = "http://127.0.0.1:{port}"
hq_public_key = "{d}/hq.pub"
site_secret_key = "{d}/center-site.key"
probe_min_seconds = 1

[[channel]]
name = "courses"
path = "{d}/center-courses"
""")
        pub = json.loads(self.distctl("publish-course", "--config", hq, self.original, "--json").stdout)
        self.assertEqual(pub["course"]["shortname"], self.f["course"]["shortname"], pub)
        with open(self.w.artifacts / "distd-hq.log", "wb") as log:
            type(self).hqd = subprocess.Popen([mf.distd_bin("distd"), "--config", hq], stdout=log,
                                              stderr=subprocess.STDOUT)
        mf.wait_port("127.0.0.1", port, 20, self.hqd, "distd (hq)")
        r = self.distctl("sync", "--config", center, "--json")
        ch = json.loads(r.stdout)["channels"][0]
        self.assertTrue(ch["converged"], r.stdout + r.stderr)
        key = self.f["course"]["shortname"]  # PHY101: nothing to escape (docs/formats/course.md)
        type(self).rebuilt = d / "center-state/courses" / f"{key}.mbz"
        self.assertTrue(self.rebuilt.is_file(), f"no rebuilt archive at {self.rebuilt}:\n{r.stdout}{r.stderr}")
        type(self).record = json.loads((d / "center-courses" / key / "course.json").read_text())
        listed = json.loads(self.distctl("courses", "--config", center, "--json").stdout)["courses"]
        self.assertEqual([(x["shortname"], x["status"]) for x in listed], [(key, "complete")], listed)

    def test_03_rebuilt_archive_has_one_mtime_and_the_same_members(self):
        orig, built = members(self.original), members(self.rebuilt)
        self.assertEqual([m[0] for m in built], [m[0] for m in orig], "member names or order differ")
        self.assertEqual([(m[0], m[1], m[3]) for m in built], [(m[0], m[1], m[3]) for m in orig],
                         "member types or bytes differ")
        self.assertEqual(self.record["format"], "distd-course 2")
        mtime = self.record["archive"]["mtime"]
        self.assertEqual({m[2] for m in built}, {mtime}, "the rebuilt members do not share archive.mtime")
        stamps = collections.Counter(m[2] for m in orig)
        self.assertEqual(mtime, stamps.most_common(1)[0][0])
        # Moodle stamps what it has no time for (directories) with tgz_packer::DEFAULT_TIMESTAMP.
        odd = {t: sorted({m[1] for m in orig if m[2] == t}) for t in stamps if t != mtime}
        print(f"\n{len(orig)} members; Moodle's stamps {dict(stamps)} (types of the others: {odd}); "
              f"the rebuilt archive: {mtime} for all")

    def test_04_moodle_restores_the_rebuilt_archive(self):
        before = int(self.w.hq.db.scalar(f"SELECT MAX(id) FROM {mf.DB_NAME}.mdl_course"))
        r = self.w.hq.php_cli("admin/cli/restore_backup.php", f"--file={self.rebuilt}", "--categoryid=1",
                              check=False, timeout=300)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, f"restore_backup.php refused the rebuilt archive:\n{out[-4000:]}")
        self.assert_quiet("restore_backup.php", out)
        m = re.search(r"Restored course ID: (\d+)", out)
        self.assertTrue(m, out[-4000:])
        cid = int(m.group(1))
        self.assertGreater(cid, before)
        (full, short), = self.hq_sql(f"SELECT fullname, shortname FROM mdl_course WHERE id = {cid}")
        c = self.f["course"]
        # A second course of the same names: Moodle makes them unique ("Physics 101 copy 1", "PHY101_1").
        self.assertTrue(full.startswith(c["fullname"]), full)
        self.assertTrue(short.startswith(c["shortname"] + "_"), short)
        names = [row[0] for row in self.hq_sql(
            "SELECT COALESCE(f.name, p.name, r.name) FROM mdl_course_modules cm JOIN mdl_modules md ON md.id = cm.module "
            "LEFT JOIN mdl_forum f ON md.name = 'forum' AND f.id = cm.instance "
            "LEFT JOIN mdl_page p ON md.name = 'page' AND p.id = cm.instance "
            "LEFT JOIN mdl_resource r ON md.name = 'resource' AND r.id = cm.instance "
            f"WHERE cm.course = {cid} ORDER BY cm.id")]
        self.assertEqual(sorted(names), sorted(self.activities))
        self.assertEqual(self.hq_sql(f"SELECT COUNT(*) FROM mdl_course_sections WHERE course = {cid}"),
                         [[str(len(self.sections))]])
        # The handout came back by its content name (files/<h[0:2]>/<sha1>): same content hash.
        res = self.f["resource"]
        (cmid, hash_), = self.hq_sql(
            "SELECT cm.id, f.contenthash FROM mdl_course_modules cm JOIN mdl_modules md ON md.id = cm.module "
            "JOIN mdl_context x ON x.contextlevel = 70 AND x.instanceid = cm.id "
            "JOIN mdl_files f ON f.contextid = x.id AND f.component = 'mod_resource' AND f.filearea = 'content' "
            f"AND f.filename = '{res['filename']}' WHERE cm.course = {cid} AND md.name = 'resource'")
        self.assertEqual(hash_, res["contenthash"])
        type(self).restored = {"id": cid, "fullname": full, "shortname": short, "resource_cmid": int(cmid)}
        print(f"\nrestored as course {cid} ({full} / {short})")

    def test_05_restored_course_in_the_browser(self):
        hq, c = self.w.hq.url, self.restored
        b = self.browser("hq")
        b.login(hq, mf.ADMIN_USER, mf.ADMIN_PASS, "login admin", expect=["Dashboard"])
        # visit() fails on any Moodle debugging box, error box or database error on the page.
        body = b.visit(f"{hq}/course/view.php?id={c['id']}", "restored course",
                       expect=[c["fullname"], "General", *self.activities])  # section 0's name
        status, data = b.fetch(f"{hq}/mod/resource/view.php?id={c['resource_cmid']}&redirect=1")
        self.assertEqual(status, 200)
        self.assertEqual(len(data), self.f["resource"]["size"], data[:300])
        self.assertEqual(self.sha1(data), self.f["resource"]["contenthash"])
        self.assertNotIn("Debugging:", body)
        errors = self.w.php_errors()
        self.assertEqual([p for p in ("PHP Fatal", "PHP Warning", "PHP Notice") if p in errors], [], errors[-3000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
