"""HQ applies the posts written at a center: local/distd/cli/apply.php (docs/formats/post.md, "The PHP
adapter") reads posts as JSON lines and answers one line per post. A post is written once, as its
author, through mod/forum's API (the post_created event, read tracking, the discussion's last post),
dated when it was written (never in the future, never before its parent) and modified now; a post
delivered again is a duplicate of the same forum post; a refusal names Moodle's reason and writes
nothing; the idempotency row replicates to the center. The center's profile is not needed: the
adapter runs at HQ only."""

import json
import subprocess
import time
import unittest
import uuid as uuidlib

from moodle_case import WorldCase, mf

SITE = "center-a"


def new_uuid():
    return str(uuidlib.uuid4())


class ForumAdapter(WorldCase):
    profile = False  # HQ's adapter; the center is only the replica that receives the rows

    # --- helpers ---
    def apply(self, *posts, raw_lines=()):
        """Runs the adapter at HQ on the posts (dicts, or raw lines after them); returns the answers
        (one dict per line of stdout), the time window of the run and the process result."""
        lines = [json.dumps(p) for p in posts] + list(raw_lines)
        t0 = int(time.time())
        r = mf.run(["php", *mf.PHP_INI, self.w.hq.www / "local/distd/cli/apply.php"], check=False,
                   input="\n".join(lines) + "\n", timeout=300)
        t1 = int(time.time())
        self.assertEqual(r.returncode, 0, f"apply.php exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        answers = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        self.assertEqual(len(answers), len(lines), f"one answer per post:\n{r.stdout}\n{r.stderr}")
        return answers, t0, t1

    def post(self, user, kind="reply", parent=0, discussion=0, forum=0, created=None, subject=None,
             message="<p>Written at the center.</p>", uuid=None, groupid=-1):
        return {"uuid": uuid or new_uuid(), "site": SITE, "userid": self.f["users"][user]["id"], "kind": kind,
                "parent": parent, "discussion": discussion, "forum": forum or self.f["forum"]["id"],
                "groupid": groupid, "subject": subject or f"Re: from {user}", "message": message, "format": 1,
                "created": int(time.time()) - 30 if created is None else created}

    def reply(self, user, parent=None, **kw):
        d = self.f["discussion"]
        return self.post(user, "reply", parent=parent or d["firstpost"], discussion=d["id"], **kw)

    def row(self, table, where, cols="*"):
        rows = self.hq_sql(f"SELECT {cols} FROM mdl_{table} WHERE {where}")
        self.assertEqual(len(rows), 1, f"expected one {table} row where {where}, got {rows}")
        return rows[0]

    def created_of(self, postid):
        return int(self.row("forum_posts", f"id={int(postid)}", "created")[0])

    def assert_applied(self, answer, post, duplicate=False):
        self.assertEqual(answer.get("state"), "applied", answer)
        self.assertEqual((answer["uuid"], answer["site"]), (post["uuid"], post["site"]))
        self.assertEqual(answer["duplicate"], duplicate, answer)
        self.assertGreater(answer["postid"], 0)

    def assert_refused(self, answer, post, reason):
        self.assertEqual((answer.get("state"), answer.get("reason")), ("refused", reason), answer)
        self.assertEqual(answer["uuid"], post["uuid"])
        self.assertTrue(answer.get("reason_text"), answer)
        self.assertEqual(self.hq_sql(f"SELECT COUNT(*) FROM mdl_local_distd_posts WHERE uuid='{post['uuid']}'")[0][0],
                         "0", "a refused post has no idempotency row")
        self.assertEqual(self.hq_sql("SELECT COUNT(*) FROM mdl_forum_posts WHERE subject='"
                                     + post["subject"].replace("'", "''") + "'")[0][0], "0",
                         f"a refused post ({reason}) was written")

    # --- the tests, in order ---
    def test_01_reply_applied_as_its_author(self):
        parent_created = self.created_of(self.f["discussion"]["firstpost"])
        p = self.reply("student1", created=parent_created + 1, subject="Re: Welcome, from the center",
                       message="<p>Hello HQ, <b>bold</b> from the center.<script>alert('distd-xss')</script></p>")
        (a,), t0, t1 = self.apply(p)
        self.assert_applied(a, p)
        postid = a["postid"]
        self.assertEqual(a["discussion"], self.f["discussion"]["id"])
        userid, parent, created, modified, mailed = map(int, self.row(
            "forum_posts", f"id={postid}", "userid, parent, created, modified, mailed"))
        self.assertEqual(userid, self.f["users"]["student1"]["id"], "written as the author, not as admin")
        self.assertEqual(parent, self.f["discussion"]["firstpost"])
        self.assertEqual(created, p["created"], "created keeps when it was written")
        self.assertTrue(t0 <= modified <= t1, f"modified {modified} is not the time of applying [{t0}, {t1}]")
        self.assertEqual((a["created"], a["modified"]), (created, modified))
        self.assertEqual(mailed, 0)
        # The idempotency row, in the same transaction.
        site, ruuid, rpost, rdisc, ruser = self.row("local_distd_posts", f"uuid='{p['uuid']}'",
                                                    "site, uuid, postid, discussionid, userid")
        self.assertEqual((site, ruuid, int(rpost), int(rdisc), int(ruser)),
                         (SITE, p["uuid"], postid, self.f["discussion"]["id"], self.f["users"]["student1"]["id"]))
        # What mod/forum's API does around a post: the discussion's last post, read tracking, the event.
        tm, um = map(int, self.row("forum_discussions", f"id={self.f['discussion']['id']}", "timemodified, usermodified"))
        self.assertEqual(um, self.f["users"]["student1"]["id"])
        self.assertTrue(t0 <= tm <= t1)
        self.row("forum_read", f"postid={postid} AND userid={userid}", "id")
        self.row("logstore_standard_log", f"eventname LIKE '%post\\_created' AND objectid={postid} AND userid={userid}",
                 "id")
        type(self).reply_post, type(self).reply_id = p, postid

    def test_02_repeated_post_is_a_duplicate(self):
        p = self.reply_post
        (a, b), _, _ = self.apply(p, p)
        for ans in (a, b):
            self.assert_applied(ans, p, duplicate=True)
            self.assertEqual(ans["postid"], self.reply_id, "the same forum post")
            self.assertEqual(ans["created"], p["created"])
        self.assertEqual(self.hq_sql("SELECT COUNT(*) FROM mdl_forum_posts WHERE subject='Re: Welcome, from the center'")
                         [0][0], "1", "exactly one forum post")
        self.assertEqual(self.hq_sql(f"SELECT COUNT(*) FROM mdl_local_distd_posts WHERE uuid='{p['uuid']}'")[0][0], "1")

    def test_03_new_discussion_applied(self):
        p = self.post("student2", "discussion", subject="A question from the center",
                      message="<p>How do standing waves form?</p>", created=int(time.time()) - 20)
        (a,), t0, t1 = self.apply(p)
        self.assert_applied(a, p)
        did, name, firstpost, userid, tm = self.row("forum_discussions", f"id={a['discussion']}",
                                                    "id, name, firstpost, userid, timemodified")
        self.assertEqual((name, int(firstpost), int(userid)), (p["subject"], a["postid"], p["userid"]))
        self.assertEqual(int(self.row("forum_discussions", f"id={did}", "forum")[0]), self.f["forum"]["id"])
        created, modified, puser = map(int, self.row("forum_posts", f"id={a['postid']}", "created, modified, userid"))
        self.assertEqual((created, puser), (p["created"], p["userid"]))
        self.assertTrue(t0 <= modified <= t1 and t0 <= int(tm) <= t1)
        self.row("logstore_standard_log", f"eventname LIKE '%discussion\\_created' AND objectid={did} "
                 f"AND userid={p['userid']}", "id")
        type(self).discussion_post = p

    def test_04_batch_with_refusals_applies_the_others(self):
        f = self.f
        locked = f["locked_discussion"]
        good1 = self.reply("student2", subject="Re: first good one")
        refused = [
            (self.post("student1", "reply", parent=locked["firstpost"], discussion=locked["id"],
                       subject="Re: Closed topic"), "discussion_locked"),
            (self.reply("suspended1", subject="Re: from a suspended account"), "user_suspended"),
            (self.reply("outsider1", subject="Re: from outside the course"), "not_enrolled"),
            (self.post("student1", "discussion", forum=f["single_forum"]["id"], subject="Second topic in a single"),
             "forum_type"),
            (self.post("student1", "reply", parent=999999, discussion=f["discussion"]["id"],
                       subject="Re: a deleted post"), "parent_missing"),
            (self.post("student1", "reply", parent=999999, discussion=999999, subject="Re: a deleted discussion"),
             "discussion_missing"),
            (self.post("student1", "discussion", forum=999999, subject="In a deleted forum"), "forum_missing"),
            (dict(self.reply("student1", subject="Re: nobody"), userid=999999), "user_missing"),
            (dict(self.reply("student1", subject="Re: malformed"), uuid="NOT-A-UUID"), "invalid"),
        ]
        good2 = self.post("student1", "reply", parent=f["single_forum"]["firstpost"],
                          discussion=f["single_forum"]["discussion"], forum=f["single_forum"]["id"],
                          subject="Re: One topic only, from the center")
        batch = [good1] + [p for p, _ in refused] + [good2]
        answers, _, _ = self.apply(*batch, raw_lines=["this is not JSON"])
        self.assert_applied(answers[0], good1)
        for (p, reason), a in zip(refused, answers[1:]):
            with self.subTest(reason=reason):
                self.assert_refused(a, p, reason)
        self.assert_applied(answers[-2], good2)
        self.assertEqual((answers[-1]["state"], answers[-1]["reason"]), ("refused", "invalid"))
        for p, a in ((good1, answers[0]), (good2, answers[-2])):
            self.assertEqual(int(self.row("forum_posts", f"id={a['postid']}", "userid")[0]), p["userid"])

    def test_05_created_in_the_future_is_clamped(self):
        p = self.reply("student1", created=int(time.time()) + 86400, subject="Re: from a fast clock")
        (a,), t0, t1 = self.apply(p)
        self.assert_applied(a, p)
        created = self.created_of(a["postid"])
        self.assertTrue(t0 <= created <= t1, f"created {created} not clamped to now [{t0}, {t1}]")
        self.assertEqual(a["created"], created)

    def test_06_created_before_its_parent_is_raised(self):
        parent = self.reply_id
        p = self.reply("student2", parent=parent, created=1000, subject="Re: from a slow clock")
        (a,), _, _ = self.apply(p)
        self.assert_applied(a, p)
        self.assertEqual(self.created_of(a["postid"]), self.created_of(parent),
                         "a reply earlier than its parent would be hidden by Moodle")

    def test_07_cutoff_date_as_of_when_the_post_was_written(self):
        c = self.f["cutoff_forum"]
        before = self.post("student1", "reply", parent=c["firstpost"], discussion=c["discussion"], forum=c["id"],
                           created=c["cutoffdate"] - 60, subject="Re: written before the cut-off")
        after = self.post("student2", "reply", parent=c["firstpost"], discussion=c["discussion"], forum=c["id"],
                          created=int(time.time()) - 5, subject="Re: written after the cut-off")
        (a, b), _, _ = self.apply(before, after)
        self.assert_applied(a, before)
        self.assertEqual(self.created_of(a["postid"]), before["created"])
        self.assert_refused(b, after, "cutoff_passed")

    def test_08_html_is_cleaned_by_moodle_when_shown(self):
        # Stored as the editor produced it; Moodle's format_text() cleans it on the page.
        msg = self.row("forum_posts", f"id={self.reply_id}", "message")[0]
        self.assertIn("<script>", msg)
        hq = self.w.hq.url
        self.b.login(hq, "student1", self.f["password"], "login at HQ")
        self.b.visit(f"{hq}/mod/forum/discuss.php?d={self.f['discussion']['id']}", "discussion at HQ",
                     expect=["Re: Welcome, from the center", "Hello HQ, bold from the center."])
        self.assertNotIn("alert('distd-xss')", self.b.source)
        # HQ is not a center: the plugin shows nothing there and its form refuses to serve.
        self.assertNotIn("local-distd", self.b.source)
        self.b.visit(f"{hq}/local/distd/post.php?reply={self.reply_id}", "the plugin's form at HQ",
                     expect=["This page is only used at a regional center."], allow_problems=True)

    def test_09_idempotency_rows_replicate_to_the_center(self):
        self.assertTrue(self.w.wait_replicated(30), "the center did not catch up with HQ")
        for p in (self.reply_post, self.discussion_post):
            hq = self.hq_sql(f"SELECT site, postid, discussionid, userid FROM mdl_local_distd_posts WHERE uuid='{p['uuid']}'")
            center = self.center_sql(
                f"SELECT site, postid, discussionid, userid FROM mdl_local_distd_posts WHERE uuid='{p['uuid']}'")
            self.assertEqual(len(hq), 1)
            self.assertEqual(center, hq, "the row the center's plugin hides the pending post by")
            self.assertEqual(self.center_sql(f"SELECT COUNT(*) FROM mdl_forum_posts WHERE id={hq[0][1]}")[0][0], "1")

    def test_10_privacy_metadata_export_and_delete(self):
        uid = self.f["users"]["student1"]["id"]
        out = self.w.hq.php_eval(f"""
use core_privacy\\local\\request\\approved_contextlist;
use local_distd\\privacy\\provider;
$sm = get_string_manager();
$missing = [];
foreach (provider::get_metadata(new \\core_privacy\\local\\metadata\\collection('local_distd'))->get_collection() as $item) {{
    foreach (array_merge([$item->get_summary()], array_values($item->get_privacy_fields())) as $id) {{
        if (!$sm->string_exists($id, 'local_distd')) {{ $missing[] = $id; }}
    }}
    $names[] = $item->get_name();
}}
$user = core_user::get_user({uid});
$contextids = provider::get_contexts_for_userid({uid})->get_contextids();
$ctx = context::instance_by_id(reset($contextids));
$userlist = new \\core_privacy\\local\\request\\userlist($ctx, 'local_distd');
provider::get_users_in_context($userlist);
provider::export_user_data(new approved_contextlist($user, 'local_distd', $contextids));
$zip = \\core_privacy\\local\\request\\writer::with_context($ctx)->finalise_content();
$exported = '';
$za = new ZipArchive(); $za->open($zip);
for ($i = 0; $i < $za->numFiles; $i++) {{ $exported .= $za->getFromIndex($i); }}
provider::delete_data_for_user(new approved_contextlist($user, 'local_distd', $contextids));
echo json_encode(['names' => $names, 'missing' => $missing, 'contexts' => count($contextids),
    'cmid' => (int) $ctx->instanceid, 'users' => $userlist->get_userids(), 'exported' => $exported]);
""")
        r = json.loads(out[out.index("{"):])
        self.assertEqual(r["missing"], [], "every privacy string exists")
        self.assertEqual(sorted(r["names"]), ["distd_outbox", "local_distd_posts"])
        self.assertGreaterEqual(r["contexts"], 1)
        self.assertIn(uid, r["users"])
        self.assertIn(self.reply_post["uuid"], r["exported"], "the export holds the user's rows")
        self.assertEqual(self.hq_sql(f"SELECT COUNT(*) FROM mdl_local_distd_posts WHERE userid={uid}")[0][0], "0")
        self.assertNotEqual(self.hq_sql("SELECT COUNT(*) FROM mdl_local_distd_posts")[0][0], "0",
                            "other authors' rows stay")

    def test_11_activity_completion_as_moodles_own_form(self):
        """A forum that completes after one post: the post from the center completes it for its author."""
        fo, s2 = self.f["forum"], self.f["users"]["student2"]
        self.w.hq.php_eval(f"""
set_config('enablecompletion', 1);
$DB->set_field('course', 'enablecompletion', 1, ['id' => {self.f['course']['id']}]);
$DB->set_field('forum', 'completionposts', 1, ['id' => {fo['id']}]);
$DB->set_field('course_modules', 'completion', 2 /* COMPLETION_TRACKING_AUTOMATIC */, ['id' => {fo['cmid']}]);
rebuild_course_cache({self.f['course']['id']}, true);
""")
        done = f"coursemoduleid={fo['cmid']} AND userid={s2['id']} AND completionstate=1"
        self.assertEqual(self.hq_sql(f"SELECT COUNT(*) FROM mdl_course_modules_completion WHERE {done}")[0][0], "0")
        p = self.reply("student2", subject="Re: completing the forum")
        answers, _, _ = self.apply(p)
        self.assert_applied(answers[0], p)
        self.assertEqual(self.hq_sql(f"SELECT COUNT(*) FROM mdl_course_modules_completion WHERE {done}")[0][0], "1",
                         "the post did not complete the forum for its author")

    def test_99_database_lost_answers_error_and_exits_non_zero(self):
        proc = subprocess.Popen(["php", *mf.PHP_INI, str(self.w.hq.www / "local/distd/cli/apply.php")],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            p1 = self.reply("student2", subject="Re: just before the database stopped")
            proc.stdin.write(json.dumps(p1) + "\n")
            proc.stdin.flush()
            a1 = json.loads(proc.stdout.readline())
            self.assert_applied(a1, p1)  # answered (flushed) before the next post is read
            self.w.hq.db.stop()
            p2 = self.reply("student2", subject="Re: while the database is down")
            proc.stdin.write(json.dumps(p2) + "\n")
            proc.stdin.flush()
            a2 = json.loads(proc.stdout.readline())
            self.assertEqual((a2["state"], a2["uuid"]), ("error", p2["uuid"]), a2)
            self.assertTrue(a2["reason_text"])
            proc.stdin.close()
            rc = proc.wait(60)
            self.assertNotEqual(rc, 0, "apply.php must exit non-zero when the database is lost")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()


if __name__ == "__main__":
    unittest.main()
