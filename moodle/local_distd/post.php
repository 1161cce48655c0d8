<?php
// This file is part of Moodle - https://moodle.org/
//
// Moodle is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// Moodle is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <https://www.gnu.org/licenses/>.

/**
 * A center's reply / new discussion form: Moodle's permission checks (read-only), then the post
 * goes to the center's distd, which takes it to HQ (docs/formats/post.md).
 *
 * post.php?reply=POSTID or post.php?forum=FORUMID; again=UUID prefills the text of a post
 * distd still holds (Post again, under a new UUID).
 *
 * @package    local_distd
 * @copyright  2026 distd
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require(__DIR__ . '/../../config.php');
require_once($CFG->dirroot . '/mod/forum/lib.php');

use local_distd\center;
use local_distd\form\post_form;
use local_distd\outbox_client;
use local_distd\outbox_exception;

$reply = optional_param('reply', 0, PARAM_INT);
$forumid = optional_param('forum', 0, PARAM_INT);
$again = optional_param('again', '', PARAM_ALPHANUMEXT);

if ($reply) {
    $parent = $DB->get_record('forum_posts', ['id' => $reply, 'deleted' => 0]);
    if (!$parent) {
        throw new moodle_exception('invalidparentpostid', 'forum');
    }
    $discussion = $DB->get_record('forum_discussions', ['id' => $parent->discussion], '*', MUST_EXIST);
    $forum = $DB->get_record('forum', ['id' => $discussion->forum], '*', MUST_EXIST);
} else {
    $parent = null;
    $discussion = null;
    $forum = $DB->get_record('forum', ['id' => $forumid], '*', MUST_EXIST);
}
[$course, $cm] = get_course_and_cm_from_instance($forum, 'forum');
$context = context_module::instance($cm->id);

$params = $reply ? ['reply' => $reply] : ['forum' => $forum->id];
$PAGE->set_url(new moodle_url('/local/distd/post.php', $params));
require_login($course, false, $cm);
$PAGE->set_context($context);

if (!center::is_center_mode()) {
    throw new moodle_exception('notcenter', 'local_distd');
}

// Moodle's own checks, as mod/forum/post.php makes them (they only read).
if ($reply) {
    if (!empty($parent->privatereplyto) || !forum_user_can_post($forum, $discussion, $USER, $cm, $course, $context)) {
        throw new moodle_exception('nopostforum', 'forum');
    }
    $returnurl = new moodle_url('/mod/forum/discuss.php', ['d' => $discussion->id]);
    $heading = get_string('form_reply_to', 'local_distd', format_string($parent->subject));
    $groupid = (int) $discussion->groupid;
} else {
    $groupid = groups_get_activity_groupmode($cm) ? (int) groups_get_activity_group($cm) : -1;
    if (!forum_user_can_post_discussion($forum, $groupid, -1, $cm, $context)) {
        throw new moodle_exception('cannotcreatediscussion', 'forum');
    }
    $groupid = $groupid ?: -1;
    $returnurl = new moodle_url('/mod/forum/view.php', ['f' => $forum->id]);
    $heading = get_string('newdiscussion_in', 'local_distd', format_string($forum->name));
}

$PAGE->set_title($heading);
$PAGE->set_heading(format_string($course->fullname));
$PAGE->navbar->add($heading);

$mform = new post_form($PAGE->url, ['heading' => $heading, 'reply' => $reply, 'forum' => (int) $forum->id]);

if ($mform->is_cancelled()) {
    redirect($returnurl);
}

if ($data = $mform->get_data()) {
    $post = [
        'uuid' => $data->uuid,
        'userid' => (int) $USER->id,
        'kind' => $reply ? 'reply' : 'discussion',
        'parent' => $reply ? (int) $parent->id : 0,
        'discussion' => $reply ? (int) $discussion->id : 0,
        'forum' => (int) $forum->id,
        'groupid' => $reply ? 0 : $groupid,
        'subject' => trim($data->subject),
        'message' => $data->message['text'],
        'format' => (int) $data->message['format'],
    ];
    try {
        $answer = outbox_client::from_config()->request(['op' => 'submit', 'post' => $post]);
        $target = $reply ? new moodle_url($returnurl, null, 'local-distd-' . $data->uuid) : $returnurl;
        redirect($target, get_string('queued', 'local_distd'), null, \core\output\notification::NOTIFY_SUCCESS);
    } catch (outbox_exception $e) {
        // The form shows again with what was typed (the submitted values win over defaults).
        \core\notification::error($e->getMessage());
    }
} else if (!$mform->is_submitted()) {
    $defaults = [
        'uuid' => \core\uuid::generate(),
        'subject' => '',
        'message' => ['text' => '', 'format' => FORMAT_HTML],
    ];
    if ($reply) {
        $strre = get_string('re', 'forum');
        $defaults['subject'] = (strpos($parent->subject, $strre) === 0) ? $parent->subject : $strre . ' ' . $parent->subject;
    }
    if ($again !== '') {
        $old = center::find_pending((int) $USER->id, $again, $reply ? (int) $discussion->id : 0, (int) $forum->id);
        if ($old) {
            $defaults['subject'] = (string) $old['subject'];
            $defaults['message'] = ['text' => (string) $old['message'], 'format' => (int) ($old['format'] ?? FORMAT_HTML)];
        } else {
            \core\notification::warning(get_string('postagain_gone', 'local_distd'));
        }
    } else if (!empty($SESSION->local_distd_prefill)) {
        // The text of Moodle's in-page form, posted to mod/forum/post.php and sent here.
        $defaults['subject'] = $SESSION->local_distd_prefill['subject'] ?: $defaults['subject'];
        $defaults['message'] = ['text' => $SESSION->local_distd_prefill['message'],
            'format' => $SESSION->local_distd_prefill['format']];
        unset($SESSION->local_distd_prefill);
    }
    $mform->set_data($defaults);
}

echo $OUTPUT->header();
$mform->display();
echo $OUTPUT->footer();
