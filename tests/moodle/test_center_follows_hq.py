"""HQ's changes show up at the center within a minute of replicating: a course renamed, a post
added, and a site setting Moodle keeps in its cache store (the custom menu). The center cannot run
purge_caches.php (it writes mdl_config); distd's daemon notices the replicated setting change and
purges the cache store (distctl replica purge-caches, docs/replica.md). Proven in the browser."""

import subprocess
import time
import unittest

from moodle_case import WorldCase, mf

MENU = "Regional library"


class CenterFollowsHq(WorldCase):
    daemon = None  # distd at the center, once started

    @classmethod
    def tearDownClass(cls):
        if cls.daemon and cls.daemon.poll() is None:
            cls.daemon.terminate()
            cls.daemon.wait(20)
        super().tearDownClass()

    def start_daemon(self):
        """distd at the center: its link to HQ is down (nothing listens at hq_url), which must not
        matter: the database replicates on its own connection."""
        d = self.w.distd_config.parent
        subprocess.run([mf.distd_bin("distctl"), "keygen", "--secret", d / "hq.key", "--public", d / "hq.pub"],
                       check=True, capture_output=True)
        cfg = d / "daemon.toml"
        cfg.write_text(self.w.distd_config.read_text().replace(
            "[replica]", f"""[regional]
hq_url = "http://127.0.0.1:{mf.free_port()}"
hq_public_key = "hq.pub"

[[channel]]
name = "moodledata"
path = "{self.w.center.dataroot}"
preset = "moodledata"

[replica]
cache_watch_seconds = 5""", 1))
        with open(self.w.artifacts / "distd-center.log", "wb") as log:
            type(self).daemon = subprocess.Popen([mf.distd_bin("distd"), "--config", cfg], stdout=log,
                                                 stderr=subprocess.STDOUT)

    def test_01_center_shows_hq_content(self):
        self.b.login(self.url, "student1", self.f["password"], "login", expect=["Dashboard"])
        c = self.f["course"]
        body = self.b.visit(f"{self.url}/course/view.php?id={c['id']}", "course before", expect=[c["fullname"]])
        self.assertNotIn(MENU, body)
        self.b.visit(f"{self.url}/mod/forum/discuss.php?d={self.f['discussion']['id']}", "discussion before",
                     expect=["Hello from the regional center."])

    def wait_for(self, url, want, since, label, limit=60):
        """Reloads url until every text in want shows; returns {label: seconds since `since`}."""
        seen, body = {}, ""
        while time.time() - since < limit and len(seen) < len(want):
            body = self.b.visit(url, label)
            for k, v in want.items():
                if v in body and k not in seen:
                    seen[k] = round(time.time() - since, 1)
            if len(seen) < len(want):
                time.sleep(2)
        log = (self.w.artifacts / "distd-center.log")
        self.assertEqual(set(seen), set(want), f"not shown within {limit} s of replicating: {body[:1500]}\n"
                         + (log.read_text() if log.exists() else ""))
        return seen

    def test_02_cached_setting_follows_hq(self):
        c = self.f["course"]
        course = f"{self.url}/course/view.php?id={c['id']}"
        self.w.hq.php_eval(f"set_config('custommenuitems', \"{MENU}|/course/index.php\");")
        self.assertTrue(self.w.wait_replicated(30))
        replicated = time.time()
        # Replicated, but Moodle at the center still serves its cached settings: without distd the
        # custom menu would not appear (the cache store is only purged where set_config runs).
        for i in range(3):
            body = self.b.visit(course, "replicated, cache not purged yet")
            self.assertNotIn(MENU, body)
            time.sleep(2)
        self.start_daemon()
        seen = self.wait_for(course, {"setting (custom menu)": MENU}, replicated, "setting after the purge")
        print(f"\ncustom menu shown {seen} s after replicating (distd started at +6 s)")
        self.assertIn("purged the center's Moodle caches", (self.w.artifacts / "distd-center.log").read_text())

    def test_03_course_and_post_follow_hq(self):
        c, d = self.f["course"], self.f["discussion"]
        self.w.hq.php_eval(f"""
require_once($CFG->dirroot . '/course/lib.php');
require_once($CFG->libdir . '/testing/generator/lib.php');
update_course((object)['id' => {c['id']}, 'fullname' => 'Physics 101 (spring)']);
$gen = new testing_data_generator();
$gen->get_plugin_generator('mod_forum')->create_post(['discussion' => {d['id']}, 'parent' => {d['firstpost']},
    'userid' => {self.f['users']['teacher1']['id']}, 'subject' => 'Re: Welcome',
    'message' => '<p>Posted at HQ after the center started.</p>', 'messageformat' => FORMAT_HTML]);
""")
        self.assertTrue(self.w.wait_replicated(30))
        replicated = time.time()
        seen = self.wait_for(f"{self.url}/course/view.php?id={c['id']}", {"course renamed": "Physics 101 (spring)"},
                             replicated, "course renamed at HQ")
        seen.update(self.wait_for(f"{self.url}/mod/forum/discuss.php?d={d['id']}",
                                  {"post added": "Posted at HQ after the center started."}, replicated,
                                  "discussion with HQ's new post"))
        print(f"\nshown at the center, seconds after replicating: {seen}")

    def test_04_purge_caches_cli(self):
        r = self.w.distctl("replica", "purge-caches", "--json", "--config", self.w.distd_config)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.w.distctl("replica", "purge-caches", "--dry-run", "--config", self.w.distd_config)
        self.assertIn("unchanged since the last purge", r.stdout)
        # A purge command that fails: exit 3, what failed and what to do; the next run tries again.
        bad = self.w.distd_config.parent / "bad-purge.toml"
        bad.write_text(self.w.distd_config.read_text().replace("[replica]", '[replica]\nmoodle_purge_command = ["false"]'))
        r = self.w.distctl("replica", "purge-caches", "--force", "--config", bad)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("purging the center's Moodle caches failed: 'false' exited 1", r.stderr)
        self.assertIn("what to do", r.stderr)
        self.assert_replication_flowing()

    def test_05_daemon_warns_once_about_a_failing_purge(self):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.terminate()
            self.daemon.wait(20)
        d = self.w.distd_config.parent
        cfg = d / "daemon-bad.toml"
        cfg.write_text((d / "daemon.toml").read_text().replace(
            "cache_watch_seconds = 5", 'cache_watch_seconds = 1\nmoodle_purge_command = ["false"]'))
        (self.w.tmp / "center/distd/state/replica/moodle-cache.fingerprint").unlink(missing_ok=True)
        log = self.w.artifacts / "distd-center-bad-purge.log"
        with open(log, "wb") as out:
            p = subprocess.Popen([mf.distd_bin("distd"), "--config", cfg], stdout=out, stderr=subprocess.STDOUT)
        time.sleep(5)  # about five looks
        p.terminate()
        p.wait(20)
        text = log.read_text()
        self.assertEqual(text.count("warning: Moodle cache watch: purging the center's Moodle caches failed"), 1, text)
        self.assertIn("what to do:", text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
