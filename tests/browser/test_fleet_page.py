"""GET /fleet in a real browser (docs/hq.md "The fleet"): a real HQ distd with five sites' status
reports stored as HQ stores them (<state_dir>/fleet/<site>.json), the page opened in headless
Chromium (python3-selenium + chromium-driver, tests/moodle/browser.py) at desktop width and as a
360x740 phone. It asserts what a person reads there (site names, flags, link/stick, a report's
<script> shown as text and never run), that the phone needs no sideways scrolling, and saves
full-page screenshots to $DISTD_BIN/screenshots/fleet-desktop.png and fleet-phone.png.

Exit status 77 (ctest: skipped) when Chromium or chromedriver is not installed."""

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "moodle"))
BIN = Path(os.environ.get("DISTD_BIN", HERE.parent.parent / "build"))
SHOTS = BIN / "screenshots"
EVIL = "<script>document.title='pwned';window.pwned=1</script> HQ answered 503"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*argv):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"{argv} exited {r.returncode}: {r.stderr}")
    return r.stdout


def report(site, installed, received, how="link", pending=(0, 0), last_error=None, warnings=()):
    """A report as HQ stores it: the center's "distd-report 1" with "how" and "received" added."""
    return {"format": "distd-report 1", "site": site, "time": received, "distd_version": "0.1.0",
            "channels": [{"channel": "notes", "installed_version": installed, "latest_known_version": installed,
                          "pending_files": pending[0], "pending_bytes": pending[1], "last_success": None,
                          "last_error": last_error, "warnings": list(warnings)}],
            "free_bytes": 42 * 1024 ** 3, "how": how, "received": received}


class Hq:
    """HQ: a key pair, one channel published twice (latest 2), five enrolled sites, four reports."""

    def __init__(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="distd-fleet-page-"))
        self.port = free_port()
        t = self.tmp
        run(BIN / "distctl", "keygen", "--secret", t / "hq.key", "--public", t / "hq.pub")
        (t / "notes").mkdir()
        (t / "sites").mkdir()
        self.config = t / "distd.toml"
        self.config.write_text(f"""role = "hq"
site = "hq-capital"
state_dir = "{t}/state"

[hq]
listen = "127.0.0.1:{self.port}"
secret_key = "{t}/hq.key"
public_key = "{t}/hq.pub"
sites_dir = "{t}/sites"

[[channel]]
name = "notes"
path = "{t}/notes"
""")
        for v in (1, 2):
            (t / "notes/welcome.txt").write_text(f"version {v}\n")
            run(BIN / "distctl", "publish", "--channel", "notes", "--config", self.config)
        now = int(time.time())
        reports = [report("center-ok", 2, now - 120),
                   dict(report("center-behind", 1, now - 3 * 3600, how="stick", pending=(14, 5 * 1024 ** 2)),
                        replica={"configured": True, "ok": False, "reachable": True, "seconds_behind": 7300,
                                 "error": "replication lag 7300 s"},
                        outbox={"posts": 3}),
                   report("center-evil", 2, now - 60, last_error=EVIL,
                          warnings=["replica: <b>lag</b> 40 min"]),
                   report("center-quiet", 2, now - 5 * 86400)]
        fleet = t / "state/fleet"
        fleet.mkdir(parents=True)
        for r in reports:
            (fleet / f"{r['site']}.json").write_text(json.dumps(r) + "\n")
        for site in ("center-ok", "center-behind", "center-evil", "center-quiet", "center-new"):
            run(BIN / "distctl", "keygen", "--secret", t / f"{site}.key", "--public", t / "sites" / f"{site}.pub")
        self.log = open(t / "distd.log", "w")
        self.proc = subprocess.Popen([str(BIN / "distd"), "--config", str(self.config)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise AssertionError("distd did not start:\n" + (t / "distd.log").read_text())
                time.sleep(0.1)
        self.url = f"http://127.0.0.1:{self.port}/fleet"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def full_page_shot(driver, path):
    """The whole page (not only the viewport) as a PNG, through the DevTools protocol."""
    w = driver.execute_script("return document.documentElement.scrollWidth")
    h = driver.execute_script("return document.documentElement.scrollHeight")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}})
    Path(path).write_bytes(base64.b64decode(shot["data"]))


class FleetPage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from browser import Browser  # tests/moodle/browser.py: headless Chromium as the project starts it
        SHOTS.mkdir(parents=True, exist_ok=True)
        cls.hq = Hq()
        try:
            cls.browser = Browser(SHOTS, "fleet")
        except Exception:
            cls.hq.stop()
            raise
        cls.driver = cls.browser.driver

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        cls.hq.stop()

    def test_1_headers(self):
        with urllib.request.urlopen(self.hq.url, timeout=30) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["Content-Type"], "text/html; charset=utf-8")
            self.assertEqual(r.headers.get_all("Cache-Control"), ["no-store"])
            self.assertIn("default-src 'none'", r.headers["Content-Security-Policy"])
            body = r.read().decode()
        self.assertNotIn("<script", body)
        self.assertIn("&lt;script&gt;", body)

    def test_2_desktop(self):
        from selenium.webdriver.common.by import By
        d = self.driver
        d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        d.get(self.hq.url)
        text = d.find_element(By.TAG_NAME, "body").text
        full_page_shot(d, SHOTS / "fleet-desktop.png")
        self.assertIn("5 sites, 4 need attention", text)
        for site in ("center-ok", "center-behind", "center-evil", "center-quiet", "center-new"):
            self.assertIn(site, text)
        for flag in ("behind", "error", "warning", "stale", "never-seen"):
            self.assertEqual(len(d.find_elements(By.XPATH, f"//td[@data-label='Flags']//span[text()='{flag}']")), 1,
                             flag)
        row = lambda site: d.find_element(By.ID, f"site-{site}").text
        self.assertIn("stick", row("center-behind").lower())
        self.assertIn("pending 14 files, 5.0 MiB", row("center-behind"))
        self.assertIn("link", row("center-ok").lower())
        self.assertIn("ok", row("center-ok"))
        self.assertIn("never", row("center-new"))
        self.assertIn("3 h ago", row("center-behind"))
        self.assertIn("5 d ago", row("center-quiet"))
        # The report's script is text on the page, and never ran.
        self.assertIn(EVIL, row("center-evil"))
        self.assertIn("replica: <b>lag</b> 40 min", row("center-evil"))
        self.assertIn("replica NOT OK, 7300 s behind", row("center-behind"))
        self.assertIn("3 posts wait for HQ", row("center-behind"))
        self.assertEqual(d.find_elements(By.TAG_NAME, "script"), [])
        self.assertNotEqual(d.title, "pwned")
        self.assertIsNone(d.execute_script("return window.pwned"))
        # A table at desktop width: the headers show.
        self.assertTrue(d.find_element(By.TAG_NAME, "thead").is_displayed())
        self.assertEqual(d.execute_script("return getComputedStyle(document.querySelector('tr.row-ok')).display"),
                         "table-row")

    def test_3_phone(self):
        from selenium.webdriver.common.by import By
        d = self.driver
        d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                          {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True})
        try:
            d.get(self.hq.url)
            self.assertEqual(d.execute_script("return window.innerWidth"), 360)
            sw = d.execute_script("return document.documentElement.scrollWidth")
            self.assertLessEqual(sw, 360, "the phone has to scroll sideways")
            # Cards: every row a block, each line labelled.
            self.assertEqual(d.execute_script("return getComputedStyle(document.querySelector('tr.row-ok')).display"),
                             "block")
            label = d.execute_script("return getComputedStyle(document.querySelector("
                                     "'#site-center-evil td.c-err'), '::before').content")
            self.assertEqual(label, '"Last error"')
            text = d.find_element(By.TAG_NAME, "body").text
            self.assertIn("5 sites, 4 need attention", text)
            self.assertIn(EVIL, text)
            # Nothing a person sees sticks out of the viewport on the right (the table's header
            # row is there for screen readers only, clipped to 1 px).
            widest = d.execute_script("return [...document.querySelectorAll('body *')]"
                                      ".filter(e => !e.closest('thead'))"
                                      ".map(e => [e.getBoundingClientRect().right, e.tagName + '.' + e.className])"
                                      ".sort((a, b) => b[0] - a[0])[0]")
            self.assertLessEqual(widest[0], 360, widest)
            d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                              {"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": True})
            full_page_shot(d, SHOTS / "fleet-phone.png")
        finally:
            d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


if __name__ == "__main__":
    if not (shutil.which("chromium") or os.path.exists("/usr/bin/chromium")) or \
            not (shutil.which("chromedriver") or os.path.exists("/usr/bin/chromedriver")):
        print("skipped: chromium and chromedriver (Debian: chromium-driver) are not installed")
        sys.exit(77)
    try:
        import selenium  # noqa: F401
    except ImportError:
        print("skipped: python3-selenium is not installed")
        sys.exit(77)
    unittest.main(verbosity=2)
