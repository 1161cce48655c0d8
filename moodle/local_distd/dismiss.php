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
 * Dismiss: the author has seen HQ's refusal; distd keeps the post but stops listing it.
 *
 * @package    local_distd
 * @copyright  2026 distd
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require(__DIR__ . '/../../config.php');

use local_distd\center;
use local_distd\outbox_client;
use local_distd\outbox_exception;

$uuid = required_param('uuid', PARAM_ALPHANUMEXT);
$returnurl = new moodle_url(required_param('returnurl', PARAM_LOCALURL));

$PAGE->set_url(new moodle_url('/local/distd/dismiss.php'));
$PAGE->set_context(context_system::instance());
require_login();
require_sesskey();
if (!center::is_center_mode()) {
    throw new moodle_exception('notcenter', 'local_distd');
}

try {
    outbox_client::from_config()->request(['op' => 'dismiss', 'userid' => (int) $USER->id, 'uuid' => $uuid]);
    redirect($returnurl, get_string('dismissed', 'local_distd'), null, \core\output\notification::NOTIFY_INFO);
} catch (outbox_exception $e) {
    redirect($returnurl, $e->getMessage(), null, \core\output\notification::NOTIFY_ERROR);
}
