"""The replica profile against a real Moodle's database, with Moodle running at both ends:
replication keeps flowing while the center writes its local tables and HQ writes rows with the same
ids; check-files on real mdl_files rows and a real filedir; extra write grants, stale ignore
entries, a password file readable by others, a lagging replica and a replica that is down (Moodle
shows its own error, distd says what failed) and comes back from the my.cnf the profile prints."""

import json
import os
import re
import time
import unittest

from moodle_case import WorldCase, mf


class ReplicaWithMoodle(WorldCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.center_b = cls.b
        cls.hq_b = cls.browser("hq")

    def replica(self, *args):
        return self.w.distctl("replica", *args, "--config", self.w.distd_config)

    def test_01_both_sides_write_colliding_ids(self):
        # Both Moodles log people in: mdl_sessions, mdl_logstore_standard_log, mdl_user_preferences...
        # get rows with the same ids at HQ and at the center. Only the center's ignore list keeps
        # replication from stopping on them (error 1062).
        for user in ("student1", "student2", "teacher1"):
            self.hq_b.login(self.w.hq.url, user, self.f["password"], f"HQ login {user}", expect=["Dashboard"])
            self.hq_b.visit(f"{self.w.hq.url}/mod/forum/discuss.php?d={self.f['discussion']['id']}", f"HQ discussion {user}")
            self.hq_b.logout(self.w.hq.url)
            self.center_b.login(self.w.center.url, user, self.f["password"], f"center login {user}", expect=["Dashboard"])
            self.center_b.visit(f"{self.w.center.url}/mod/forum/discuss.php?d={self.f['discussion']['id']}",
                                f"center discussion {user}")
            self.center_b.logout(self.w.center.url)
        hq_ids = {r[0] for r in self.hq_sql("SELECT id FROM mdl_logstore_standard_log")}
        center_ids = {r[0] for r in self.center_sql("SELECT id FROM mdl_logstore_standard_log")}
        self.assertTrue(hq_ids & center_ids, "expected colliding log ids (the point of this test)")
        self.assert_replication_flowing()

    def test_02_check_files_on_real_data(self):
        r = self.replica("check-files", "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        h = self.f["resource"]["contenthash"]
        blob = self.blob_path(h)
        data = blob.read_bytes()
        blob.unlink()
        try:
            r = self.replica("check-files", "--json")
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn(h, r.stdout)
            # A person asking for the file now gets Moodle's own "file not found", not bytes.
            self.center_b.login(self.w.center.url, "student1", self.f["password"], "login for a missing file")
            res = self.f["resource"]
            status, _ = self.center_b.fetch(f"{self.w.center.url}/pluginfile.php/{res['contextid']}/mod_resource/"
                                            f"content/0/{res['filename']}")
            self.assertEqual(status, 404)
        finally:
            blob.write_bytes(data)
        r = self.replica("check-files", "--verify")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_03_extra_write_grants_are_flagged(self):
        db = self.w.center.db
        db.sql("GRANT INSERT, UPDATE ON moodle.mdl_forum_posts TO 'moodle'@'localhost';"
               "GRANT UPDATE ON moodle.mdl_course TO 'moodle'@'localhost';"
               "GRANT DELETE ON moodle.* TO 'moodle'@'localhost';"
               "GRANT UPDATE (email) ON moodle.mdl_user TO 'moodle'@'localhost';")
        r = self.replica("profile", "--check", "--json")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        findings = json.loads(r.stdout)["findings"]
        text = json.dumps(findings)
        for want in ("mdl_forum_posts", "mdl_course", "DELETE on every table", "mdl_user.email"):
            self.assertIn(want, text)
        for f in findings:
            self.assertTrue(f["fix"].startswith("REVOKE"), f)
        r = self.replica("profile", "--apply", "--db-user", "root")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.replica("profile", "--check")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_04_stale_ignore_entry(self):
        live = self.w.center.db.scalar("SELECT @@GLOBAL.replicate_ignore_table")
        self.w.center.db.sql(f"STOP SLAVE SQL_THREAD; SET GLOBAL replicate_ignore_table = "
                             f"'{live},moodle.mdl_course_completions'; START SLAVE SQL_THREAD;")
        r = self.replica("profile", "--check", "--json")
        self.assertEqual(r.returncode, 1, r.stdout)
        codes = [f["code"] for f in json.loads(r.stdout)["findings"]]
        self.assertEqual(codes, ["ignore-table-stale"])
        r = self.replica("profile", "--apply", "--db-user", "root")
        self.assertIn("no longer ignores moodle.mdl_course_completions", r.stdout)
        self.assertNotIn("mdl_course_completions", self.w.center.db.scalar("SELECT @@GLOBAL.replicate_ignore_table"))
        self.assertEqual(self.replica("profile", "--check").returncode, 0)

    def test_05_password_file_readable_by_others(self):
        pw = self.w.distd_config.parent / "replica.password"
        pw.chmod(0o644)
        try:
            r = self.replica("status")
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertIn("chmod 600", r.stderr)
        finally:
            pw.chmod(0o600)

    def test_06_lagging_replica(self):
        db = self.w.center.db
        db.sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 3600; START SLAVE;")
        try:
            # An HQ event stamped 10 minutes ago, held back by the delay: the replica is behind.
            self.w.hq.db.sql("SET TIMESTAMP = UNIX_TIMESTAMP() - 900; "
                             "UPDATE mdl_course SET summary = 'lagging' WHERE id = 1;", mf.DB_NAME)
            deadline = time.time() + 20
            while time.time() < deadline:
                r = self.replica("status", "--json")
                behind = json.loads(r.stdout).get("seconds_behind") if r.stdout.strip() else None
                if behind and behind > 600:
                    break
                time.sleep(0.5)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertGreater(behind, 600)
            text = self.replica("status").stdout
            self.assertRegex(text, r"replica lags \d+ s behind HQ")
        finally:
            db.sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE;")
        self.assert_replication_flowing()

    def test_07_replica_down_and_back(self):
        # The operator's my.cnf, made from what the profile prints (server_id filled in).
        mycnf = json.loads(self.replica("profile", "--print", "--json").stdout)["mycnf"]
        mycnf = mycnf.replace("<unique, not HQ's>", "2")
        cnf = self.w.center.home / "my.cnf"
        cnf.write_text(mycnf)
        db = self.w.center.db
        db.stop()
        try:
            body = self.center_b.visit(self.w.center.url + "/", "center with its database down", allow_problems=True)
            self.assertIn("Database connection failed", body)
            r = self.replica("status")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("unreachable", r.stdout + r.stderr)
        finally:
            db.defaults_file = cnf
            db.start(["--log-bin=replica-bin", "--relay-log=replica-relay"])
        live = db.scalar("SELECT @@GLOBAL.replicate_ignore_table")
        for t in ("mdl_sessions", "mdl_user_preferences", "mdl_forum_read", "mdl_task_adhoc"):
            self.assertIn(f"moodle.{t}", live)
        db.sql("START SLAVE")
        self.assert_replication_flowing()
        self.assertEqual(self.replica("profile", "--check").returncode, 0)
        self.center_b.login(self.w.center.url, "student2", self.f["password"], "login after the replica came back",
                            expect=["Dashboard"])

    def test_08_moodle_config_check(self):
        cfg = self.w.center.www / "config.php"
        good = cfg.read_text()
        try:
            for text, want in ((good.replace("$CFG->forcedefaultmymoodle = 1;", "// $CFG->forcedefaultmymoodle = 1;"),
                                "does not set $CFG->forcedefaultmymoodle"),
                               (good.replace("$CFG->forcedefaultmymoodle = 1;", "$CFG->forcedefaultmymoodle = 0;"),
                                "sets $CFG->forcedefaultmymoodle = 0 (needs 1)")):
                cfg.write_text(text)
                r = self.replica("moodle-config", "--check")
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertIn(want, r.stdout)
                self.assertIn("fix: add to", r.stdout)
        finally:
            cfg.write_text(good)
        self.assertEqual(self.replica("moodle-config", "--check").returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
