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
 * HQ's adapter: applies the posts HQ's distd hands over (docs/formats/post.md, "The PHP adapter").
 *
 * Reads one JSON post per line on stdin; writes one JSON answer per post on stdout, flushed after
 * that post's transaction has committed. Exit status: 0 at the end of the input, 1 for bad
 * arguments, 3 when the database connection is lost (the post being applied is answered error).
 *
 * @package    local_distd
 * @copyright  2026 distd
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

define('CLI_SCRIPT', true);

require(__DIR__ . '/../../../config.php');
require_once($CFG->libdir . '/clilib.php');

[$options, $unrecognised] = cli_get_params(['help' => false], ['h' => 'help']);
if ($unrecognised) {
    cli_error(get_string('cliunknowoption', 'admin', implode(', ', $unrecognised)));
}
if ($options['help']) {
    echo "Applies forum posts written at distd regional centers, as their authors.\n\n" .
        "Reads one JSON post per line on stdin, writes one JSON answer per line on stdout.\n" .
        "The format: docs/formats/post.md in distd.\n\n" .
        "Usage: php local/distd/cli/apply.php < posts.jsonl\n";
    exit(0);
}

$applier = new \local_distd\applier();
$admin = get_admin();

/**
 * Writes one answer line; whatever Moodle printed meanwhile (debugging, notices) goes to stderr,
 * so stdout holds only answers.
 *
 * @param array $answer
 */
function local_distd_cli_answer(array $answer): void {
    $stray = ob_get_clean();
    if ($stray !== false && $stray !== '') {
        fwrite(STDERR, $stray);
    }
    echo json_encode($answer, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE) . "\n";
    fflush(STDOUT);
}

while (($line = fgets(STDIN)) !== false) {
    if (trim($line) === '') {
        continue;
    }
    $post = json_decode($line, true);
    ob_start();
    try {
        $answer = $applier->apply($post);
    } catch (\Throwable $e) {
        $answer = ['uuid' => is_array($post) && is_string($post['uuid'] ?? null) ? $post['uuid'] : '',
            'site' => is_array($post) && is_string($post['site'] ?? null) ? $post['site'] : '',
            'state' => 'error', 'reason_text' => get_string('cli_error', 'local_distd', $e->getMessage())];
        $lost = false;
        try {
            $DB->get_field_sql('SELECT 1');
        } catch (\Throwable $ping) {
            $lost = true;
        }
        local_distd_cli_answer($answer);
        if ($lost) {
            fwrite(STDERR, "apply.php: the database connection is lost: " . $e->getMessage() . "\n");
            exit(3);
        }
        \core\session\manager::set_user($admin);
        continue;
    }
    local_distd_cli_answer($answer);
    \core\session\manager::set_user($admin);
}
exit(0);
