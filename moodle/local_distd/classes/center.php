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

/**
 * What the plugin does at a regional center: the mode, the author's pending posts.
 *
 * At HQ (no mode set) none of this runs; the plugin only holds its table and the CLI adapter.
 *
 * @package    local_distd
 * @copyright  2026 distd
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class center {
    /** @var string[] The states a post can be in, in their order (docs/formats/post.md). */
    const STATES = ['queued', 'sent', 'applied', 'refused'];

    /**
     * Whether this Moodle is a center's (local_distd | mode is 'center', set in config.php).
     *
     * @return bool
     */
    public static function is_center_mode(): bool {
        return get_config('local_distd', 'mode') === 'center';
    }

    /**
     * This center's site id (local_distd | site), as distd stamps it on the posts.
     *
     * @return string empty when not configured
     */
    public static function site(): string {
        return (string) get_config('local_distd', 'site');
    }

    /**
     * The author's pending posts of a discussion (replies) or of a forum (new discussions), as the
     * center's distd holds them, without those whose idempotency row has replicated from HQ.
     *
     * @param int $userid the author
     * @param int $discussionid the discussion, or 0 to ask for the forum's new discussions
     * @param int $forumid the forum (used when $discussionid is 0)
     * @return array[] the posts, oldest first, each as distd answered it
     * @throws outbox_exception when distd cannot be asked
     */
    public static function pending_posts(int $userid, int $discussionid, int $forumid): array {
        global $DB;
        $request = ['op' => 'pending', 'userid' => $userid];
        if ($discussionid) {
            $request['discussion'] = $discussionid;
        } else {
            $request['forum'] = $forumid;
        }
        $answer = outbox_client::from_config()->request($request);
        $posts = [];
        foreach ($answer['posts'] ?? [] as $post) {
            if (!is_array($post) || empty($post['uuid'])) {
                continue;
            }
            $site = (string) ($post['site'] ?? self::site());
            if ($DB->record_exists('local_distd_posts', ['site' => $site, 'uuid' => (string) $post['uuid']])) {
                continue; // Back from HQ: Moodle shows the real post now.
            }
            $posts[] = $post;
        }
        return $posts;
    }

    /**
     * The text of one of the author's posts still held by distd, for "Post again".
     *
     * @param int $userid the author
     * @param string $uuid the post
     * @param int $discussionid its discussion, or 0 for a new discussion
     * @param int $forumid its forum
     * @return array|null the post (subject, message, format, ...) or null when distd has none
     */
    public static function find_pending(int $userid, string $uuid, int $discussionid, int $forumid): ?array {
        try {
            foreach (self::pending_posts($userid, $discussionid, $forumid) as $post) {
                if ($post['uuid'] === $uuid) {
                    return $post;
                }
            }
        } catch (outbox_exception $e) {
            return null;
        }
        return null;
    }

    /**
     * The template context of one pending post.
     *
     * @param array $post the post as distd answered it
     * @param \moodle_url $returnurl where Dismiss and Post again come back to
     * @return array
     */
    public static function export_post(array $post, \moodle_url $returnurl): array {
        $state = in_array($post['state'] ?? '', self::STATES, true) ? $post['state'] : 'queued';
        $uuid = (string) $post['uuid'];
        $isreply = ($post['kind'] ?? '') === 'reply';
        $reason = (string) ($post['reason_text'] ?? ($post['reason'] ?? ''));
        $again = new \moodle_url('/local/distd/post.php', $isreply
            ? ['reply' => (int) ($post['parent'] ?? 0), 'again' => $uuid]
            : ['forum' => (int) ($post['forum'] ?? 0), 'again' => $uuid]);
        $format = (int) ($post['format'] ?? FORMAT_HTML);
        return [
            'uuid' => $uuid,
            'state' => $state,
            'parent' => (int) ($post['parent'] ?? 0),
            'kind' => $isreply ? 'reply' : 'discussion',
            'subject' => format_string((string) ($post['subject'] ?? '')),
            'message' => format_text((string) ($post['message'] ?? ''), $format),
            // The text to copy: HTML as plain text (Post again prefills the editor with the HTML).
            'rawmessage' => $format == FORMAT_HTML ? html_to_text((string) ($post['message'] ?? ''), 0, false)
                : (string) ($post['message'] ?? ''),
            'created' => !empty($post['created']) ? userdate((int) $post['created']) : '',
            'statustext' => $state === 'refused'
                ? get_string('state_refused', 'local_distd', $reason)
                : get_string('state_' . $state, 'local_distd'),
            'badgeclass' => ['queued' => 'bg-info', 'sent' => 'bg-primary', 'applied' => 'bg-success',
                'refused' => 'bg-danger'][$state],
            'refused' => $state === 'refused',
            'againurl' => $again->out(false),
            'dismissurl' => (new \moodle_url('/local/distd/dismiss.php'))->out(false),
            'sesskey' => sesskey(),
            'returnurl' => $returnurl->out_as_local_url(false),
        ];
    }
}
