<?php
// Test data for distd's Moodle fixture, made with Moodle's own generators (lib/testing/generator):
// users with bcrypt ($2y$) and SHA-512 ($6$) password hashes, a course with a forum that forces
// read tracking, a discussion with replies, a page and a file resource. Prints the facts the tests
// assert against as one JSON object on stdout.
//
// Usage: php generate.php --moodle=DIR  (DIR holds config.php)

define('CLI_SCRIPT', true);

$opts = getopt('', ['moodle:']);
require($opts['moodle'] . '/config.php');
require_once($CFG->libdir . '/clilib.php');
require_once($CFG->libdir . '/testing/generator/lib.php');
require_once($CFG->dirroot . '/mod/forum/lib.php');

\core\session\manager::set_user(get_admin());
$gen = new testing_data_generator();
$forumgen = $gen->get_plugin_generator('mod_forum');

// Read tracking that a user cannot turn off, so a discussion view writes mdl_forum_read.
set_config('forum_trackreadposts', 1);
set_config('forum_allowforcedreadtracking', 1);
// No "new login" notifications: they queue an adhoc task on every login (moodle-facts.md).
// The center's profile must work without this; HQ keeps Moodle's default here.

$password = 'Student-pw1!';
$student1 = $gen->create_user(['username' => 'student1', 'firstname' => 'Ada', 'lastname' => 'Bcrypt',
    'email' => 'student1@example.org', 'trackforums' => 1]);
$student2 = $gen->create_user(['username' => 'student2', 'firstname' => 'Grace', 'lastname' => 'Sha',
    'email' => 'student2@example.org', 'trackforums' => 1]);
$teacher = $gen->create_user(['username' => 'teacher1', 'firstname' => 'Tess', 'lastname' => 'Teacher',
    'email' => 'teacher1@example.org']);
// Set the hashes directly, as an older Moodle (bcrypt) and Moodle 4.3+ (SHA-512 crypt) stored them.
$DB->set_field('user', 'password', password_hash($password, PASSWORD_BCRYPT), ['id' => $student1->id]);
$DB->set_field('user', 'password', hash_internal_user_password($password), ['id' => $student2->id]);
$DB->set_field('user', 'password', hash_internal_user_password($password), ['id' => $teacher->id]);

$course = $gen->create_course(['fullname' => 'Physics 101', 'shortname' => 'PHY101',
    'summary' => 'Waves, optics and the rest.', 'enablecompletion' => 1]);
foreach ([$student1, $student2] as $u) {
    $gen->enrol_user($u->id, $course->id, 'student');
}
$gen->enrol_user($teacher->id, $course->id, 'editingteacher');

$forum = $gen->create_module('forum', ['course' => $course->id, 'name' => 'Questions and answers',
    'intro' => 'Ask here.', 'trackingtype' => FORUM_TRACKING_FORCED, 'type' => 'general']);
$discussion = $forumgen->create_discussion(['course' => $course->id, 'forum' => $forum->id,
    'userid' => $teacher->id, 'name' => 'Welcome to the course',
    'message' => '<p>Introduce yourselves here.</p>', 'messageformat' => FORMAT_HTML]);
$reply = $forumgen->create_post(['discussion' => $discussion->id, 'parent' => $discussion->firstpost,
    'userid' => $student1->id, 'subject' => 'Re: Welcome to the course',
    'message' => '<p>Hello from the regional center.</p>', 'messageformat' => FORMAT_HTML]);

// For the post adapter (tests/moodle/test_forum_adapter.py): a locked discussion, a forum of
// type 'single', a forum whose cut-off date has passed, a suspended user and one not enrolled.
$locked = $forumgen->create_discussion(['course' => $course->id, 'forum' => $forum->id,
    'userid' => $teacher->id, 'name' => 'Closed topic', 'message' => '<p>No more replies.</p>',
    'messageformat' => FORMAT_HTML, 'timelocked' => time() - 60]);
$single = $gen->create_module('forum', ['course' => $course->id, 'name' => 'One topic only',
    'intro' => 'A single simple discussion.', 'type' => 'single']);
$singled = $DB->get_record('forum_discussions', ['forum' => $single->id], '*', MUST_EXIST);
$cutoffdate = time() - 3600;
$cutoff = $gen->create_module('forum', ['course' => $course->id, 'name' => 'Closed for posting',
    'intro' => 'Its cut-off date has passed.', 'type' => 'general', 'cutoffdate' => $cutoffdate]);
$cutoffd = $forumgen->create_discussion(['course' => $course->id, 'forum' => $cutoff->id,
    'userid' => $teacher->id, 'name' => 'Before the cut-off', 'message' => '<p>Answer by the cut-off.</p>',
    'messageformat' => FORMAT_HTML]);
// Started two hours before the cut-off, so a reply written before it can be dated before it.
$DB->set_field('forum_posts', 'created', $cutoffdate - 7200, ['id' => $cutoffd->firstpost]);
$DB->set_field('forum_posts', 'modified', $cutoffdate - 7200, ['id' => $cutoffd->firstpost]);
$suspended = $gen->create_user(['username' => 'suspended1', 'firstname' => 'Sam', 'lastname' => 'Suspended',
    'email' => 'suspended1@example.org', 'suspended' => 1]);
$gen->enrol_user($suspended->id, $course->id, 'student');
$outsider = $gen->create_user(['username' => 'outsider1', 'firstname' => 'Otto', 'lastname' => 'Outsider',
    'email' => 'outsider1@example.org']);

$page = $gen->create_module('page', ['course' => $course->id, 'name' => 'Reading list',
    'content' => '<p>Chapter 1: standing waves.</p>', 'contentformat' => FORMAT_HTML]);

// A file resource with known bytes, so pluginfile.php can be checked against the filedir blob.
$content = "distd fixture file\n" . str_repeat("Standing waves on a string.\n", 200);
$draftid = file_get_unused_draft_itemid();
get_file_storage()->create_file_from_string(['component' => 'user', 'filearea' => 'draft',
    'contextid' => context_user::instance($USER->id)->id, 'itemid' => $draftid,
    'filename' => 'lecture-notes.txt', 'filepath' => '/'], $content);
$resource = $gen->create_module('resource', ['course' => $course->id, 'name' => 'Lecture notes',
    'files' => $draftid, 'display' => 0]);
$rcontext = context_module::instance($resource->cmid);
$file = null;
foreach (get_file_storage()->get_area_files($rcontext->id, 'mod_resource', 'content', 0, 'id', false) as $f) {
    $file = $f;
}

echo json_encode([
    'password' => $password,
    'users' => [
        'student1' => ['id' => (int)$student1->id, 'hash' => $DB->get_field('user', 'password', ['id' => $student1->id])],
        'student2' => ['id' => (int)$student2->id, 'hash' => $DB->get_field('user', 'password', ['id' => $student2->id])],
        'teacher1' => ['id' => (int)$teacher->id],
        'suspended1' => ['id' => (int)$suspended->id],
        'outsider1' => ['id' => (int)$outsider->id],
    ],
    'course' => ['id' => (int)$course->id, 'fullname' => $course->fullname, 'shortname' => $course->shortname],
    'forum' => ['id' => (int)$forum->id, 'cmid' => (int)$forum->cmid, 'name' => $forum->name],
    'discussion' => ['id' => (int)$discussion->id, 'name' => 'Welcome to the course',
        'firstpost' => (int)$discussion->firstpost, 'reply' => (int)$reply->id],
    'locked_discussion' => ['id' => (int)$locked->id, 'firstpost' => (int)$locked->firstpost],
    'single_forum' => ['id' => (int)$single->id, 'cmid' => (int)$single->cmid, 'discussion' => (int)$singled->id,
        'firstpost' => (int)$singled->firstpost],
    'cutoff_forum' => ['id' => (int)$cutoff->id, 'cmid' => (int)$cutoff->cmid, 'cutoffdate' => $cutoffdate,
        'discussion' => (int)$cutoffd->id, 'firstpost' => (int)$cutoffd->firstpost],
    'page' => ['cmid' => (int)$page->cmid, 'name' => 'Reading list'],
    'resource' => ['cmid' => (int)$resource->cmid, 'name' => 'Lecture notes', 'contextid' => (int)$rcontext->id,
        'filename' => $file->get_filename(), 'contenthash' => $file->get_contenthash(), 'size' => (int)$file->get_filesize()],
], JSON_PRETTY_PRINT) . "\n";
