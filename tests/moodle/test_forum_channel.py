"""The forum-post channel end to end, as people use it: a student at the center replies and starts
a discussion on Moodle's own pages while the center's database is a replica and the link to HQ is
down; the posts show in place as pending; when the link comes up HQ's Moodle holds each exactly
once (author, place, text, format, times, events), replication brings them back and the pending
marker gives way to the real post. A post HQ refuses (the discussion was locked while the post
travelled) comes back with the reason, its text kept. distd is killed with a post in its outbox and
loses nothing. Real parts: both Moodles, MariaDB primary and replica, nginx + php-fpm, distd at both
ends, the flaky-link proxy between them, headless Chromium. Screenshots: test-artifacts/ForumChannel/.
"""

import sys
import time
import unittest

from selenium.webdriver.common.by import By

from moodle_case import WorldCase, mf, BUILD  # noqa: F401

from distd_link import DistdLink


def type_into_editor(driver, text):
    """Types into the message editor the way a person does: TinyMCE's frame, or a plain textarea."""
    frames = driver.find_elements(By.CSS_SELECTOR, "iframe.tox-edit-area__iframe, iframe[id$='_ifr']")
    if frames:
        driver.switch_to.frame(frames[0])
        body = driver.find_element(By.TAG_NAME, "body")
        body.click()
        body.send_keys(text)
        driver.switch_to.default_content()
    else:
        driver.find_element(By.ID, "id_messageeditable" if driver.find_elements(By.ID, "id_messageeditable")
                            else "id_message").send_keys(text)


class ForumChannel(WorldCase):
    profile = False  # the link's config first: the center's config.php names its site and socket

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.link = DistdLink(cls.w)
            cls.w.apply_center_profile()
            cls.link.down()  # the bus has not come yet
        except BaseException:
            cls.tearDownClass()
            raise

    # --- helpers ---
    def pending(self):
        return {e.get_attribute("data-uuid"): e for e in
                self.b.driver.find_elements(By.CSS_SELECTOR, "[data-region='local-distd-pending']")}

    def submit_form(self, label, subject, text):
        d = self.b.driver
        self.b.check(label + ": the form", expect=["Subject"])
        subj = d.find_element(By.ID, "id_subject")
        subj.clear()
        subj.send_keys(subject)
        type_into_editor(d, text)
        d.find_element(By.ID, "id_submitbutton").click()
        self.b.wait_idle()

    def hq_post(self, uuid):
        rows = self.hq_sql("SELECT p.id, p.userid, p.discussion, p.parent, p.subject, p.message, p.messageformat, "
                           "p.created, p.modified FROM mdl_forum_posts p JOIN mdl_local_distd_posts x ON x.postid = p.id "
                           f"WHERE x.uuid = '{uuid}'")
        return rows

    # --- the steps ---
    def test_01_reply_while_the_link_is_down(self):
        s1 = self.f["users"]["student1"]
        d = self.f["discussion"]
        self.b.login(self.url, "student1", self.f["password"], "login student1")
        self.b.visit(f"{self.url}/mod/forum/discuss.php?d={d['id']}", "discussion", expect=[d["name"]])
        # Moodle's own Reply link under the first post.
        reply = [e for e in self.b.driver.find_elements(By.CSS_SELECTOR, f"a[href*='post.php?reply={d['firstpost']}']")
                 if e.is_displayed()]
        self.assertTrue(reply, "no Reply link on the discussion page")
        reply[0].click()
        self.b.wait_idle()
        self.assertIn("/local/distd/post.php", self.b.driver.current_url)
        self.submit_form("reply", "Re: Welcome (from the center)", "Standing waves: is the node fixed?")
        body = self.b.check("discussion with the queued reply", expect=["Standing waves: is the node fixed?"])
        pend = self.pending()
        self.assertEqual(len(pend), 1, body[:2000])
        (uuid, el), = pend.items()
        self.assertEqual(el.get_attribute("data-state"), "queued")
        type(self).reply_uuid = uuid
        item = self.link.outbox()[uuid]
        self.assertEqual(item["state"], "queued")
        import os
        self.assertEqual(os.stat(self.link.socket).st_mode & 0o777, 0o660)  # docs/formats/post.md
        self.assertEqual(item["userid"], s1["id"])
        self.assertEqual(item["parent"], d["firstpost"])
        self.assertEqual(self.hq_post(uuid), [])

    def test_01b_only_the_author_sees_a_pending_post(self):
        d = self.f["discussion"]
        other = self.browser("student2")
        other.login(self.url, "student2", self.f["password"], "login student2")
        body = other.visit(f"{self.url}/mod/forum/discuss.php?d={d['id']}", "discussion seen by another student",
                           expect=[d["name"]])
        self.assertNotIn("Standing waves: is the node fixed?", body)
        self.assertEqual(other.driver.find_elements(By.CSS_SELECTOR, "[data-region='local-distd-pending']"), [])

    def test_02_new_discussion_while_the_link_is_down(self):
        fo = self.f["forum"]
        self.b.visit(f"{self.url}/mod/forum/view.php?id={fo['cmid']}", "forum", expect=[fo["name"]])
        # The page's in-page editor opened a TinyMCE autosave session: a write the replica profile
        # keeps local (mdl_tiny_autosave), made by AJAX, so a refusal would not show on the page.
        uid = self.f["users"]["student1"]["id"]
        deadline = time.time() + 10
        while self.center_sql(f"SELECT COUNT(*) FROM mdl_tiny_autosave WHERE userid = {uid}")[0][0] == "0":
            self.assertLess(time.time(), deadline, "no TinyMCE autosave session at the center")
            time.sleep(0.5)
        add = [e for e in self.b.driver.find_elements(By.CSS_SELECTOR, "a[href*='post.php?forum='], a[href='#collapseAddForm']")
               if e.is_displayed()]
        self.assertTrue(add, "no 'Add discussion topic' on the forum page")
        add[0].click()
        self.b.wait_idle()
        self.assertIn("/local/distd/post.php", self.b.driver.current_url)
        self.submit_form("new discussion", "Lab 3 partners", "Who wants to pair up for lab 3?")
        self.b.check("forum with the queued discussion", expect=["Lab 3 partners"])
        pend = self.pending()
        self.assertEqual(len(pend), 1)
        type(self).discussion_uuid = next(iter(pend))
        self.assertEqual(self.link.outbox()[self.discussion_uuid]["kind"], "discussion")

    def test_03_distd_killed_with_posts_in_its_outbox(self):
        self.link.kill("center", 9)
        self.link.start_center()
        ob = self.link.outbox()
        self.assertEqual(ob[self.reply_uuid]["state"], "queued")
        self.assertEqual(ob[self.discussion_uuid]["state"], "queued")

    def test_04_link_up_posts_reach_hq_once(self):
        s1 = self.f["users"]["student1"]
        d = self.f["discussion"]
        self.link.up()
        item = self.link.wait_outbox(self.reply_uuid, ["applied"], 90)
        self.link.wait_outbox(self.discussion_uuid, ["applied"], 90)
        rows = self.hq_post(self.reply_uuid)
        self.assertEqual(len(rows), 1, rows)
        pid, uid, disc, parent, subject, message, fmt, created, modified = rows[0]
        self.assertEqual(int(uid), s1["id"])
        self.assertEqual(int(disc), d["id"])
        self.assertEqual(int(parent), d["firstpost"])
        self.assertIn("Standing waves: is the node fixed?", message)
        self.assertEqual(int(created), item["created"])  # the time written at the center
        self.assertGreaterEqual(int(modified), int(created))
        self.assertEqual(int(pid), item["answer"]["postid"])
        n = self.hq_sql(f"SELECT COUNT(*) FROM mdl_forum_posts WHERE message LIKE '%Standing waves: is the node fixed?%'")
        self.assertEqual(n[0][0], "1")
        ev = self.hq_sql("SELECT COUNT(*) FROM mdl_logstore_standard_log WHERE eventname = '\\\\mod_forum\\\\event\\\\post_created' "
                         f"AND objectid = {pid} AND userid = {s1['id']}")
        self.assertEqual(ev[0][0], "1")
        drows = self.hq_post(self.discussion_uuid)
        self.assertEqual(len(drows), 1)
        self.assertEqual(drows[0][4], "Lab 3 partners")

    def test_04b_moodles_own_cron_notifies_the_subscribers(self):
        pid = self.link.outbox()[self.reply_uuid]["answer"]["postid"]
        s1 = self.f["users"]["student1"]
        d = self.f["discussion"]
        # The author is subscribed to the discussion, as Moodle's own form does by default.
        subs = self.hq_sql(f"SELECT COUNT(*) FROM mdl_forum_discussion_subs WHERE userid = {s1['id']} "
                           f"AND discussion = {d['id']}")
        self.assertEqual(subs[0][0], "1")
        # HQ's cron, as Moodle runs it: the forum task queues the mails, the ad-hoc tasks send them.
        # Moodle mails a post only after its editing time (30 min by default): none here.
        t1 = self.f["users"]["teacher1"]
        self.w.hq.php_eval("require_once($CFG->dirroot . '/mod/forum/lib.php'); set_config('maxeditingtime', 0);"
                           f"$forum = $DB->get_record('forum', ['id' => {self.f['forum']['id']}]);"
                           f"\\mod_forum\\subscriptions::subscribe_user({t1['id']}, $forum);")
        time.sleep(1)
        out = self.w.hq.php_cli("admin/cli/scheduled_task.php", "--execute=\\mod_forum\\task\\cron_task").stdout
        out += self.w.hq.php_cli("admin/cli/adhoc_task.php", "--execute",
                                 "--classname=\\mod_forum\\task\\send_user_notifications").stdout
        mailed = self.hq_sql(f"SELECT mailed FROM mdl_forum_posts WHERE id = {pid}")
        self.assertEqual(mailed[0][0], "1", "Moodle's forum cron did not mail the post:\n" + out[-3000:])
        notes = self.hq_sql("SELECT COUNT(*) FROM mdl_notifications WHERE component = 'mod_forum' "
                            f"AND useridto = {t1['id']} AND useridfrom = {s1['id']}")
        self.assertGreater(int(notes[0][0]), 0, "no subscriber was notified:\n" + out[-3000:])

    def test_05_replication_brings_them_back(self):
        d = self.f["discussion"]
        self.assert_replication_flowing()
        body = self.b.visit(f"{self.url}/mod/forum/discuss.php?d={d['id']}", "discussion after replication",
                            expect=["Standing waves: is the node fixed?"])
        self.assertEqual(self.pending(), {}, "the pending marker stayed after the post came back")
        self.assertEqual(body.count("Standing waves: is the node fixed?"), 1)
        self.b.visit(f"{self.url}/mod/forum/view.php?id={self.f['forum']['cmid']}", "forum after replication",
                     expect=["Lab 3 partners"])
        self.assertEqual(self.pending(), {})

    def test_06_a_refusal_comes_back_with_its_reason_and_text(self):
        d = self.f["discussion"]
        self.link.down()
        self.b.visit(f"{self.url}/local/distd/post.php?reply={d['firstpost']}", "reply form again")
        self.submit_form("reply to be refused", "Re: Welcome (late)", "A late thought about nodes.")
        uuid = next(u for u in self.pending() if u != self.reply_uuid)
        # While it travels, the teacher locks the discussion at HQ.
        self.w.hq.php_eval(f"$DB->set_field('forum_discussions', 'timelocked', time() - 1, ['id' => {d['id']}]);")
        self.link.up()
        item = self.link.wait_outbox(uuid, ["refused"], 90)
        self.assertEqual(item["answer"]["reason"], "discussion_locked")
        self.assertEqual(self.hq_post(uuid), [])
        self.b.visit(f"{self.url}/mod/forum/discuss.php?d={d['id']}", "discussion with the refusal",
                     expect=["A late thought about nodes."])
        el = self.pending()[uuid]
        self.assertEqual(el.get_attribute("data-state"), "refused")
        self.assertIn("locked", el.text.lower())
        kept = el.find_element(By.CSS_SELECTOR, "[data-region='local-distd-text']")
        self.assertIn("A late thought about nodes.", kept.get_attribute("value"))
        self.w.hq.php_eval(f"$DB->set_field('forum_discussions', 'timelocked', 0, ['id' => {d['id']}]);")

    def test_07_nothing_doubled_anywhere(self):
        n = self.hq_sql("SELECT COUNT(*), COUNT(DISTINCT uuid) FROM mdl_local_distd_posts")
        self.assertEqual(n[0][0], n[0][1])
        self.assertEqual(self.w.php_errors().count("PHP Fatal"), 0)


if __name__ == "__main__":
    unittest.main()
