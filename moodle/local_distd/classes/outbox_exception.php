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
 * The center's distd could not take or answer a request.
 *
 * @package    local_distd
 * @copyright  2026 distd
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class outbox_exception extends \moodle_exception {
    /** @var string What failed, as distd or the system said it. */
    public string $detail;

    /**
     * Makes the exception from one of the plugin's lang strings.
     *
     * @param string $errorcode a local_distd lang string (outbox_*), taking the detail as {$a}
     * @param string $detail what failed, as distd or the system said it
     */
    public function __construct(string $errorcode, string $detail = '') {
        $this->detail = $detail;
        parent::__construct($errorcode, 'local_distd', '', $detail);
    }
}
