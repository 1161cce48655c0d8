"""The forum-post channel under faults, against the real Moodle at both ends: nothing is lost and
nothing is doubled.

HQ's distd is killed -9 just before and just after Moodle's commit; the PHP adapter is killed in
the middle of a batch; HQ's database goes down while posts arrive; the link is cut while a post's
answer, and while a post's own bytes, are on the wire; posts travel on sticks (twice, out of
order, and then by link as well); the center's clock is three hours wrong; a post is far over the
size limit; a post carries HTML that Moodle cleans. After every case each post the case wrote is
at HQ exactly once (mdl_forum_posts joined with mdl_local_distd_posts on its UUID, and once by
its text), with the post id the center's outbox and HQ's inbox both name, or refused.

Faults at HQ's adapter come from a small wrapper (written into the World's tmp dir) that HQ's
`[forum] apply_command` points at; a mode file tells it what to do on its next run.
Real parts: both Moodles, MariaDB primary and replica, nginx + php-fpm, distd at both ends, the
flaky-link proxy, headless Chromium (the HTML case). Run time: about 3½ minutes.
"""

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import time
import unittest
import uuid as uuidlib

from selenium.common.exceptions import ElementNotInteractableException, StaleElementReferenceException
from selenium.webdriver.common.by import By

from moodle_case import WorldCase, mf, BUILD  # noqa: F401

from distd_link import DistdLink

FINAL = ("applied", "refused")

WRAPPER = r'''#!/usr/bin/python3
"""Test wrapper around local_distd's apply.php (tests/moodle/test_forum_faults.py). Reads its mode
from MODE_FILE at each run:
  pass                run the real adapter
  kill-parent-before  kill -9 the distd that started it, before Moodle sees a post
  kill-parent-after   run the real adapter (its transactions commit), then kill -9 its distd
                      before distd reads the answers
  first-then-kill     pass the adapter's first answer line through, kill -9 the adapter, then
                      switch the mode to hold
  hold                answer nothing, exit 1 (like an adapter that cannot reach its database)
  slow                run the real adapter, then sleep 4 s before exiting (a slow Moodle)
"""
import os, signal, subprocess, sys, time
MODE_FILE, LOG, REAL = %(mode)r, %(log)r, %(real)r
mode = open(MODE_FILE).read().strip() if os.path.exists(MODE_FILE) else "pass"
data = sys.stdin.buffer.read()
ppid = os.getppid()
with open(LOG, "a") as f:
    f.write("%%.3f mode=%%s posts=%%d ppid=%%d\n" %% (time.time(), mode, data.count(b"\n"), ppid))
if mode == "kill-parent-before":
    os.kill(ppid, signal.SIGKILL)
    sys.exit(137)
if mode == "hold":
    sys.stderr.write("adapter held by the test (as if HQ's database were down)\n")
    sys.exit(1)
p = subprocess.Popen(REAL, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
if mode == "first-then-kill":
    p.stdin.write(data)
    p.stdin.close()
    line = p.stdout.readline()
    sys.stdout.buffer.write(line)
    sys.stdout.flush()
    p.kill()
    p.wait()
    with open(MODE_FILE, "w") as f:
        f.write("hold\n")
    sys.exit(137)
out, _ = p.communicate(data)
sys.stdout.buffer.write(out)
sys.stdout.flush()
if mode == "kill-parent-after":
    os.kill(ppid, signal.SIGKILL)
    time.sleep(1)
if mode == "slow":
    with open(MODE_FILE + ".slow", "w") as f:
        f.write("applied\n")
    time.sleep(4)
sys.exit(p.returncode)
'''


class FaultCase(WorldCase):
    """One World + DistdLink; helpers to write posts through the plugin's socket and to prove
    that each is at HQ exactly once."""

    profile = False  # the link's config first: the center's config.php names its site and socket

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.link = DistdLink(cls.w, send_interval=1, apply_interval=2)
            cls.w.apply_center_profile()
            cls.posts = []  # every UUID this class wrote (the final check covers them all)
            cls.expect = {}  # uuid -> "applied" | "refused" | "rejected" (never in the outbox)
            cls.mode_file = cls.w.tmp / "adapter-mode"
            cls.wrapper_log = cls.w.tmp / "adapter-wrapper.log"
            cls.wrapper = cls.w.tmp / "adapter-wrapper.py"
            cls.wrapper.write_text(WRAPPER % {"mode": str(cls.mode_file), "log": str(cls.wrapper_log),
                                              "real": cls.link.plain_apply})
            cls.wrapper.chmod(0o755)
        except BaseException:
            cls.tearDownClass()
            raise

    # --- writing posts as the plugin does ---
    def post_json(self, text, parent=None, user="student1", subject=None):
        d = self.f["discussion"]
        u = str(uuidlib.uuid4())
        return {"uuid": u, "userid": self.f["users"][user]["id"], "kind": "reply",
                "parent": parent or d["firstpost"], "discussion": d["id"], "forum": self.f["forum"]["id"],
                "groupid": 0, "subject": subject or f"Re: {d['name']} ({u[:8]})",
                "message": f"<p>{text} [{u}]</p>", "format": 1}

    def submit(self, text, **kw):
        """Hands one reply to the center's distd over its socket; returns the UUID."""
        p = self.post_json(text, **kw)
        r = self.link.socket_request({"op": "submit", "post": p})
        self.assertTrue(r.get("ok"), r)
        self.assertEqual(r["state"], "queued")
        self.posts.append(p["uuid"])
        self.expect[p["uuid"]] = "applied"
        return p["uuid"]

    def set_mode(self, mode):
        self.mode_file.write_text(mode + "\n")

    def wrapper_runs(self):
        return self.wrapper_log.read_text().splitlines() if self.wrapper_log.exists() else []

    def wait_for(self, what, cond, timeout=60, interval=0.3):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = cond()
            if v:
                return v
            time.sleep(interval)
        self.fail(f"{what}: not within {timeout} s\ncenter log:\n{self.link.center_log()[-2500:]}\n"
                  f"HQ log:\n{self.link.hq_log()[-2500:]}\nwrapper runs: {self.wrapper_runs()}")

    # --- looking at HQ ---
    def hq_rows(self, u):
        """HQ's posts for this UUID: through the idempotency row, and by the UUID in the text."""
        joined = self.hq_sql("SELECT p.id, p.discussion, p.created FROM mdl_forum_posts p "
                             f"JOIN mdl_local_distd_posts x ON x.postid = p.id WHERE x.uuid = '{u}'")
        by_text = self.hq_sql(f"SELECT id FROM mdl_forum_posts WHERE message LIKE '%{u}%'")
        idem = self.hq_sql(f"SELECT postid FROM mdl_local_distd_posts WHERE uuid = '{u}'")
        return joined, by_text, idem

    def assert_once(self, uuids=None, timeout=90):
        """Each post: the outbox has its final answer; applied ones are at HQ exactly once, with the
        post id the outbox and the inbox name; refused ones are not at HQ at all."""
        uuids = list(self.posts if uuids is None else uuids)
        for u in uuids:
            if self.expect.get(u) != "rejected":
                self.link.wait_outbox(u, FINAL, timeout)
        ob, ib = self.link.outbox(), self.link.inbox()
        for u in uuids:
            joined, by_text, idem = self.hq_rows(u)
            if self.expect.get(u) == "rejected":
                self.assertNotIn(u, ob, f"{u}: refused by the socket but in the outbox")
                self.assertEqual((joined, by_text, idem), ([], [], []), f"{u}: refused by the socket but at HQ")
                continue
            item = ob[u]
            self.assertEqual(item["state"], self.expect[u], f"{u}: {item}")
            if item["state"] == "applied":
                self.assertEqual(len(joined), 1, f"{u}: HQ holds {joined} through local_distd_posts")
                self.assertEqual(len(by_text), 1, f"{u}: HQ holds {by_text} by text (a post without its row?)")
                self.assertEqual(len(idem), 1, f"{u}: idempotency rows {idem}")
                pid = int(joined[0][0])
                self.assertEqual(int(by_text[0][0]), pid)
                self.assertEqual(item["answer"]["postid"], pid, f"{u}: the outbox names another post: {item}")
                self.assertEqual(ib[u]["state"], "applied", ib[u])
                self.assertEqual(ib[u]["answer"]["postid"], pid, f"{u}: the inbox names another post: {ib[u]}")
            else:
                self.assertEqual((joined, by_text, idem), ([], [], []), f"{u}: refused but at HQ")
        n = self.hq_sql("SELECT COUNT(*), COUNT(DISTINCT site, uuid), COUNT(DISTINCT postid) FROM mdl_local_distd_posts")
        self.assertEqual(n[0][0], n[0][1], "two idempotency rows for one post")
        self.assertEqual(n[0][0], n[0][2], "two idempotency rows name one forum post")

    def tearDown(self):
        # After every case: every post written so far is final, and at HQ once (or refused).
        if self.link.procs["hq"].poll() is not None:
            self.link.restart_hq()
        self.set_mode("pass")
        self.link.up()
        self.assert_once()


class HqKilledAndLinkCut(FaultCase):
    """kill -9 around the apply commit, the adapter killed mid-batch, the link cut mid-send."""

    def test_01_hq_killed_before_the_apply_commit(self):
        self.set_mode("kill-parent-before")
        self.link.restart_hq(apply_command=[self.wrapper])
        hq = self.link.procs["hq"]
        u = self.submit("Killed before the commit")
        self.wait_for("HQ's distd killed by the adapter wrapper", lambda: hq.poll() is not None, 60)
        self.assertEqual(hq.returncode, -9)
        ib = self.link.inbox()
        self.assertEqual(ib[u]["state"], "sent", "HQ recorded the post before handing it to Moodle")
        self.assertEqual(self.hq_rows(u), ([], [], []), "Moodle has the post although the adapter never ran")
        self.assertEqual(self.link.outbox()[u]["state"], "queued", "the center got no answer")
        self.link.restart_hq()  # the plain adapter; the center's sender retries on its own
        self.link.wait_outbox(u, ["applied"], 60)
        self.assert_once([u])

    def test_02_hq_killed_after_the_apply_commit(self):
        self.set_mode("kill-parent-after")
        self.link.restart_hq(apply_command=[self.wrapper])
        hq = self.link.procs["hq"]
        u = self.submit("Killed after the commit")
        self.wait_for("HQ's distd killed by the adapter wrapper", lambda: hq.poll() is not None, 60)
        joined, by_text, idem = self.hq_rows(u)
        self.assertEqual(len(joined), 1, "Moodle committed the post before distd died")
        self.assertEqual(self.link.inbox()[u]["state"], "sent", "distd died before it recorded the answer")
        self.assertEqual(self.link.outbox()[u]["state"], "queued")
        self.link.restart_hq()
        item = self.link.wait_outbox(u, ["applied"], 60)
        self.assertEqual(item["answer"]["postid"], int(joined[0][0]), "the retry names the post written before the kill")
        self.assert_once([u])

    def test_03_the_adapter_killed_in_the_middle_of_a_batch(self):
        self.link.down()
        us = [self.submit(f"Batch post {i}") for i in range(4)]
        self.set_mode("first-then-kill")
        self.link.restart_hq(apply_command=[self.wrapper])
        runs0 = len(self.wrapper_runs())
        self.link.up()
        self.wait_for("the wrapper killed the adapter after its first answer",
                      lambda: self.mode_file.read_text().strip() == "hold", 60)
        first = self.wrapper_runs()[runs0]
        self.assertIn("mode=first-then-kill posts=4", first)
        # One answer recorded; the rest wait at HQ (the wrapper now holds the adapter back).
        self.wait_for("the center sees one applied, three waiting at HQ",
                      lambda: sorted(self.link.outbox()[u]["state"] for u in us) == ["applied", "sent", "sent", "sent"], 30)
        time.sleep(5)  # a few applier rounds (apply_interval 2) and sends: still held
        ib = self.link.inbox()
        self.assertEqual(sorted(ib[u]["state"] for u in us), ["applied", "sent", "sent", "sent"], ib)
        self.assertEqual(sorted(self.link.outbox()[u]["state"] for u in us), ["applied", "sent", "sent", "sent"])
        for u in us:
            joined, _, _ = self.hq_rows(u)
            self.assertLessEqual(len(joined), 1)  # the second may have committed before the kill
        self.set_mode("pass")
        for u in us:
            self.link.wait_outbox(u, ["applied"], 60)
        self.assert_once(us)

    def test_04_the_link_cut_while_the_answer_travels(self):
        self.link.down()
        u = self.submit("Answer cut on the way back")
        cuts0 = self.link.proxy_stats()["cuts"]
        # Every answer of more than ~250 bytes is cut: HQ applies, the center never hears.
        self.assertEqual(self.link.control("set cut-every 200"), "ok")
        self.link.up()
        self.wait_for("HQ applied the post", lambda: self.link.inbox().get(u, {}).get("state") == "applied", 60)
        time.sleep(3)
        self.assertNotIn(self.link.outbox()[u]["state"], FINAL, "the center got an answer through a cut link")
        self.assertGreater(self.link.proxy_stats()["cuts"], cuts0)
        self.assertEqual(self.link.control("set cut-every 0"), "ok")
        self.link.wait_outbox(u, ["applied"], 90)
        self.assertIn("forum: posts wait", self.link.center_log())
        self.assert_once([u])

    def test_05_the_link_cut_while_the_post_travels(self):
        self.link.down()
        u = self.submit("Cut on the way out. " + "Long text. " * 3500)  # ~38 KB
        before = self.link.proxy_stats()
        self.assertEqual(self.link.control("set rate 4000"), "ok")
        self.link.up()
        self.wait_for("the post is half way up the link",
                      lambda: self.link.proxy_stats()["bytes_up"] - before["bytes_up"] > 12000, 60, 0.2)
        self.assertNotIn(u, self.link.inbox(), "HQ has the post before its last byte")
        self.assertEqual(self.link.control("cut"), "ok")
        self.assertEqual(self.link.control("set rate 0"), "ok")
        time.sleep(0.5)
        self.assertNotIn(self.link.outbox()[u]["state"], FINAL)
        self.link.wait_outbox(u, ["applied"], 90)
        self.assert_once([u])

    def test_06_the_center_killed_while_it_waits_for_the_answer(self):
        self.set_mode("slow")
        self.link.restart_hq(apply_command=[self.wrapper])
        flag = self.w.tmp / "adapter-mode.slow"
        flag.unlink(missing_ok=True)
        u = self.submit("The center dies while HQ answers")
        self.wait_for("HQ's Moodle committed the post", flag.exists, 60, 0.05)
        self.link.kill("center", 9)  # its request to HQ is still waiting for the answer
        self.assertEqual(self.link.outbox()[u]["state"], "queued")
        self.set_mode("pass")
        self.link.start_center()
        self.link.wait_outbox(u, ["applied"], 60)
        self.link.restart_hq()
        self.assert_once([u])

    def test_07_a_post_far_over_the_size_limit(self):
        p = self.post_json("x" * (100 * 1024))
        r = self.link.socket_request({"op": "submit", "post": p})
        self.assertFalse(r.get("ok"), r)
        self.assertIn("limit", r["error"])
        self.assertIn("65536", r["error"], r)
        self.posts.append(p["uuid"])
        self.expect[p["uuid"]] = "rejected"
        self.assertNotIn(p["uuid"], self.link.outbox())

    def test_08_a_post_over_the_socket_line_limit(self):
        """Over the 128 KiB JSON line the socket reads: the answer must still reach the writer."""
        p = self.post_json("y" * (200 * 1024))
        data = (json.dumps({"op": "submit", "post": p}) + "\n").encode()
        answer, send_error = b"", None
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(self.link.socket))
            try:
                s.sendall(data)
            except OSError as e:  # distd stopped reading at its limit
                send_error = e
            try:
                while not answer.endswith(b"\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
            except OSError as e:
                answer = f"recv failed: {e!r}".encode()
        self.posts.append(p["uuid"])
        self.expect[p["uuid"]] = "rejected"
        self.assertNotIn(p["uuid"], self.link.outbox())
        self.assertTrue(answer.endswith(b"\n"), f"no answer line (send: {send_error!r}): {answer[:300]!r}")
        r = json.loads(answer)
        self.assertFalse(r["ok"])
        self.assertIn("KiB", r["error"])


class HqDatabaseSticksClockHtml(FaultCase):
    """HQ's database down, posts on sticks, the center's clock wrong, HTML Moodle cleans."""

    def distctl(self, *args, check=False):
        r = self.w.distctl(*[str(a) for a in args])
        if check:
            self.assertEqual(r.returncode, 0, f"distctl {' '.join(map(str, args))}: {r.returncode}\n{r.stdout}{r.stderr}")
        return r

    def login(self, user):
        for attempt in range(3):
            try:
                return self.b.login(self.url, user, self.f["password"], f"login {user}")
            except (StaleElementReferenceException, ElementNotInteractableException):
                # the login page reloaded under the robot
                self.b.shot(f"login failed {attempt}")
                (self.w.artifacts / f"login-failed-{attempt}.html").write_text(self.b.source)
                if attempt == 2:
                    raise
                time.sleep(1)

    def wait_replication_flowing(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.w.slave_status()
            if st.get("Slave_IO_Running") == "Yes" and self.w.wait_replicated(5):
                break
            time.sleep(1)
        self.assert_replication_flowing()

    def test_01_hq_database_down_while_applying(self):
        self.link.up()
        self.w.hq.db.stop()
        try:
            us = [self.submit(f"Database down {i}") for i in range(2)]
            for u in us:
                self.link.wait_outbox(u, ["sent"], 60)  # HQ holds them, has not applied them
            time.sleep(3)  # applier rounds (apply_interval 2) meanwhile: still nothing applied
            ib = self.link.inbox()
            for u in us:
                self.assertEqual(ib[u]["state"], "sent", ib[u])
                self.assertEqual(self.link.outbox()[u]["state"], "sent")
            r = self.distctl("post", "apply", "--config", self.link.hq_config)
            self.assertNotIn(r.returncode, (0, 75), f"distctl post apply with HQ's database down:\n{r.stdout}{r.stderr}")
            self.assertIn("apply.php", r.stderr, r.stderr)
            self.assertIn("2 wait", r.stdout)
        finally:
            self.w.hq.db.start()
        for u in us:
            self.link.wait_outbox(u, ["applied"], 60)  # HQ's applier loop, then the next send
        self.assert_once(us)
        # (The replica reconnects within its MASTER_CONNECT_RETRY, 60 s as distctl's profile sets
        # it: test_04 checks that replication flows again, once that has passed.)
        # The message says that HQ's database is down: Moodle prints "Database connection failed
        # ... Error code: dbconnectionfailed" and then its stack trace; distd points out the former.
        self.assertRegex(r.stderr, r"Database connection failed|dbconnectionfailed",
                         "distctl post apply does not say that HQ's database is down")

    def test_02_posts_on_sticks(self):
        t = self.w.tmp
        self.link.down()
        self.link.kill("hq", 15)  # the daemon's applier would race the exports below
        held = t / "hq-held.toml"
        self.set_mode("hold")
        self.link.set_apply_command([self.wrapper])
        shutil.copy(self.link.hq_config, held)  # the same HQ, its adapter held (its database down)
        self.link.set_apply_command(None)
        a, b = self.submit("Stick post A"), self.submit("Stick post B")

        def request(stick):
            stick.mkdir()
            self.distctl("bundle", "request", "--to", stick, "--config", self.link.center_config, check=True)
            return stick

        def export(stick, config=self.link.hq_config):
            return self.distctl("bundle", "export", "--to", stick, "--request", stick / "distd-request.txt",
                                "--config", config, check=True)

        def imp(stick):
            return self.distctl("bundle", "import", "--from", stick, "--config", self.link.center_config, check=True)

        s1 = request(t / "stick1")
        sealed = (s1 / "distd-outbound/forum-posts.sealed").read_bytes()
        for u in (a, b):
            self.assertNotIn(u.encode(), sealed)
        for words in (b"Stick post", b"Re: Welcome", b"student"):
            self.assertNotIn(words, sealed, "the sealed posts show their text")
        # Stick 1 reaches HQ while its adapter cannot apply: the answers say "sent".
        export(s1, held)
        self.assertTrue((s1 / "distd-answers-center-a.sealed").exists(), sorted(p.name for p in s1.iterdir()))
        self.assertEqual(self.hq_rows(a), ([], [], []))
        imp(s1)
        ob = self.link.outbox()
        self.assertEqual((ob[a]["state"], ob[b]["state"]), ("sent", "sent"))
        # Stick 2: HQ applies them now.
        s2 = request(t / "stick2")
        export(s2)
        for u in (a, b):
            self.assertEqual(len(self.hq_rows(u)[0]), 1, f"{u} not in HQ's Moodle after the export")
        imp(s2)
        ob = self.link.outbox()
        self.assertEqual((ob[a]["state"], ob[b]["state"]), ("applied", "applied"))
        self.assert_once([a, b])
        # The same stick again, then the old stick (answers "sent") after the newer one: nothing moves.
        r = imp(s2)
        r1 = imp(s1)
        self.assertEqual(self.link.outbox(), ob)
        self.assertIn("0 changed", r.stdout + r.stderr + r1.stdout + r1.stderr)
        # A post that went on a stick and then by link too (the stick's answers not imported yet).
        c = self.submit("Stick post C, then by link")
        s3 = request(t / "stick3")
        export(s3)
        pid_c = int(self.hq_rows(c)[0][0][0])
        # ... and one whose inbox row HQ lost (its state restored from an older backup): only
        # Moodle's idempotency row stands between it and a second post.
        d = self.submit("Stick post D, inbox row lost")
        s4 = request(t / "stick4")
        export(s4)
        pid_d = int(self.hq_rows(d)[0][0][0])
        with sqlite3.connect(self.link.hq_dir / "state/forum-inbox.db") as db:
            self.assertEqual(db.execute("DELETE FROM posts WHERE uuid = ?", (d,)).rowcount, 1)
        self.link.start_hq()
        self.link.up()
        self.assertEqual(self.link.wait_outbox(c, ["applied"], 60)["answer"]["postid"], pid_c)
        self.assertEqual(self.link.wait_outbox(d, ["applied"], 60)["answer"]["postid"], pid_d)
        imp(s3)
        imp(s4)
        self.assert_once([a, b, c, d])

    def test_03_the_centers_clock_three_hours_behind(self):
        lib = next((p for p in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                                "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                                "/usr/lib/faketime/libfaketime.so.1") if os.path.exists(p)), None)
        if not lib:
            self.skipTest("libfaketime is not installed (apt-get install faketime; scripts/setup.sh lists it)")
        parent = self.f["discussion"]["reply"]
        # The parent was written an hour ago (HQ's clock).
        self.hq_sql(f"UPDATE mdl_forum_posts SET created = UNIX_TIMESTAMP() - 3600 WHERE id = {parent}")
        pcreated = int(self.hq_sql(f"SELECT created FROM mdl_forum_posts WHERE id = {parent}")[0][0])
        self.link.down()
        self.link.kill("center", 15)
        # libfaketime preloaded by env, which execs distd: the `faketime` command would fork, and
        # a signal to it would not reach distd. The wall clock only: a monotonic clock 3 h before
        # boot would be negative.
        self.link.start_center(prefix=["env", f"LD_PRELOAD={lib}", "FAKETIME=-3h", "FAKETIME_DONT_FAKE_MONOTONIC=1"])
        try:
            # Over the link: HQ measures the skew at the moment of sending and corrects it.
            u = self.submit("Written with the clock three hours behind", parent=parent)
            taken = self.link.outbox()[u]["created"]
            self.assertAlmostEqual(taken, time.time() - 3 * 3600, delta=300, msg="faketime did not move distd's clock")
            self.link.up()
            self.link.wait_outbox(u, ["applied"], 60)
            created = int(self.hq_rows(u)[0][0][2])
            self.assertAlmostEqual(created, time.time(), delta=300, msg="HQ did not correct the center's clock")
            self.assertLessEqual(created, time.time() + 1)
            self.assertGreaterEqual(created, pcreated)
            # On a stick HQ cannot measure the skew: the reply is dated no earlier than its parent.
            self.link.down()
            v = self.submit("On a stick with the clock three hours behind", parent=parent)
            stick = self.w.tmp / "stick-skew"
            stick.mkdir()
            self.distctl("bundle", "request", "--to", stick, "--config", self.link.center_config, check=True)
            self.link.kill("hq", 15)  # the daemon's applier must not race the export's adapter
            self.distctl("bundle", "export", "--to", stick, "--request", stick / "distd-request.txt",
                         "--config", self.link.hq_config, check=True)
            self.link.start_hq()
            self.distctl("bundle", "import", "--from", stick, "--config", self.link.center_config, check=True)
            self.assertEqual(self.link.outbox()[v]["state"], "applied")
            vcreated = int(self.hq_rows(v)[0][0][2])
            self.assertEqual(vcreated, pcreated, "a reply dated before its parent (or not clamped to it)")
            self.assert_once([u, v])
        finally:
            self.link.kill("center", 15)
            self.link.start_center()


    def test_04_html_moodle_cleans(self):
        d = self.f["discussion"]
        # HQ's database was restarted in test_01: the replica reconnected on its own.
        self.wait_replication_flowing()
        self.link.down()
        p = self.post_json("Safe words")
        u = p["uuid"]
        p["message"] = (f"<p>Safe words [{u}]</p><script>window.distdPwned = 1;</script>"
                        "<p onclick=\"window.distdPwned = 2\">Click words</p>")
        r = self.link.socket_request({"op": "submit", "post": p})
        self.assertTrue(r["ok"], r)
        self.posts.append(u)
        self.expect[u] = "applied"
        dr = self.b.driver
        self.login("student1")
        self.b.visit(f"{self.url}/mod/forum/discuss.php?d={d['id']}", "discussion with the pending HTML post",
                     expect=["Safe words", "Click words"])
        el = dr.find_element(By.CSS_SELECTOR, f"[data-region='local-distd-pending'][data-uuid='{u}']")
        html = el.get_attribute("outerHTML")
        self.assertEqual(el.find_elements(By.CSS_SELECTOR, "script, [onclick]"), [], html)
        # The text to copy (a textarea) holds characters, not markup; everything else is markup.
        markup = re.sub(r"<textarea[^>]*>.*?</textarea>", "", html, flags=re.S | re.I).lower()
        self.assertNotIn("<script", markup, html)
        self.assertNotIn("onclick", markup, html)
        self.assertIsNone(dr.execute_script("return window.distdPwned"))
        self.link.up()
        item = self.link.wait_outbox(u, ["applied"], 60)
        pid = item["answer"]["postid"]
        self.assertTrue(self.w.wait_replicated(30))
        self.b.visit(f"{self.url}/mod/forum/discuss.php?d={d['id']}", "discussion with the replicated HTML post",
                     expect=["Safe words", "Click words"])
        self.assertEqual(dr.find_elements(By.CSS_SELECTOR, f"[data-uuid='{u}']"), [], "still pending after replication")
        art = dr.find_elements(By.CSS_SELECTOR, f"[data-post-id='{pid}']") or dr.find_elements(By.ID, f"p{pid}")
        self.assertTrue(art, f"no article for post {pid} on the page")
        html = art[0].get_attribute("outerHTML")
        self.assertIn("Safe words", art[0].text)
        self.assertIn("Click words", art[0].text)
        self.assertEqual(art[0].find_elements(By.CSS_SELECTOR, "script, [onclick]"), [], html)
        self.assertNotIn("distdPwned", html)
        self.assertIsNone(dr.execute_script("return window.distdPwned"))

    def test_05_a_stick_and_the_link_at_the_same_moment(self):
        """The same posts reach HQ on a stick (distctl bundle export) and by link (the daemon) at once."""
        self.link.down()
        us = [self.submit(f"Race {i}") for i in range(3)]
        stick = self.w.tmp / "stick-race"
        stick.mkdir()
        self.distctl("bundle", "request", "--to", stick, "--config", self.link.center_config, check=True)
        self.link.up()
        export = subprocess.Popen([mf.distd_bin("distctl"), "bundle", "export", "--to", str(stick), "--request",
                                   str(stick / "distd-request.txt"), "--config", str(self.link.hq_config)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        us.append(self.submit("Race 3 (wakes the sender)"))
        out, _ = export.communicate(timeout=120)
        self.assertEqual(export.returncode, 0, out)
        self.distctl("bundle", "import", "--from", stick, "--config", self.link.center_config, check=True)
        self.assert_once(us)


if __name__ == "__main__":
    unittest.main()
