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

namespace local_distd\privacy;

use core_privacy\local\metadata\collection;
use core_privacy\local\request\approved_contextlist;
use core_privacy\local\request\approved_userlist;
use core_privacy\local\request\contextlist;
use core_privacy\local\request\transform;
use core_privacy\local\request\userlist;
use core_privacy\local\request\writer;

/**
 * Privacy provider: the idempotency rows (local_distd_posts) and the text held by a center's distd.
 *
 * The rows live in the forum's module context (through their discussion). Deleting a row is safe
 * once its post was applied: HQ's answer is final and the center sends that post no more.
 *
 * @package    local_distd
 * @copyright  2026 distd
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class provider implements
        \core_privacy\local\metadata\provider,
        \core_privacy\local\request\plugin\provider,
        \core_privacy\local\request\core_userlist_provider {

    /** @var string The rows of a context: the discussions of the forum of a module context. */
    const CONTEXT_JOIN = '
          FROM {local_distd_posts} dp
          JOIN {forum_discussions} d ON d.id = dp.discussionid
          JOIN {course_modules} cm ON cm.instance = d.forum
          JOIN {modules} m ON m.id = cm.module AND m.name = :modname
          JOIN {context} ctx ON ctx.instanceid = cm.id AND ctx.contextlevel = :contextlevel';

    /**
     * What the plugin stores and sends.
     *
     * @param collection $collection
     * @return collection
     */
    public static function get_metadata(collection $collection): collection {
        $collection->add_database_table('local_distd_posts', [
            'site' => 'privacy:metadata:local_distd_posts:site',
            'uuid' => 'privacy:metadata:local_distd_posts:uuid',
            'postid' => 'privacy:metadata:local_distd_posts:postid',
            'discussionid' => 'privacy:metadata:local_distd_posts:discussionid',
            'userid' => 'privacy:metadata:local_distd_posts:userid',
            'timeapplied' => 'privacy:metadata:local_distd_posts:timeapplied',
        ], 'privacy:metadata:local_distd_posts');
        $collection->link_external_location('distd_outbox', [
            'userid' => 'privacy:metadata:distd_outbox:userid',
            'subject' => 'privacy:metadata:distd_outbox:subject',
            'message' => 'privacy:metadata:distd_outbox:message',
            'created' => 'privacy:metadata:distd_outbox:created',
        ], 'privacy:metadata:distd_outbox');
        return $collection;
    }

    /**
     * The forum contexts holding the user's rows.
     *
     * @param int $userid
     * @return contextlist
     */
    public static function get_contexts_for_userid(int $userid): contextlist {
        $contextlist = new contextlist();
        $contextlist->add_from_sql('SELECT ctx.id ' . self::CONTEXT_JOIN . ' WHERE dp.userid = :userid',
            ['modname' => 'forum', 'contextlevel' => CONTEXT_MODULE, 'userid' => $userid]);
        return $contextlist;
    }

    /**
     * The users with rows in a context.
     *
     * @param userlist $userlist
     */
    public static function get_users_in_context(userlist $userlist) {
        $context = $userlist->get_context();
        if (!$context instanceof \context_module) {
            return;
        }
        $userlist->add_from_sql('userid', 'SELECT dp.userid ' . self::CONTEXT_JOIN . ' WHERE ctx.id = :contextid',
            ['modname' => 'forum', 'contextlevel' => CONTEXT_MODULE, 'contextid' => $context->id]);
    }

    /**
     * Exports the user's rows, per forum.
     *
     * @param approved_contextlist $contextlist
     */
    public static function export_user_data(approved_contextlist $contextlist) {
        global $DB;
        $userid = $contextlist->get_user()->id;
        foreach ($contextlist->get_contexts() as $context) {
            if (!$context instanceof \context_module) {
                continue;
            }
            $rows = $DB->get_records_sql('SELECT dp.* ' . self::CONTEXT_JOIN .
                ' WHERE ctx.id = :contextid AND dp.userid = :userid ORDER BY dp.id',
                ['modname' => 'forum', 'contextlevel' => CONTEXT_MODULE, 'contextid' => $context->id,
                 'userid' => $userid]);
            if (!$rows) {
                continue;
            }
            $posts = [];
            foreach ($rows as $row) {
                $posts[] = (object) ['site' => $row->site, 'uuid' => $row->uuid, 'postid' => $row->postid,
                    'discussionid' => $row->discussionid, 'timeapplied' => transform::datetime($row->timeapplied)];
            }
            writer::with_context($context)->export_data([get_string('pluginname', 'local_distd')],
                (object) ['posts' => $posts]);
        }
    }

    /**
     * Deletes every row of a forum.
     *
     * @param \context $context
     */
    public static function delete_data_for_all_users_in_context(\context $context) {
        self::delete_where($context, null);
    }

    /**
     * Deletes the user's rows in the approved contexts.
     *
     * @param approved_contextlist $contextlist
     */
    public static function delete_data_for_user(approved_contextlist $contextlist) {
        $userid = (int) $contextlist->get_user()->id;
        foreach ($contextlist->get_contexts() as $context) {
            self::delete_where($context, [$userid]);
        }
    }

    /**
     * Deletes the rows of the approved users in a context.
     *
     * @param approved_userlist $userlist
     */
    public static function delete_data_for_users(approved_userlist $userlist) {
        self::delete_where($userlist->get_context(), array_map('intval', $userlist->get_userids()));
    }

    /**
     * Deletes the rows of a forum context, of the given users or of everybody.
     *
     * @param \context $context
     * @param int[]|null $userids null for every user
     */
    private static function delete_where(\context $context, ?array $userids): void {
        global $DB;
        if (!$context instanceof \context_module || $userids === []) {
            return;
        }
        $ids = $DB->get_fieldset_sql('SELECT dp.id ' . self::CONTEXT_JOIN . ' WHERE ctx.id = :contextid',
            ['modname' => 'forum', 'contextlevel' => CONTEXT_MODULE, 'contextid' => $context->id]);
        if (!$ids) {
            return;
        }
        [$insql, $params] = $DB->get_in_or_equal($ids, SQL_PARAMS_NAMED, 'row');
        if ($userids !== null) {
            [$usql, $uparams] = $DB->get_in_or_equal($userids, SQL_PARAMS_NAMED, 'user');
            $insql .= ' AND userid ' . $usql;
            $params += $uparams;
        }
        $DB->delete_records_select('local_distd_posts', 'id ' . $insql, $params);
    }
}
