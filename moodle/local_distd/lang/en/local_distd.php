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
 * English strings of local_distd.
 *
 * @package    local_distd
 * @copyright  2026 distd
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$string['cli_error'] = 'Not applied, try again later: {$a}';
$string['dismiss'] = 'Dismiss';
$string['dismissed'] = 'The refused post is no longer shown.';
$string['form_noattachments'] = 'Text only: files (attachments, uploaded images) cannot be sent from this center. The post travels to headquarters and appears here once headquarters has it.';
$string['form_reply_to'] = 'Reply to "{$a}"';
$string['form_submit'] = 'Post to forum';
$string['form_uuid_invalid'] = 'This form is damaged (no valid post identifier): open it again from the discussion.';
$string['message_toolong'] = 'The message is too long: at most {$a} bytes can be sent.';
$string['newdiscussion_in'] = 'New discussion topic in "{$a}"';
$string['notcenter'] = 'This page is only used at a regional center.';
$string['outbox_badanswer'] = 'The post service of this center (distd) gave an answer that could not be read ({$a}). Your text is still in the form: try again, or ask the center\'s administrator.';
$string['outbox_nosocket'] = 'The post service of this center (distd) is not configured (local_distd | socket). Your text is still in the form: ask the center\'s administrator.';
$string['outbox_refused'] = 'The post service of this center (distd) did not take the post: {$a}. Your text is still in the form.';
$string['outbox_unreachable'] = 'The post service of this center (distd) cannot be reached ({$a}). Your text is still in the form: try again in a moment, or ask the center\'s administrator.';
$string['pending_unavailable'] = 'Your posts waiting for headquarters cannot be shown right now: {$a}';
$string['pending_written'] = 'Written here on {$a}';
$string['pluginname'] = 'distd forum posts';
$string['postagain'] = 'Post again';
$string['postagain_gone'] = 'The text of that post is no longer held by this center.';
$string['privacy:metadata:distd_outbox'] = 'At a regional center, forum posts written there are held by the center\'s distd service until headquarters has them, then sent to headquarters.';
$string['privacy:metadata:distd_outbox:created'] = 'When the post was written.';
$string['privacy:metadata:distd_outbox:message'] = 'The text of the post.';
$string['privacy:metadata:distd_outbox:subject'] = 'The subject of the post.';
$string['privacy:metadata:distd_outbox:userid'] = 'The author.';
$string['privacy:metadata:local_distd_posts'] = 'Which forum posts arrived from a regional center, so that a post delivered twice is written once.';
$string['privacy:metadata:local_distd_posts:discussionid'] = 'The discussion of the post.';
$string['privacy:metadata:local_distd_posts:postid'] = 'The forum post written.';
$string['privacy:metadata:local_distd_posts:site'] = 'The regional center the post was written at.';
$string['privacy:metadata:local_distd_posts:timeapplied'] = 'When headquarters wrote the post.';
$string['privacy:metadata:local_distd_posts:userid'] = 'The author.';
$string['privacy:metadata:local_distd_posts:uuid'] = 'The identifier the center gave the post.';
$string['queued'] = 'Your post is queued: it will be sent to headquarters and appear here once it is back.';
$string['refused_keep'] = 'Your text, kept here: copy it, or post it again.';
$string['reason_cutoff_passed'] = 'The forum\'s cut-off date had passed.';
$string['reason_discussion_locked'] = 'The discussion is locked.';
$string['reason_discussion_missing'] = 'The discussion no longer exists.';
$string['reason_forum_missing'] = 'The forum no longer exists.';
$string['reason_forum_type'] = 'This forum does not take this kind of post: {$a}';
$string['reason_forum_type_eachuser'] = 'each person may start only one discussion here.';
$string['reason_forum_type_single'] = 'it is a single simple discussion.';
$string['reason_invalid'] = 'The post is malformed: {$a}';
$string['reason_no_permission'] = 'You are not allowed to post there.';
$string['reason_no_permission_throttled'] = 'You have posted too often in this forum; wait and post again.';
$string['reason_not_enrolled'] = 'You are not (or no longer) enrolled in the course.';
$string['reason_parent_missing'] = 'The post you replied to no longer exists.';
$string['reason_user_missing'] = 'Your account no longer exists at headquarters.';
$string['reason_user_suspended'] = 'Your account is suspended.';
$string['state_applied'] = 'Applied at HQ — on its way back';
$string['state_queued'] = 'Queued — will be sent when the link to HQ is up';
$string['state_refused'] = 'Refused by HQ: {$a}';
$string['state_sent'] = 'Sent — waiting at HQ';
