"""A person's browser for the Moodle tests: headless Chromium from Debian driven by Selenium
(python3-selenium + chromium-driver). Every step saves a screenshot as a test artifact and asserts
that the page carries no database-write error and no Moodle error box."""

import re
import shutil
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

# What Moodle shows when a write is refused (DEVELOPER debugging with display on), and its error page.
DB_WRITE_ERRORS = [
    "Error writing to database", "dmlwriteexception", "command denied to user", "Debug info:",
    "Error reading from database", "dml_write_exception", "dml_read_exception",
]


class PageProblem(AssertionError):
    pass


class Browser:
    def __init__(self, artifacts, name):
        self.artifacts = Path(artifacts)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.step = 0
        self.profile = tempfile.mkdtemp(prefix="distd-chromium-")
        opts = Options()
        opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,1000", f"--user-data-dir={self.profile}"):
            opts.add_argument(a)
        service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
        self.driver = webdriver.Chrome(service=service, options=opts)
        self.driver.set_page_load_timeout(120)
        self.log = []

    def close(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def wait_idle(self, timeout=20):
        """Waits until the page has loaded and Moodle's JavaScript has no request pending (the rule
        Moodle's own Behat tests follow: M.util.pending_js). A person is never faster than that;
        a robot that is races the page's own AJAX calls for the session."""
        deadline = time.time() + timeout
        script = ("return document.readyState === 'complete' && (typeof M === 'undefined' || !M.util || "
                  "!M.util.pending_js || M.util.pending_js.length === 0);")
        while time.time() < deadline:
            try:
                if self.driver.execute_script(script):
                    return
            except Exception:
                pass
            time.sleep(0.1)

    # --- looking ---
    def shot(self, label):
        self.step += 1
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        path = self.artifacts / f"{self.name}-{self.step:02d}-{slug}.png"
        self.driver.save_screenshot(str(path))
        return path

    @property
    def source(self):
        return self.driver.page_source

    @property
    def text(self):
        return self.driver.find_element(By.TAG_NAME, "body").text

    def problems(self):
        """Database-write errors, Moodle error pages and debugging boxes on the current page."""
        src = self.source
        found = [e for e in DB_WRITE_ERRORS if e.lower() in src.lower()]
        for css in (".debuggingmessage", "div.errorbox", ".alert-danger"):
            for el in self.driver.find_elements(By.CSS_SELECTOR, css):
                t = el.text.strip()
                if t:
                    found.append(f"{css}: {t[:300]}")
        return found

    def visit(self, url, label, expect=(), allow_problems=False):
        """Opens url, screenshots it, and asserts every string in expect shows on the page."""
        self.driver.get(url)
        return self.check(label, expect, allow_problems)

    def check(self, label, expect=(), allow_problems=False):
        self.wait_idle()
        shot = self.shot(label)
        body = self.text
        self.log.append((label, self.driver.current_url, shot.name))
        if not allow_problems:
            p = self.problems()
            if p:
                raise PageProblem(f"{label}: the page at {self.driver.current_url} shows {p} "
                                  f"(screenshot {shot})\n{body[:2000]}")
        # Moodle's JavaScript may still be laying the page out (the primary navigation's "more"
        # menu hides and re-adds its items; seen under load in CI): give the text 5 s to appear.
        deadline = time.monotonic() + 5
        while any(e not in body for e in expect) and time.monotonic() < deadline:
            time.sleep(0.25)
            body = self.text
        for e in expect:
            if e not in body:
                shot = self.shot(label)
                raise PageProblem(f"{label}: expected {e!r} on {self.driver.current_url} (screenshot {shot}); "
                                  f"the page says:\n{body[:2000]}")
        return body

    # --- acting ---
    def login(self, base, username, password, label=None, expect=(), allow_problems=False, attempts=3):
        """Logs in as a person does, and as a person would, tries again when the page changed under
        the typing (a stale field) or the login was refused for a token a racing request of the
        page before overwrote ("Invalid login", see _login_once). Seen under load in CI: a few
        logins in a hundred. A wrong password still fails: it is refused every time."""
        from selenium.common.exceptions import ElementNotInteractableException, StaleElementReferenceException
        for attempt in range(1, attempts + 1):
            try:
                return self._login_once(base, username, password, label, expect, allow_problems)
            except (StaleElementReferenceException, ElementNotInteractableException):
                if attempt == attempts:
                    raise
            except PageProblem as e:
                if "Invalid login" not in str(e) or attempt == attempts:
                    raise
            time.sleep(1)

    def _login_once(self, base, username, password, label, expect, allow_problems):
        self.driver.get(base + "/login/index.php")
        self.wait_idle()
        if not self.driver.find_elements(By.ID, "username"):
            # Still logged in as someone else: log out first, as a person would.
            self.logout(base)
        # A request of the page before (its AJAX calls, aborted by the browser but still running
        # in php-fpm) can write the anonymous session after the login page stored its login token
        # there, and the login is then refused. A fresh session cannot be overwritten by it.
        self.driver.delete_all_cookies()
        self.driver.get(base + "/login/index.php")
        self.wait_idle()
        for field, value in (("username", username), ("password", password)):
            el = self.driver.find_element(By.ID, field)
            el.clear()  # Moodle may remember the last username
            el.send_keys(value)
        self.driver.find_element(By.ID, "loginbtn").click()
        return self.check(label or f"login as {username}", expect, allow_problems)

    def logout(self, base):
        # The user menu's "Log out" link carries the session key; it is on every Moodle page.
        if "logout.php" not in self.source:
            self.driver.get(base + "/my/")
            self.wait_idle()
        links = [a.get_attribute("href") for a in self.driver.find_elements(By.CSS_SELECTOR, "a[href*='logout.php']")]
        if not links:
            raise PageProblem("no Log out link on " + self.driver.current_url)
        self.driver.get(links[0])
        return self.check("logged out")

    def cookies_clear(self):
        self.driver.delete_all_cookies()

    def fetch(self, url):
        """GETs url with this browser's cookies (what a click on a download link fetches) and
        returns (status, bytes)."""
        import urllib.request
        jar = "; ".join(f"{c['name']}={c['value']}" for c in self.driver.get_cookies())
        req = urllib.request.Request(url, headers={"Cookie": jar})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
