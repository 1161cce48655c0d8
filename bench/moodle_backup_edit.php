<?php
// Helper of bench/bench_moodle_backup.sh: shapes a real Moodle course with Moodle's own PHP API.
//
//   php moodle_backup_edit.php --moodle=DIR --course=ID --step=setup   # before backup v1
//   php moodle_backup_edit.php --moodle=DIR --course=ID --step=edit    # between v1 and v2
//
// setup: a teacher (benchteacher, editing teacher) adds what a real course has beside the
//   generator's random .dat files: a folder of handouts (text, CSV, HTML) and a discussion forum
//   with a few text posts.
// edit: the same teacher, as a teacher would between two backups: edits one forum post's
//   message, starts a discussion with a ~100 KB attachment and replies to it, replaces one file
//   of the handouts folder with a new one, adds a new file resource (~200 KB of mixed text).
// Text is English from Moodle's own language strings (lang/en), shuffled with a fixed seed, and
// numbers; so runs are reproducible and the text compresses like prose, not like repeats.
// Prints one JSON object (what was done) on stdout.

define('CLI_SCRIPT', true);
$opts = getopt('', ['moodle:', 'course:', 'step:']);
require($opts['moodle'] . '/config.php');
require_once($CFG->libdir . '/clilib.php');
require_once($CFG->libdir . '/testing/generator/lib.php');
require_once($CFG->dirroot . '/mod/forum/lib.php');
require_once($CFG->dirroot . '/course/lib.php');

$courseid = (int)$opts['course'];
$course = $DB->get_record('course', ['id' => $courseid], '*', MUST_EXIST);
$gen = new testing_data_generator();
$fs = get_file_storage();

// English sentences from lang/en/*.php, in a seeded order.
function bench_strings() {
    global $CFG;
    static $all = null;
    if ($all === null) {
        $all = [];
        foreach (['admin', 'moodle', 'forum', 'grades', 'question', 'backup', 'role', 'calendar'] as $f) {
            $string = [];
            $path = ($f === 'forum') ? "$CFG->dirroot/mod/forum/lang/en/forum.php" : "$CFG->dirroot/lang/en/$f.php";
            include($path);
            foreach ($string as $v) {
                $v = trim(preg_replace('/\s+/', ' ', strip_tags($v)));
                if (strlen($v) > 20) {
                    $all[] = $v;
                }
            }
        }
    }
    return $all;
}

// About $bytes of mixed text: paragraphs of shuffled sentences, now and then a table of figures.
function bench_text($seed, $bytes, $html = false) {
    $s = bench_strings();
    mt_srand($seed);
    $out = '';
    $n = 0;
    while (strlen($out) < $bytes) {
        $para = [];
        for ($i = 0, $k = mt_rand(3, 8); $i < $k; $i++) {
            $para[] = $s[mt_rand(0, count($s) - 1)];
        }
        $p = implode(' ', $para);
        $out .= $html ? "<p>" . htmlspecialchars($p) . "</p>\n" : wordwrap($p, 78) . "\n\n";
        if (++$n % 6 == 0) {  // a small table of measurements
            $out .= $html ? "<table>\n" : '';
            for ($r = 0; $r < 8; $r++) {
                $row = sprintf('%d; %.3f; %.2f; %d', mt_rand(1, 9999), mt_rand() / mt_getrandmax() * 100,
                    mt_rand(-5000, 5000) / 100, mt_rand(0, 1 << 20));
                $out .= $html ? "<tr><td>" . str_replace('; ', '</td><td>', $row) . "</td></tr>\n" : $row . "\n";
            }
            $out .= $html ? "</table>\n" : "\n";
        }
    }
    return substr($out, 0, $bytes);
}

function bench_csv($seed, $rows) {
    mt_srand($seed);
    $out = "student,week,quiz,assignment,attendance,comment\n";
    $s = bench_strings();
    for ($i = 0; $i < $rows; $i++) {
        $out .= sprintf("s%05d,%d,%.1f,%.1f,%d%%,\"%s\"\n", mt_rand(1, 99999), mt_rand(1, 14),
            mt_rand(0, 1000) / 10, mt_rand(0, 1000) / 10, mt_rand(40, 100),
            substr($s[mt_rand(0, count($s) - 1)], 0, 60));
    }
    return $out;
}

// A draft area of the current user holding $files (name => content): its itemid.
function bench_draft(array $files) {
    global $USER;
    $fs = get_file_storage();
    $draft = file_get_unused_draft_itemid();
    foreach ($files as $name => $content) {
        $fs->create_file_from_string(['component' => 'user', 'filearea' => 'draft',
            'contextid' => context_user::instance($USER->id)->id, 'itemid' => $draft,
            'filename' => $name, 'filepath' => '/'], $content);
    }
    return $draft;
}

function bench_forum($course, $name) {
    global $DB;
    return $DB->get_record('forum', ['course' => $course->id, 'name' => $name], '*', MUST_EXIST);
}

$done = [];
if ($opts['step'] === 'setup') {
    \core\session\manager::set_user(get_admin());
    $teacher = $gen->create_user(['username' => 'benchteacher', 'firstname' => 'Tina', 'lastname' => 'Teacher',
        'email' => 'benchteacher@example.org']);
    $gen->enrol_user($teacher->id, $course->id, 'editingteacher');
    $students = [];
    for ($i = 1; $i <= 5; $i++) {
        $u = $gen->create_user(['username' => "benchstudent$i", 'email' => "benchstudent$i@example.org"]);
        $gen->enrol_user($u->id, $course->id, 'student');
        $students[] = $u;
    }
    \core\session\manager::set_user($teacher);
    $handouts = [
        'syllabus.txt' => bench_text(11, 40000),
        'week01-notes.html' => bench_text(12, 60000, true),
        'week02-notes.html' => bench_text(13, 60000, true),
        'marks-2025.csv' => bench_csv(14, 1500),
        'reading-list.txt' => bench_text(15, 12000),
    ];
    $folder = $gen->create_module('folder', ['course' => $course->id, 'name' => 'Handouts',
        'intro' => '<p>Notes and sheets for every week.</p>', 'files' => bench_draft($handouts)], ['section' => 1]);
    $forum = $gen->create_module('forum', ['course' => $course->id, 'name' => 'Class discussion',
        'intro' => '<p>Questions about the lectures.</p>', 'type' => 'general'], ['section' => 1]);
    $forumgen = $gen->get_plugin_generator('mod_forum');
    for ($d = 0; $d < 4; $d++) {
        $disc = $forumgen->create_discussion(['course' => $course->id, 'forum' => $forum->id,
            'userid' => $teacher->id, 'name' => "Week " . ($d + 1) . " questions",
            'message' => bench_text(100 + $d, 1500, true), 'messageformat' => FORMAT_HTML]);
        foreach ($students as $k => $u) {
            $forumgen->create_post(['discussion' => $disc->id, 'parent' => $disc->firstpost, 'userid' => $u->id,
                'subject' => "Re: Week " . ($d + 1) . " questions",
                'message' => bench_text(200 + 10 * $d + $k, 700, true), 'messageformat' => FORMAT_HTML]);
        }
    }
    $done = ['teacher' => (int)$teacher->id, 'folder_cmid' => (int)$folder->cmid, 'forum_cmid' => (int)$forum->cmid,
        'handouts' => array_map('strlen', $handouts)];
} else if ($opts['step'] === 'edit') {
    $teacher = $DB->get_record('user', ['username' => 'benchteacher'], '*', MUST_EXIST);
    \core\session\manager::set_user($teacher);
    $forum = bench_forum($course, 'Class discussion');
    $cm = get_coursemodule_from_instance('forum', $forum->id, $course->id, false, MUST_EXIST);

    // 1. Edit one forum post's message (the first reply of "Week 2 questions").
    $disc = $DB->get_record('forum_discussions', ['forum' => $forum->id, 'name' => 'Week 2 questions'], '*', MUST_EXIST);
    $posts = $DB->get_records('forum_posts', ['discussion' => $disc->id, 'parent' => $disc->firstpost], 'id', 'id, message');
    $post = reset($posts);
    $newmsg = $post->message . '<p><em>Edited by the teacher:</em> ' . htmlspecialchars(bench_text(301, 400)) . '</p>';
    forum_update_post((object)['id' => $post->id, 'message' => $newmsg, 'messageformat' => FORMAT_HTML,
        'itemid' => file_get_unused_draft_itemid()], null);
    $done['edited_post'] = ['id' => (int)$post->id, 'bytes_before' => strlen($post->message), 'bytes_after' => strlen($newmsg)];

    // 2. A new discussion with a ~100 KB attachment, and a reply to it.
    $attachment = bench_text(401, 100 * 1024);
    $discussion = (object)['course' => $course->id, 'forum' => $forum->id, 'name' => 'Exam preparation',
        'message' => '<p>The revision sheet is attached; ask your questions below.</p>',
        'messageformat' => FORMAT_HTML, 'messagetrust' => 0, 'mailnow' => 0, 'groupid' => -1,
        'timestart' => 0, 'timeend' => 0, 'pinned' => 0,
        'itemid' => file_get_unused_draft_itemid(), 'attachments' => bench_draft(['revision-sheet.txt' => $attachment])];
    $discid = forum_add_discussion($discussion, true);
    $first = $DB->get_field('forum_discussions', 'firstpost', ['id' => $discid], MUST_EXIST);
    $replyid = forum_add_new_post((object)['discussion' => $discid, 'parent' => $first, 'course' => $course->id,
        'forum' => $forum->id, 'subject' => 'Re: Exam preparation',
        'message' => '<p>' . htmlspecialchars(bench_text(402, 600)) . '</p>', 'messageformat' => FORMAT_HTML,
        'messagetrust' => 0, 'itemid' => file_get_unused_draft_itemid()], null);
    $done['new_discussion'] = ['id' => (int)$discid, 'attachment_bytes' => strlen($attachment), 'reply' => (int)$replyid];

    // 3. Replace one file of the handouts folder with a new one (same name, new content).
    $folder = $DB->get_record('folder', ['course' => $course->id, 'name' => 'Handouts'], '*', MUST_EXIST);
    $fcm = get_coursemodule_from_instance('folder', $folder->id, $course->id, false, MUST_EXIST);
    $fctx = context_module::instance($fcm->id);
    $old = $fs->get_file($fctx->id, 'mod_folder', 'content', 0, '/', 'week02-notes.html');
    $oldhash = $old->get_contenthash();
    $old->delete();
    $newnotes = bench_text(501, 64000, true);
    $new = $fs->create_file_from_string(['contextid' => $fctx->id, 'component' => 'mod_folder', 'filearea' => 'content',
        'itemid' => 0, 'filepath' => '/', 'filename' => 'week02-notes.html', 'userid' => $teacher->id], $newnotes);
    $DB->set_field('folder', 'revision', $folder->revision + 1, ['id' => $folder->id]);
    $DB->set_field('folder', 'timemodified', time(), ['id' => $folder->id]);
    $done['replaced_file'] = ['name' => 'week02-notes.html', 'old' => $oldhash, 'new' => $new->get_contenthash(),
        'bytes' => strlen($newnotes)];

    // 4. A new file resource of ~200 KB, mixed text.
    $notes = bench_text(601, 200 * 1024);
    $res = $gen->create_module('resource', ['course' => $course->id, 'name' => 'Lecture notes, complete',
        'files' => bench_draft(['lecture-notes-complete.txt' => $notes]), 'display' => 0], ['section' => 2]);
    $done['new_resource'] = ['cmid' => (int)$res->cmid, 'bytes' => strlen($notes)];
    rebuild_course_cache($course->id, true);
} else {
    cli_error('--step=setup|edit');
}
echo json_encode($done) . "\n";
