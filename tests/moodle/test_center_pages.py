"""A person at the regional center uses its Moodle, which runs on the replica of HQ's database:
the front page, logins (bcrypt and SHA-512 hashes, the admin), the Dashboard, a course, a forum
and a discussion with read tracking, a file, a page, logout and login again, a wrong password.
Every page is checked for database-write errors with Moodle's debugging at DEVELOPER level, and
screenshotted (test-artifacts/CenterPages/). Replication must keep flowing throughout."""

import unittest

from moodle_case import WorldCase, mf


class CenterPages(WorldCase):
    def test_00_profile_and_config_check_clean(self):
        r = self.w.distctl("replica", "profile", "--check", "--config", self.w.distd_config)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.w.distctl("replica", "moodle-config", "--check", "--config", self.w.distd_config)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("has every setting", r.stdout)

    def test_01_anonymous_front_page(self):
        self.b.visit(self.url + "/", "anonymous front page", expect=["distd University", "Log in"])

    def test_02_login_student_bcrypt(self):
        self.assertTrue(self.f["users"]["student1"]["hash"].startswith("$2y$"))
        body = self.b.login(self.url, "student1", self.f["password"], "login student1 (bcrypt)")
        self.assertIn("/my/", self.b.driver.current_url, body[:500])
        # Moodle 4.5 rehashed the old bcrypt hash at login: the column grant on mdl_user.password.
        h = self.center_sql("SELECT password FROM mdl_user WHERE username='student1'")[0][0]
        self.assertTrue(h.startswith("$6$"), h)

    def test_03_first_dashboard_visit(self):
        before = self.center_sql("SELECT COUNT(*) FROM mdl_my_pages")[0][0]
        self.b.visit(self.url + "/my/", "first dashboard visit", expect=["Dashboard"])
        # forcedefaultmymoodle (distctl replica moodle-config): no private copy of the page.
        self.assertEqual(self.center_sql("SELECT COUNT(*) FROM mdl_my_pages")[0][0], before)
        # Moodle's user tour greets a first visit; a person clicks "Got it" (an AJAX call that
        # saves a preference at the center) and it does not come back.
        from selenium.webdriver.common.by import By
        buttons = [e for e in self.b.driver.find_elements(By.CSS_SELECTOR, "[data-role='end']") if e.is_displayed()]
        self.assertTrue(buttons, "expected Moodle's first-visit user tour")
        buttons[0].click()
        self.b.check("user tour dismissed")
        body = self.b.visit(self.url + "/my/", "dashboard again", expect=["Dashboard"])
        self.assertNotIn("Expand to explore", body)

    def test_04_course_page(self):
        c = self.f["course"]
        self.b.visit(f"{self.url}/course/view.php?id={c['id']}", "course page",
                     expect=[c["fullname"], self.f["forum"]["name"], self.f["page"]["name"], self.f["resource"]["name"]])

    def test_05_forum(self):
        self.b.visit(f"{self.url}/mod/forum/view.php?id={self.f['forum']['cmid']}", "forum",
                     expect=[self.f["forum"]["name"], self.f["discussion"]["name"]])

    def test_06_discussion_with_tracking(self):
        uid = self.f["users"]["student1"]["id"]
        self.b.visit(f"{self.url}/mod/forum/discuss.php?d={self.f['discussion']['id']}", "discussion (tracking on)",
                     expect=[self.f["discussion"]["name"], "Introduce yourselves here.",
                             "Hello from the regional center."])
        # Read tracking was written at the center, into its local-only copy of mdl_forum_read.
        n = int(self.center_sql(f"SELECT COUNT(*) FROM mdl_forum_read WHERE userid={uid}")[0][0])
        self.assertGreater(n, 0)
        self.assertEqual(self.hq_sql(f"SELECT COUNT(*) FROM mdl_forum_read WHERE userid={uid}")[0][0], "0")

    def test_07_page_resource(self):
        self.b.visit(f"{self.url}/mod/page/view.php?id={self.f['page']['cmid']}", "page resource",
                     expect=[self.f["page"]["name"], "Chapter 1: standing waves."])

    def test_08_file_through_pluginfile(self):
        r = self.f["resource"]
        self.b.visit(f"{self.url}/course/view.php?id={self.f['course']['id']}", "course before the file",
                     expect=[r["name"]])
        url = f"{self.url}/pluginfile.php/{r['contextid']}/mod_resource/content/0/{r['filename']}"
        status, data = self.b.fetch(url)
        self.assertEqual(status, 200)
        blob = self.blob_path(r["contenthash"]).read_bytes()
        self.assertEqual(data, blob, "pluginfile.php served other bytes than the filedir blob")
        self.assertEqual(self.sha1(data), r["contenthash"])
        self.b.visit(f"{self.url}/mod/resource/view.php?id={r['cmid']}", "file resource view",
                     expect=["Standing waves on a string."])

    def test_09_logout_and_login_again(self):
        self.b.logout(self.url)
        self.b.check("after logout", expect=["Log in"])
        self.b.login(self.url, "student1", self.f["password"], "login student1 again", expect=["Dashboard"])
        self.b.logout(self.url)

    def test_10_login_student_sha512(self):
        self.assertTrue(self.f["users"]["student2"]["hash"].startswith("$6$"))
        self.b.login(self.url, "student2", self.f["password"], "login student2 (SHA-512)", expect=["Dashboard"])
        self.b.visit(f"{self.url}/mod/forum/discuss.php?d={self.f['discussion']['id']}", "discussion as student2",
                     expect=["Hello from the regional center."])
        self.b.logout(self.url)

    def test_11_login_admin(self):
        self.b.login(self.url, mf.ADMIN_USER, mf.ADMIN_PASS, "login admin", expect=["Dashboard"])
        self.b.visit(f"{self.url}/course/view.php?id={self.f['course']['id']}", "course as admin",
                     expect=[self.f["course"]["fullname"]])
        self.b.logout(self.url)

    def test_12_wrong_password(self):
        self.b.login(self.url, "student1", "not-the-password", "wrong password",
                     expect=["Invalid login, please try again"], allow_problems=True)
        # The refusal is Moodle's own message, not a database error.
        self.assertEqual([p for p in self.b.problems() if "Invalid login" not in p], [])
        self.assert_replication_flowing()
        # And the next right password still works.
        self.b.login(self.url, "student1", self.f["password"], "right password after a wrong one",
                     expect=["Dashboard"])

    def test_13_replication_kept_flowing(self):
        self.assert_replication_flowing()
        # Nothing Moodle wrote at the center reached HQ, and Moodle's account could not write HQ's tables.
        self.assertEqual(self.w.php_errors().count("command denied"), 0, self.w.php_errors()[-2000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
