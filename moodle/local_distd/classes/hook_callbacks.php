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

use core\hook\after_config;
use core\hook\output\before_footer_html_generation;

/**
 * Hook callbacks: at a center, Moodle's own reply and new-discussion entry points lead to the
 * plugin's form, and the discussion and forum pages show the author's pending posts.
 *
 * @package    local_distd
 * @copyright  2026 distd
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class hook_callbacks {
    /** @var string[] Page types that show pending posts and get the capture script. */
    const FORUM_PAGES = ['mod-forum-discuss', 'mod-forum-view'];

    /**
     * Sends mod/forum/post.php?reply=N and ?forum=N (GET, or the inline forms' POST) to the
     * plugin's form at a center: Moodle's form would write to the read-only replica.
     *
     * The text of a POSTed inline form is kept in the session so the plugin's form shows it.
     *
     * @param after_config $hook
     */
    public static function after_config(after_config $hook): void {
        global $CFG, $SCRIPT, $SESSION;

        if (during_initial_install() || !empty($CFG->upgraderunning) || CLI_SCRIPT || AJAX_SCRIPT) {
            return;
        }
        if ($SCRIPT !== '/mod/forum/post.php' || !center::is_center_mode()) {
            return;
        }
        // Edit, delete and prune (their forms carry reply and forum too): Moodle's own page says
        // what it can and cannot do on a replica.
        foreach (['edit', 'delete', 'prune'] as $action) {
            if (optional_param($action, 0, PARAM_INT)) {
                return;
            }
        }
        $reply = optional_param('reply', 0, PARAM_INT);
        $forum = optional_param('forum', 0, PARAM_INT);
        if (!$reply && !$forum) {
            return;
        }
        $subject = optional_param('subject', '', PARAM_TEXT);
        $message = optional_param_array('message', [], PARAM_RAW);
        if ($subject !== '' || !empty($message['text'])) {
            $SESSION->local_distd_prefill = [
                'subject' => $subject,
                'message' => (string) ($message['text'] ?? ''),
                'format' => (int) ($message['format'] ?? FORMAT_HTML),
            ];
        }
        $params = $reply ? ['reply' => $reply] : ['forum' => $forum];
        redirect(new \moodle_url('/local/distd/post.php', $params));
    }

    /**
     * On a discussion (pending replies) and a forum's page (pending new discussions), at a center:
     * shows the author's posts distd still holds and loads the script that sends Moodle's Reply
     * and Add discussion topic to the plugin's form instead of the web service.
     *
     * @param before_footer_html_generation $hook
     */
    public static function before_footer_html_generation(before_footer_html_generation $hook): void {
        global $PAGE, $USER;

        if (during_initial_install() || !center::is_center_mode()) {
            return;
        }
        $cm = $PAGE->cm; // A magic property: empty() would not see it.
        if (!in_array($PAGE->pagetype, self::FORUM_PAGES, true) || !$cm || !isloggedin() || isguestuser()) {
            return;
        }
        $forumid = (int) $cm->instance;
        $discussionid = $PAGE->pagetype === 'mod-forum-discuss' ? optional_param('d', 0, PARAM_INT) : 0;
        if ($PAGE->pagetype === 'mod-forum-discuss' && !$discussionid) {
            return;
        }
        $PAGE->requires->js_call_amd('local_distd/capture', 'init', [[
            'formurl' => (new \moodle_url('/local/distd/post.php'))->out(false),
            'forum' => $forumid,
        ]]);

        $context = ['posts' => [], 'haserror' => false, 'discussion' => $discussionid, 'forum' => $forumid];
        try {
            $returnurl = $discussionid
                ? new \moodle_url('/mod/forum/discuss.php', ['d' => $discussionid])
                : new \moodle_url('/mod/forum/view.php', ['f' => $forumid]);
            foreach (center::pending_posts((int) $USER->id, $discussionid, $forumid) as $post) {
                $context['posts'][] = center::export_post($post, $returnurl);
            }
        } catch (outbox_exception $e) {
            $context['haserror'] = true;
            $context['error'] = $e->detail !== '' ? $e->detail : $e->errorcode;
        }
        if (!$context['posts'] && !$context['haserror']) {
            return;
        }
        $hook->add_html($hook->renderer->render_from_template('local_distd/pending_posts', $context));
    }
}
