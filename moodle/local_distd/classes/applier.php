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

namespace local_distd;

defined('MOODLE_INTERNAL') || die();

global $CFG;
require_once($CFG->dirroot . '/mod/forum/lib.php');
require_once($CFG->libdir . '/completionlib.php');

/**
 * HQ's side: writes one post that a center sent, once, as its author, through mod/forum's API
 * (docs/formats/post.md, "The PHP adapter").
 *
 * The same checks and side effects as mod_forum_external::add_discussion_post and
 * ::add_discussion (events, completion, subscription, read tracking), then created/modified per
 * the contract and the idempotency row (site, uuid), all in one delegated transaction.
 *
 * Cut-off policy. A forum's cut-off date (forum.cutoffdate) may pass while a post travels (a
 * link down for days, a stick in a bag). A post that its center took before the cut-off is
 * accepted: the check is made as of the post's created time (the center's clock, signed by the
 * enrolled site's key, never later than HQ's now). A post taken at or after the cut-off is
 * refused as cutoff_passed unless the author may override it (mod/forum:canoverridecutoff),
 * as Moodle's own form does. Moodle's other time rules (a discussion locked by inactivity,
 * lockdiscussionafter; a teacher's lock) are applied as they stand when the post is applied.
 *
 * Not thread safe; one applier per process. Changes $USER (set_user) for each post.
 *
 * @package    local_distd
 * @copyright  2026 distd
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class applier {
    /** @var string[] The refusal reasons of the contract. */
    const REASONS = ['forum_missing', 'discussion_missing', 'parent_missing', 'discussion_locked',
        'cutoff_passed', 'user_missing', 'user_suspended', 'not_enrolled', 'no_permission', 'forum_type', 'invalid'];

    /** @var int[] Moodle's text formats a post may carry (FORMAT_MOODLE, _HTML, _PLAIN, _MARKDOWN). */
    const FORMATS = [0, 1, 2, 4];

    /** @var int Largest message in bytes ([forum] max_message_bytes). */
    const MAX_MESSAGE_BYTES = 65536;

    /** @var \stdClass|null The author of the post being applied, for the language of refusals. */
    private ?\stdClass $author = null;

    /**
     * Applies one post, or answers for it when it was applied before.
     *
     * @param mixed $post the decoded JSON object of one post (an array), as distd sends it
     * @return array the answer line's object: uuid, site, state (applied or refused) and the
     *         fields of that state
     * @throws \Throwable on any failure that is not a refusal (database, coding): nothing of the
     *         post is written then; the caller answers error
     */
    public function apply($post): array {
        global $DB;
        $this->author = null;
        if (!is_array($post)) {
            return ['uuid' => '', 'site' => ''] + $this->refusal('invalid', 'not a JSON object');
        }
        $answer = ['uuid' => is_string($post['uuid'] ?? null) ? $post['uuid'] : '',
            'site' => is_string($post['site'] ?? null) ? $post['site'] : ''];
        if (($why = self::invalid($post)) !== null) {
            return $answer + $this->refusal('invalid', $why);
        }

        $transaction = $DB->start_delegated_transaction();
        try {
            $row = $DB->get_record('local_distd_posts', ['site' => $post['site'], 'uuid' => $post['uuid']]);
            $result = $row ? $this->duplicate($row) : $this->write($post);
            $transaction->allow_commit();
        } catch (\Throwable $e) {
            // Rethrows $e once the transaction is rolled back.
            $transaction->rollback($e);
        }
        return $answer + $result;
    }

    /**
     * Why a post is malformed, or null when it is well formed.
     *
     * @param array $post
     * @return string|null
     */
    public static function invalid(array $post): ?string {
        $ints = ['userid', 'parent', 'discussion', 'forum', 'format', 'created'];
        foreach ($ints as $field) {
            if (!isset($post[$field]) || !is_int($post[$field])) {
                return "$field: an integer is required";
            }
        }
        if (isset($post['groupid']) && !is_int($post['groupid'])) {
            return 'groupid: an integer is required';
        }
        foreach (['uuid', 'site', 'kind', 'subject', 'message'] as $field) {
            if (!isset($post[$field]) || !is_string($post[$field])) {
                return "$field: a string is required";
            }
        }
        if (!preg_match('/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/', $post['uuid'])) {
            return 'uuid: not an RFC 4122 UUID in lower case';
        }
        if ($post['site'] === '' || \core_text::strlen($post['site']) > 64) {
            return 'site: 1 to 64 characters';
        }
        if ($post['kind'] !== 'reply' && $post['kind'] !== 'discussion') {
            return 'kind: "reply" or "discussion"';
        }
        if ($post['kind'] === 'reply' && $post['parent'] <= 0) {
            return 'parent: a reply needs the post it answers';
        }
        if ($post['kind'] === 'discussion' && $post['forum'] <= 0) {
            return 'forum: a discussion needs its forum';
        }
        $subject = trim($post['subject']);
        if ($subject === '' || \core_text::strlen($subject) > 255) {
            return 'subject: 1 to 255 characters';
        }
        if (strlen($post['message']) > self::MAX_MESSAGE_BYTES) {
            return 'message: more than ' . self::MAX_MESSAGE_BYTES . ' bytes';
        }
        if (!in_array($post['format'], self::FORMATS, true)) {
            return 'format: not one of Moodle\'s text formats';
        }
        if ($post['userid'] <= 0 || $post['created'] <= 0) {
            return 'userid and created: positive integers';
        }
        return null;
    }

    /**
     * The answer for a post applied before.
     *
     * @param \stdClass $row its local_distd_posts row
     * @return array
     */
    private function duplicate(\stdClass $row): array {
        global $DB;
        $written = $DB->get_record('forum_posts', ['id' => $row->postid], 'id, created, modified');
        return ['state' => 'applied', 'postid' => (int) $row->postid, 'discussion' => (int) $row->discussionid,
            'created' => (int) ($written->created ?? $row->timeapplied),
            'modified' => (int) ($written->modified ?? $row->timeapplied), 'duplicate' => true];
    }

    /**
     * Checks the post as Moodle would for its author now and writes it.
     *
     * @param array $post a well-formed post
     * @return array the answer's state and fields
     */
    private function write(array $post): array {
        global $DB;

        $user = $DB->get_record('user', ['id' => $post['userid']]);
        if (!$user || $user->deleted || isguestuser($user)) {
            return $this->refusal('user_missing');
        }
        $this->author = $user;
        if ($user->suspended || $user->auth === 'nologin') {
            return $this->refusal('user_suspended');
        }

        $parent = $discussion = null;
        if ($post['kind'] === 'reply') {
            $parent = $DB->get_record('forum_posts', ['id' => $post['parent']]);
            if (!$parent) {
                if ($post['discussion'] > 0 && !$DB->record_exists('forum_discussions', ['id' => $post['discussion']])) {
                    return $this->refusal('discussion_missing');
                }
                return $this->refusal('parent_missing');
            }
            if ($parent->deleted) {
                return $this->refusal('parent_missing');
            }
            $discussion = $DB->get_record('forum_discussions', ['id' => $parent->discussion]);
            if (!$discussion) {
                return $this->refusal('discussion_missing');
            }
            $forumid = (int) $discussion->forum;
        } else {
            $forumid = $post['forum'];
        }
        $forum = $DB->get_record('forum', ['id' => $forumid]);
        $cm = $forum ? get_coursemodule_from_instance('forum', $forum->id, $forum->course) : false;
        if (!$cm || !empty($cm->deletioninprogress)) {
            return $this->refusal('forum_missing');
        }
        $course = get_course($forum->course);
        $context = \context_module::instance($cm->id);

        \core\session\manager::set_user($user);

        // Suspended enrolments and enrolments that ended count as not enrolled, as in forum_user_can_post().
        if (!is_enrolled($context, $user, '', true) && !is_viewing($context, $user)) {
            return $this->refusal('not_enrolled');
        }
        $cminfo = get_fast_modinfo($course, $user->id)->get_cm($cm->id);
        if (!$cminfo->uservisible || !has_capability('mod/forum:viewdiscussion', $context)) {
            return $this->refusal('no_permission');
        }

        $now = time();
        $created = min($post['created'], $now);
        if ($parent) {
            $created = max($created, (int) $parent->created);
        }
        $checkforum = $this->forum_as_of($forum, $created, $context);

        if ($post['kind'] === 'reply') {
            if (forum_discussion_is_locked($forum, $discussion) &&
                    !has_capability('mod/forum:canoverridediscussionlock', $context)) {
                return $this->refusal('discussion_locked');
            }
            if (!$checkforum) {
                return $this->refusal('cutoff_passed');
            }
            if (!empty($parent->privatereplyto) ||
                    !forum_user_can_post($checkforum, $discussion, $user, $cm, $course, $context) ||
                    !forum_user_can_see_post($forum, $discussion, $parent, $user, $cm)) {
                return $this->refusal('no_permission');
            }
        } else {
            if (!$checkforum) {
                return $this->refusal('cutoff_passed');
            }
            $groupid = $post['groupid'] ?? -1;
            if (!groups_get_activity_groupmode($cm, $course) || $groupid == 0) {
                $groupid = -1;
            }
            if ($forum->type === 'single') {
                return $this->refusal('forum_type', $this->text('reason_forum_type_single'));
            }
            if ($forum->type === 'eachuser' && forum_user_has_posted_discussion($forum->id, $user->id,
                    $groupid == -1 ? null : $groupid)) {
                return $this->refusal('forum_type', $this->text('reason_forum_type_eachuser'));
            }
            if (!forum_user_can_post_discussion($checkforum, $groupid, -1, $cm, $context)) {
                return $this->refusal('no_permission');
            }
        }
        $throttle = forum_check_throttling($forum, $cm);
        if ($throttle && empty($throttle->canpost)) {
            return $this->refusal('no_permission', null, 'reason_no_permission_throttled');
        }

        if ($post['kind'] === 'reply') {
            [$postid, $discussionid] = $this->add_reply($post, $parent, $discussion, $forum, $course, $cm, $context);
        } else {
            [$postid, $discussionid] = $this->add_discussion($post, $groupid, $forum, $course, $cm, $context, $created);
        }
        // Moodle stamped now: keep when it was written (never before its parent), modified now
        // so that search indexes it.
        $DB->update_record('forum_posts', (object) ['id' => $postid, 'created' => $created, 'modified' => $now]);
        $DB->insert_record('local_distd_posts', (object) ['site' => $post['site'], 'uuid' => $post['uuid'],
            'postid' => $postid, 'discussionid' => $discussionid, 'userid' => $user->id, 'timeapplied' => $now]);
        return ['state' => 'applied', 'postid' => $postid, 'discussion' => $discussionid,
            'created' => $created, 'modified' => $now, 'duplicate' => false];
    }

    /**
     * The forum record to make Moodle's checks with, as of the time the post was written.
     *
     * @param \stdClass $forum
     * @param int $created when the post was written (already clamped to now)
     * @param \context_module $context
     * @return \stdClass|null null when the cut-off had passed for this author
     */
    private function forum_as_of(\stdClass $forum, int $created, \context_module $context): ?\stdClass {
        if (empty($forum->cutoffdate) || $created < $forum->cutoffdate) {
            // Written before the cut-off: Moodle's checks must not apply today's clock to it.
            $asof = clone $forum;
            $asof->cutoffdate = 0;
            return $asof;
        }
        return has_capability('mod/forum:canoverridecutoff', $context) ? $forum : null;
    }

    /**
     * Writes a reply as mod_forum_external::add_discussion_post does.
     *
     * @return int[] the post id and its discussion id
     */
    private function add_reply(array $post, \stdClass $parent, \stdClass $discussion, \stdClass $forum,
            \stdClass $course, \stdClass $cm, \context_module $context): array {
        $record = new \stdClass();
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

        $completion = new \completion_info($course);
        if ($completion->is_enabled($cm) && ($forum->completionreplies || $forum->completionposts)) {
            $completion->update_state($cm, COMPLETION_COMPLETE);
        }
        $this->subscribe($forum, $discussion, $cm);
        return [(int) $postid, (int) $discussion->id];
    }

    /**
     * Writes a new discussion as mod_forum_external::add_discussion does, dated when it was written.
     *
     * @return int[] the first post's id and the discussion id
     */
    private function add_discussion(array $post, int $groupid, \stdClass $forum, \stdClass $course,
            \stdClass $cm, \context_module $context, int $created): array {
        global $DB, $USER;
        $record = new \stdClass();
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
        // The discussion's last activity is now, as for a reply (forum_add_new_post()).
        $DB->update_record('forum_discussions', (object) ['id' => $discussionid, 'timemodified' => time()]);

        $event = \mod_forum\event\discussion_created::create(['context' => $context, 'objectid' => $discussionid,
            'other' => ['forumid' => $forum->id]]);
        $event->add_record_snapshot('forum_discussions', $record);
        $event->trigger();

        $completion = new \completion_info($course);
        if ($completion->is_enabled($cm) && ($forum->completiondiscussions || $forum->completionposts)) {
            $completion->update_state($cm, COMPLETION_COMPLETE);
        }
        $this->subscribe($forum, $record, $cm);
        return [(int) $DB->get_field('forum_discussions', 'firstpost', ['id' => $discussionid]), (int) $discussionid];
    }

    /**
     * Subscribes the author to the discussion as their defaults say (forum_post_subscription()).
     *
     * @param \stdClass $forum
     * @param \stdClass $discussion
     * @param \stdClass $cm
     */
    private function subscribe(\stdClass $forum, \stdClass $discussion, \stdClass $cm): void {
        $coursecontext = \context_course::instance($forum->course);
        $settings = new \stdClass();
        $settings->discussionsubscribe = \mod_forum\subscriptions::get_user_default_subscription($forum,
            $coursecontext, $cm, null);
        if ($settings->discussionsubscribe) {
            forum_post_subscription($settings, $forum, $discussion);
        }
    }

    /**
     * A refusal answer, its text in the author's language when the author is known.
     *
     * @param string $reason one of self::REASONS
     * @param string|null $detail the detail ({$a}) of the reason's text
     * @param string|null $stringid the lang string, when not reason_<reason>
     * @return array
     */
    private function refusal(string $reason, ?string $detail = null, ?string $stringid = null): array {
        return ['state' => 'refused', 'reason' => $reason,
            'reason_text' => $this->text($stringid ?? 'reason_' . $reason, $detail)];
    }

    /**
     * One of the plugin's strings in the author's language (the site's when unknown).
     *
     * @param string $id
     * @param string|null $a
     * @return string
     */
    private function text(string $id, ?string $a = null): string {
        $lang = $this->author->lang ?? null;
        return get_string_manager()->get_string($id, 'local_distd', $a, $lang ?: null);
    }
}
