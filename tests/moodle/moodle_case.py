"""Shared set-up for the Moodle suites: one World (HQ + center, tests/support/moodle_fixture.py) per
test class, the center prepared as docs/replica.md says, browsers that save screenshots."""

import hashlib
import os
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "support"))

import moodle_fixture as mf  # noqa: E402
from browser import Browser  # noqa: E402

BUILD = Path(os.environ.get("DISTD_BIN", HERE.parents[1] / "build"))


class WorldCase(unittest.TestCase):
    """Test methods run in name order (test_01_..., test_02_...) against one world, like the steps
    of a person's visit."""

    profile = True  # apply the replica profile and the config.php lines before the tests

    @classmethod
    def setUpClass(cls):
        cls.w = mf.World(BUILD, cls.__name__)
        cls.browsers = []
        try:
            cls.f = cls.w.facts
            if cls.profile:
                cls.w.apply_center_profile()
            cls.url = cls.w.center.url
            cls.b = cls.browser("center")  # a person at the center
        except BaseException:
            # unittest skips tearDownClass when setUpClass fails: stop the servers here.
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for b in cls.browsers:
            b.close()
        cls.w.stop()

    @classmethod
    def browser(cls, name):
        b = Browser(cls.w.artifacts, name)
        cls.browsers.append(b)
        return b

    # --- facts about the databases ---
    def center_sql(self, q):
        return self.w.center.db.sql(q, mf.DB_NAME)

    def hq_sql(self, q):
        return self.w.hq.db.sql(q, mf.DB_NAME)

    def assert_replication_flowing(self):
        self.assertTrue(self.w.wait_replicated(30), "the center did not catch up with HQ")
        st = self.w.slave_status()
        self.assertEqual(st.get("Slave_SQL_Running"), "Yes", f"SQL thread stopped: {st.get('Last_SQL_Error')}")
        self.assertEqual(st.get("Slave_IO_Running"), "Yes", f"IO thread: {st.get('Last_IO_Error')}")
        self.assertEqual(st.get("Last_SQL_Errno"), "0", st.get("Last_SQL_Error"))
        r = self.w.distctl("replica", "status", "--config", self.w.distd_config)
        self.assertEqual(r.returncode, 0, f"distctl replica status:\n{r.stdout}{r.stderr}")

    def blob_path(self, contenthash, site=None):
        site = site or self.w.center
        h = contenthash
        return site.dataroot / "filedir" / h[0:2] / h[2:4] / h

    @staticmethod
    def sha1(data):
        return hashlib.sha1(data).hexdigest()
