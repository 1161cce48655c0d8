"""Without a Moodle source the Moodle suites fail, saying how to get one (never a silent pass)."""

import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "support"))
import moodle_fixture as mf  # noqa: E402


class FixtureSource(unittest.TestCase):
    def test_no_source_anywhere_is_a_clear_failure(self):
        with tempfile.TemporaryDirectory() as d:
            os.environ["DISTD_MOODLE_SRC"] = f"{d}/nothing-here"
            try:
                with self.assertRaises(mf.FixtureError) as e:
                    mf.find_moodle_source(shared=f"{d}/no-shared.tar.xz", download_url="http://127.0.0.1:1/moodle.tgz",
                                          cache_dir=d)
            finally:
                del os.environ["DISTD_MOODLE_SRC"]
        msg = str(e.exception)
        self.assertIn("No Moodle 4.5 source", msg)
        self.assertIn("DISTD_MOODLE_SRC=/path/to/it", msg)
        self.assertIn("nothing-here", msg)

    def test_template_command_fails_with_the_message(self):
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, DISTD_MOODLE_SRC=f"{d}/not-moodle")
            Path(f"{d}/not-moodle").write_text("not a tarball")
            r = subprocess.run([sys.executable, str(HERE.parent / "support/moodle_fixture.py"), "template", d],
                               capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("moodle fixture:", r.stderr)

    def test_the_source_used_is_named(self):
        src, how = mf.find_moodle_source()
        self.assertTrue(Path(src).exists())
        self.assertTrue(how)


if __name__ == "__main__":
    unittest.main(verbosity=2)
