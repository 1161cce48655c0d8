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

namespace local_distd\form;

defined('MOODLE_INTERNAL') || die();

require_once($CFG->libdir . '/formslib.php');

/**
 * The reply / new discussion form of a center: text only, handed to the center's distd.
 *
 * Custom data: heading (string), reply (int), forum (int).
 *
 * @package    local_distd
 * @copyright  2026 distd
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class post_form extends \moodleform {
    /** @var int The largest message distd takes ([forum] max_message_bytes, docs/formats/post.md). */
    const MAX_MESSAGE_BYTES = 65536;

    /** @var int The longest subject Moodle stores (forum_posts.subject). */
    const MAX_SUBJECT_CHARS = 255;

    /**
     * The form's fields.
     */
    protected function definition() {
        $mform = $this->_form;

        $mform->addElement('header', 'general', $this->_customdata['heading']);
        $mform->addElement('static', 'noattachments', '', get_string('form_noattachments', 'local_distd'));

        $mform->addElement('text', 'subject', get_string('subject', 'forum'), ['size' => 60,
            'maxlength' => self::MAX_SUBJECT_CHARS]);
        $mform->setType('subject', PARAM_TEXT);
        $mform->addRule('subject', get_string('required'), 'required', null, 'client');
        $mform->addRule('subject', get_string('maximumchars', '', self::MAX_SUBJECT_CHARS), 'maxlength',
            self::MAX_SUBJECT_CHARS, 'client');

        // No files: nothing could carry them to HQ (the post is text, docs/formats/post.md). No
        // autosave: the editor's drafts are written to the database, which is a replica here.
        $mform->addElement('editor', 'message', get_string('message', 'forum'), null,
            ['maxfiles' => 0, 'noclean' => false, 'trusttext' => false, 'enable_filemanagement' => false,
             'autosave' => false]);
        $mform->setType('message', PARAM_RAW);
        $mform->addRule('message', get_string('required'), 'required', null, 'client');

        $mform->addElement('hidden', 'uuid');
        $mform->setType('uuid', PARAM_ALPHANUMEXT);
        $mform->addElement('hidden', 'reply', $this->_customdata['reply']);
        $mform->setType('reply', PARAM_INT);
        $mform->addElement('hidden', 'forum', $this->_customdata['forum']);
        $mform->setType('forum', PARAM_INT);

        $this->add_action_buttons(true, get_string('form_submit', 'local_distd'));
    }

    /**
     * Checks the limits distd enforces, so a post is refused here and not after it travelled.
     *
     * @param array $data the submitted values
     * @param array $files none
     * @return array errors by field
     */
    public function validation($data, $files) {
        $errors = parent::validation($data, $files);
        $subject = trim((string) $data['subject']);
        if ($subject === '') {
            $errors['subject'] = get_string('required');
        } else if (\core_text::strlen($subject) > self::MAX_SUBJECT_CHARS) {
            $errors['subject'] = get_string('maximumchars', '', self::MAX_SUBJECT_CHARS);
        }
        $text = (string) ($data['message']['text'] ?? '');
        if (trim(strip_tags($text, '<img>')) === '') {
            $errors['message'] = get_string('required');
        } else if (strlen($text) > self::MAX_MESSAGE_BYTES) {
            $errors['message'] = get_string('message_toolong', 'local_distd', self::MAX_MESSAGE_BYTES);
        }
        if (!preg_match('/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/', (string) $data['uuid'])) {
            $errors['subject'] = get_string('form_uuid_invalid', 'local_distd');
        }
        return $errors;
    }
}
