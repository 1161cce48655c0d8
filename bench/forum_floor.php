<?php
// The floor peer of bench/bench_forum.py: the same posts written at HQ by one PHP process that
// calls Moodle's forum API directly, the way local_distd's adapter does per post
// (moodle/local_distd/classes/applier.php: the author's checks, forum_add_new_post /
// forum_add_discussion, the post_created / discussion_created event, completion, subscription,
// created/modified, one delegated transaction per post), but without distd, without the
// idempotency table (local_distd_posts) and without JSON lines in and out.
//
//   php bench/forum_floor.php <moodle>/config.php posts.jsonl
//
// posts.jsonl: the posts, one JSON object per line (as bench_forum.py wrote them); they are all
// read and decoded before the clock starts. Prints one JSON object: bootstrap_s (config.php),
// loop_s (the posts only), applied, refused (with the first reasons), last_postid.
// A benchmark tool, not part of the plugin: it writes real posts into the Moodle it is given.

define('CLI_SCRIPT', true);
$t0 = microtime(true);
if ($argc !== 3) {
    fwrite(STDERR, "usage: php bench/forum_floor.php <moodle>/config.php posts.jsonl\n");
    exit(1);
}
require($argv[1]);
require_once($CFG->dirroot . '/mod/forum/lib.php');
require_once($CFG->libdir . '/completionlib.php');
$tboot = microtime(true);

$posts = [];
foreach (file($argv[2], FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) as $line) {
    $posts[] = json_decode($line, true);
}

/**
 * Subscribes the author as their defaults say (the adapter's subscribe()).
 */
function floor_subscribe(stdClass $forum, stdClass $discussion, stdClass $cm): void {
    $coursecontext = context_course::instance($forum->course);
    $settings = new stdClass();
    $settings->discussionsubscribe = \mod_forum\subscriptions::get_user_default_subscription($forum,
        $coursecontext, $cm, null);
    if ($settings->discussionsubscribe) {
        forum_post_subscription($settings, $forum, $discussion);
    }
}

/**
 * One post as the adapter writes it, minus the idempotency row. Returns null or a refusal reason.
 */
function floor_write(array $post): ?string {
    global $DB, $USER;
    $user = $DB->get_record('user', ['id' => $post['userid']]);
    if (!$user || $user->deleted || $user->suspended) {
        return 'user';
    }
    $parent = $discussion = null;
    if ($post['kind'] === 'reply') {
        $parent = $DB->get_record('forum_posts', ['id' => $post['parent']], '*', MUST_EXIST);
        $discussion = $DB->get_record('forum_discussions', ['id' => $parent->discussion], '*', MUST_EXIST);
        $forumid = (int) $discussion->forum;
    } else {
        $forumid = $post['forum'];
    }
    $forum = $DB->get_record('forum', ['id' => $forumid], '*', MUST_EXIST);
    $cm = get_coursemodule_from_instance('forum', $forum->id, $forum->course, false, MUST_EXIST);
    $course = get_course($forum->course);
    $context = context_module::instance($cm->id);

    \core\session\manager::set_user($user);

    // Moodle's own checks for the author, as the adapter makes them.
    if (!is_enrolled($context, $user, '', true) && !is_viewing($context, $user)) {
        return 'not_enrolled';
    }
    $cminfo = get_fast_modinfo($course, $user->id)->get_cm($cm->id);
    if (!$cminfo->uservisible || !has_capability('mod/forum:viewdiscussion', $context)) {
        return 'no_permission';
    }
    $now = time();
    $created = min($post['created'], $now);
    if ($parent) {
        $created = max($created, (int) $parent->created);
    }
    $checkforum = clone $forum;  // the posts are taken before any cut-off (the adapter's forum_as_of())
    $checkforum->cutoffdate = 0;
    if ($post['kind'] === 'reply') {
        if (forum_discussion_is_locked($forum, $discussion) &&
                !has_capability('mod/forum:canoverridediscussionlock', $context)) {
            return 'discussion_locked';
        }
        if (!empty($parent->privatereplyto) ||
                !forum_user_can_post($checkforum, $discussion, $user, $cm, $course, $context) ||
                !forum_user_can_see_post($forum, $discussion, $parent, $user, $cm)) {
            return 'no_permission';
        }
    } else {
        $groupid = $post['groupid'] ?? -1;
        if (!groups_get_activity_groupmode($cm, $course) || $groupid == 0) {
            $groupid = -1;
        }
        if ($forum->type === 'single' || ($forum->type === 'eachuser' &&
                forum_user_has_posted_discussion($forum->id, $user->id, $groupid == -1 ? null : $groupid))) {
            return 'forum_type';
        }
        if (!forum_user_can_post_discussion($checkforum, $groupid, -1, $cm, $context)) {
            return 'no_permission';
        }
    }
    $throttle = forum_check_throttling($forum, $cm);
    if ($throttle && empty($throttle->canpost)) {
        return 'no_permission';
    }

    $completion = new completion_info($course);
    if ($post['kind'] === 'reply') {
        $record = new stdClass();
        $record->discussion = $discussion->id;
        $record->parent = $parent->id;
        $record->subject = trim($post['subject']);
        $record->message = $post['message'];
        $record->messageformat = $post['format'];
        $record->messagetrust = trusttext_trusted($context);
        $record->itemid = 0;
        $record->attachments = null;
        $record->isprivatereply = false;
        $record->deleted = 0;
        $postid = forum_add_new_post($record, null);
        $record->id = $postid;
        $event = \mod_forum\event\post_created::create(['context' => $context, 'objectid' => $postid,
            'other' => ['discussionid' => $discussion->id, 'forumid' => $forum->id, 'forumtype' => $forum->type]]);
        $event->add_record_snapshot('forum_posts', $record);
        $event->add_record_snapshot('forum_discussions', $discussion);
        $event->trigger();
        if ($completion->is_enabled($cm) && ($forum->completionreplies || $forum->completionposts)) {
            $completion->update_state($cm, COMPLETION_COMPLETE);
        }
        floor_subscribe($forum, $discussion, $cm);
    } else {
        $record = new stdClass();
        $record->course = $course->id;
        $record->forum = $forum->id;
        $record->message = $post['message'];
        $record->messageformat = $post['format'];
        $record->messagetrust = trusttext_trusted($context);
        $record->itemid = 0;
        $record->groupid = $groupid;
        $record->mailnow = 0;
        $record->subject = trim($post['subject']);
        $record->name = $record->subject;
        $record->timestart = 0;
        $record->timeend = 0;
        $record->timelocked = 0;
        $record->attachments = null;
        $record->pinned = FORUM_DISCUSSION_UNPINNED;
        $record->timenow = $created;
        $discussionid = forum_add_discussion($record, null, null, $USER->id);
        $record->id = $discussionid;
        $DB->update_record('forum_discussions', (object) ['id' => $discussionid, 'timemodified' => time()]);
        $event = \mod_forum\event\discussion_created::create(['context' => $context, 'objectid' => $discussionid,
            'other' => ['forumid' => $forum->id]]);
        $event->add_record_snapshot('forum_discussions', $record);
        $event->trigger();
        if ($completion->is_enabled($cm) && ($forum->completiondiscussions || $forum->completionposts)) {
            $completion->update_state($cm, COMPLETION_COMPLETE);
        }
        floor_subscribe($forum, $record, $cm);
        $postid = (int) $DB->get_field('forum_discussions', 'firstpost', ['id' => $discussionid]);
    }
    $DB->update_record('forum_posts', (object) ['id' => $postid, 'created' => $created, 'modified' => $now]);
    return null;
}

$admin = get_admin();
$applied = 0;
$refused = [];
$tloop = microtime(true);
foreach ($posts as $post) {
    ob_start();
    $transaction = $DB->start_delegated_transaction();
    try {
        $why = floor_write($post);
        $transaction->allow_commit();
    } catch (Throwable $e) {
        $transaction->rollback($e);
    }
    $stray = ob_get_clean();
    if ($stray !== false && $stray !== '') {
        fwrite(STDERR, $stray);
    }
    if ($why === null) {
        $applied++;
    } else if (count($refused) < 5) {
        $refused[] = $why;
    }
    \core\session\manager::set_user($admin);
}
$tend = microtime(true);
$last = (int) $DB->get_field_sql('SELECT MAX(id) FROM {forum_posts}');
echo json_encode(['bootstrap_s' => $tboot - $t0, 'loop_s' => $tend - $tloop, 'posts' => count($posts),
    'applied' => $applied, 'refused' => count($posts) - $applied, 'refusals' => $refused,
    'last_postid' => $last]), "\n";
