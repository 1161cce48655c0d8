"""Upgrades do not break the center. replicate_ignore_table filters DDL too, so when HQ's Moodle
upgrade alters a local-only table the center's copy keeps its old shape. Here HQ's "upgrade" adds
a column and an index to mdl_user_preferences (ALTER at HQ, the same change in the install.xml of
the center's upgraded Moodle code): `profile --check` finds the drift, `--apply` alters the table in
place, keeping its rows, and the center's table then has HQ's shape. A center whose code is not at HQ's
version is told so."""

import json
import re
import unittest

from moodle_case import WorldCase, mf

FIELD = '        <FIELD NAME="timeviewed" TYPE="int" LENGTH="10" NOTNULL="true" DEFAULT="0" SEQUENCE="false"/>\n'
INDEX = '        <INDEX NAME="timeviewed" UNIQUE="false" FIELDS="timeviewed"/>\n'


def replace_file(path, text):
    """The code trees are hard-linked to the template: never edit a shared inode in place."""
    path.unlink()
    path.write_text(text)


def shape(site, table):
    cols = site.db.sql("SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT FROM information_schema.COLUMNS "
                       f"WHERE TABLE_SCHEMA='moodle' AND TABLE_NAME='{table}' ORDER BY COLUMN_NAME")
    idx = site.db.sql("SELECT INDEX_NAME, NON_UNIQUE, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) FROM "
                      f"information_schema.STATISTICS WHERE TABLE_SCHEMA='moodle' AND TABLE_NAME='{table}' "
                      "GROUP BY INDEX_NAME, NON_UNIQUE ORDER BY INDEX_NAME")
    return cols, idx


class UpgradeDrift(WorldCase):
    def replica(self, *args):
        return self.w.distctl("replica", *args, "--config", self.w.distd_config)

    def test_01_fresh_center_has_no_drift(self):
        r = self.replica("profile", "--check", "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_02_hq_upgrade_alters_a_local_table(self):
        b = self.b
        b.login(self.w.center.url, "student1", self.f["password"], "login before the upgrade", expect=["Dashboard"])
        b.logout(self.w.center.url)
        rows = self.center_sql("SELECT COUNT(*) FROM mdl_user_preferences")[0][0]
        # HQ upgrades: its upgrade step alters the table...
        self.hq_sql("ALTER TABLE mdl_user_preferences ADD COLUMN timeviewed BIGINT(10) NOT NULL DEFAULT 0, "
                    "ADD INDEX mdl_userpref_tim_ix (timeviewed)")
        # ...and the center installs the same release, whose install.xml has the new definition.
        xml = self.w.center.www / "lib/db/install.xml"
        text = xml.read_text()
        text = re.sub(r'(<TABLE NAME="user_preferences".*?<FIELD NAME="value"[^\n]*\n)', lambda m: m.group(1) + FIELD,
                      text, count=1, flags=re.S)
        text = re.sub(r'(<TABLE NAME="user_preferences".*?<INDEX NAME="name"[^\n]*\n)', lambda m: m.group(1) + INDEX,
                      text, count=1, flags=re.S)
        replace_file(xml, text)
        self.assertTrue(self.w.wait_replicated(30))
        # The ALTER did not replicate: the center's copy is ignored, DDL included.
        self.assertNotEqual(shape(self.w.center, "mdl_user_preferences"), shape(self.w.hq, "mdl_user_preferences"))

        r = self.replica("profile", "--check", "--json")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        drift = [f for f in json.loads(r.stdout)["findings"] if f["code"] == "local-table-drift"]
        self.assertEqual(len(drift), 1, r.stdout)
        self.assertIn("mdl_user_preferences", drift[0]["message"])
        self.assertIn("column timeviewed is missing", drift[0]["message"])
        self.assertIn("index (timeviewed) is missing", drift[0]["message"])
        self.assertIn("--apply", drift[0]["fix"])

        r = self.replica("profile", "--apply", "--db-user", "root")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("ALTER TABLE `moodle`.`mdl_user_preferences` ADD COLUMN `timeviewed`", r.stdout)
        self.assertEqual(shape(self.w.center, "mdl_user_preferences"), shape(self.w.hq, "mdl_user_preferences"))
        self.assertEqual(self.center_sql("SELECT COUNT(*) FROM mdl_user_preferences")[0][0], rows)
        self.assertEqual(self.replica("profile", "--check").returncode, 0)
        # Moodle's account still writes it (grants follow the table's name), and people log in.
        b.login(self.w.center.url, "student2", self.f["password"], "login after the repair", expect=["Dashboard"])
        self.assert_replication_flowing()

    def test_03_center_code_older_than_hq(self):
        vp = self.w.center.www / "version.php"
        orig = vp.read_text()
        replace_file(vp, orig.replace("$version  = 2024100706.00", "$version  = 2024100705.00"))
        try:
            r = self.replica("profile", "--check", "--json")
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            f = [f for f in json.loads(r.stdout)["findings"] if f["code"] == "moodle-code-version"]
            self.assertEqual(len(f), 1, r.stdout)
            self.assertIn("2024100706.00", f[0]["message"])
            self.assertIn("install HQ's Moodle release", f[0]["fix"])
        finally:
            replace_file(vp, orig)


if __name__ == "__main__":
    unittest.main(verbosity=2)
