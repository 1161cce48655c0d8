"""Two centers and HQ post in one discussion while both links are down; when the links come back
(in the other order), HQ's Moodle holds every post once, replication brings each to both centers,
and every site shows them in the order they were written. Real parts: HQ's Moodle on the primary,
two centers' Moodles on two GTID replicas, distd at all three, a flaky-link proxy per center.
Screenshots: test-artifacts/ForumCenters/.
"""

import json
import time
import unittest

from moodle_case import WorldCase, mf, BUILD

from distd_link import DistdLink, popen_logged, wait_port, distd_bin
from pathlib import Path


class SecondCenter:
    """The second center's distd: its own site key (enrolled at HQ), proxy and daemon."""

    def __init__(self, link, center, site="center-b"):
        self.link, self.center, self.site = link, center, site
        self.proxy_port, self.control_port = mf.free_port(), mf.free_port()
        cfg = Path(center.distd_config)
        link.join_center(cfg, site, self.proxy_port)
        self.config = cfg
        state = cfg.parent / "state"
        state.mkdir(parents=True, exist_ok=True)
        link._distctl("keygen", "--secret", state / "site.key", "--public", state / "site.pub")
        (link.sites / f"{site}.pub").write_text((state / "site.pub").read_text())
        self.socket = state / "post.sock"
        tmp = link.w.tmp
        self.proxy = popen_logged([str(Path(distd_bin("distd")).parent / "tests/flaky_proxy"), "--listen",
                                   f"127.0.0.1:{self.proxy_port}", "--upstream", f"127.0.0.1:{link.hq_port}",
                                   "--control", self.control_port], tmp / f"proxy-{site}.log")
        wait_port("127.0.0.1", self.control_port, 10, self.proxy, "flaky_proxy")
        self.daemon = popen_logged([distd_bin("distd"), "--config", cfg], tmp / f"distd-{site}.log")
        deadline = time.time() + 20
        while not self.socket.exists():
            if self.daemon.poll() is not None or time.time() > deadline:
                raise mf.FixtureError(f"{site}'s distd did not start:\n" + (tmp / f"distd-{site}.log").read_text())
            time.sleep(0.1)

    def control(self, command):
        import socket
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=5) as s:
            s.sendall((command + "\n").encode())
            return s.makefile().readline().strip()

    def outbox(self):
        r = self.link._distctl("post", "list", "--json", "--config", self.config)
        return {p["uuid"]: p for p in json.loads(r.stdout)["posts"]}

    def stop(self):
        for p in (self.daemon, self.proxy):
            if p.poll() is None:
                p.terminate()
                p.wait(20)


def submit(socket_path, post):
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(socket_path))
        s.sendall((json.dumps({"op": "submit", "post": post}) + "\n").encode())
        return json.loads(s.makefile().readline())


class ForumCenters(WorldCase):
    profile = False
    centers = 2

    @classmethod
    def setUpClass(cls):
        cls.w = mf.World(BUILD, cls.__name__, centers=2)
        cls.browsers = []
        try:
            cls.f = cls.w.facts
            cls.link = DistdLink(cls.w)
            cls.b_center = SecondCenter(cls.link, cls.w.centers[1])
            cls.w.apply_center_profile()
            cls.url = cls.w.center.url
            cls.b = cls.browser("center-a")
            cls.b2 = cls.browser("center-b")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "b_center", None):
            cls.b_center.stop()
        super().tearDownClass()

    def test_01_everyone_posts_during_the_outage(self):
        d = self.f["discussion"]
        self.link.down()
        self.assertEqual(self.b_center.control("down"), "ok")
        s1, s2, t1 = self.f["users"]["student1"], self.f["users"]["student2"], self.f["users"]["teacher1"]
        base = {"kind": "reply", "parent": d["firstpost"], "discussion": d["id"], "forum": self.f["forum"]["id"],
                "format": 1}
        a = submit(self.link.socket, dict(base, uuid="aaaaaaaa-0000-4000-8000-000000000001", userid=s1["id"],
                                          subject="Re: from center A", message="<p>First: written at center A.</p>"))
        self.assertTrue(a["ok"], a)
        time.sleep(1.2)
        # A teacher at HQ answers on HQ's own Moodle, through Moodle's API.
        self.w.hq.php_eval(f"""
require_once($CFG->dirroot . '/mod/forum/lib.php');
\\core\\session\\manager::set_user($DB->get_record('user', ['id' => {t1['id']}]));
$parent = $DB->get_record('forum_posts', ['id' => {d['firstpost']}]);
$post = (object)['discussion' => $parent->discussion, 'parent' => $parent->id, 'userid' => {t1['id']},
    'subject' => 'Re: from HQ', 'message' => '<p>Second: written at HQ.</p>', 'messageformat' => FORMAT_HTML,
    'messagetrust' => 0, 'attachments' => null, 'itemid' => 0, 'forum' => {self.f['forum']['id']},
    'course' => {self.f['course']['id']}, 'mailnow' => 0, 'privatereplyto' => 0];
forum_add_new_post($post, null);
""")
        time.sleep(1.2)
        b = submit(self.b_center.socket, dict(base, uuid="bbbbbbbb-0000-4000-8000-000000000002", userid=s2["id"],
                                               subject="Re: from center B", message="<p>Third: written at center B.</p>"))
        self.assertTrue(b["ok"], b)
        self.assertLess(a["created"], b["created"])

    def test_02_links_come_back_in_the_other_order(self):
        self.assertEqual(self.b_center.control("up"), "ok")
        deadline = time.time() + 90
        while self.b_center.outbox()["bbbbbbbb-0000-4000-8000-000000000002"]["state"] != "applied":
            self.assertLess(time.time(), deadline, "center B's post was not applied")
            time.sleep(0.5)
        self.link.up()
        self.link.wait_outbox("aaaaaaaa-0000-4000-8000-000000000001", ["applied"], 90)
        rows = self.hq_sql("SELECT x.site, p.created, p.subject FROM mdl_forum_posts p JOIN mdl_local_distd_posts x "
                           "ON x.postid = p.id ORDER BY p.id")
        self.assertEqual([r[0] for r in rows], ["center-b", "center-a"])  # applied in arrival order ...
        self.assertLess(int(rows[1][1]), int(rows[0][1]))                 # ... dated in writing order

    def test_03_every_site_shows_every_post_in_writing_order(self):
        d = self.f["discussion"]
        self.assertTrue(self.w.wait_replicated(30), "a center did not catch up with HQ")
        order = ["First: written at center A.", "Second: written at HQ.", "Third: written at center B."]
        for who, browser, url, user in (("center A", self.b, self.w.centers[0].url, "student1"),
                                        ("center B", self.b2, self.w.centers[1].url, "student2")):
            browser.login(url, user, self.f["password"], f"login {user} at {who}")
            body = browser.visit(f"{url}/mod/forum/discuss.php?d={d['id']}&mode=1", f"discussion at {who}",
                                 expect=order)
            pos = [body.index(t) for t in order]
            self.assertEqual(pos, sorted(pos), f"{who} shows the posts out of writing order")
            for t in order:
                self.assertEqual(body.count(t), 1, f"{who} shows '{t}' {body.count(t)} times")
            pending = browser.driver.find_elements("css selector", "[data-region='local-distd-pending']")
            self.assertEqual(pending, [], f"{who} still shows a pending marker")
        n = self.hq_sql("SELECT COUNT(*) FROM mdl_forum_posts WHERE message LIKE '%written at center%'")
        self.assertEqual(n[0][0], "2")


if __name__ == "__main__":
    unittest.main()
