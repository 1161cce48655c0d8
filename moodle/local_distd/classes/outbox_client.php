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
 * The plugin's side of the local channel to the center's distd (docs/formats/post.md): one
 * request per connection on a Unix stream socket, one JSON line out, one JSON line back.
 *
 * @package    local_distd
 * @copyright  2026 distd
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class outbox_client {
    /** @var int Seconds to wait for distd to accept the connection and to answer. */
    const TIMEOUT = 5;

    /** @var string Path of distd's Unix socket. */
    private string $socket;

    /**
     * Makes a client for the given socket.
     *
     * @param string $socket path of the Unix socket ([forum] socket in distd.toml)
     */
    public function __construct(string $socket) {
        $this->socket = $socket;
    }

    /**
     * The client for this site's configured socket (local_distd | socket).
     *
     * @return self
     * @throws outbox_exception when no socket is configured
     */
    public static function from_config(): self {
        $socket = (string) get_config('local_distd', 'socket');
        if ($socket === '') {
            throw new outbox_exception('outbox_nosocket');
        }
        return new self($socket);
    }

    /**
     * Sends one request and returns distd's answer.
     *
     * @param array $request the request object, with its op
     * @return array the answer, whose ok is true
     * @throws outbox_exception when distd cannot be reached, does not answer in time, answers
     *         something that is not JSON, or answers ok:false (its error is in the exception)
     */
    public function request(array $request): array {
        $errno = 0;
        $errstr = '';
        $stream = @stream_socket_client('unix://' . $this->socket, $errno, $errstr, self::TIMEOUT);
        if ($stream === false) {
            throw new outbox_exception('outbox_unreachable', $this->socket . ': ' . $errstr);
        }
        try {
            stream_set_timeout($stream, self::TIMEOUT);
            $line = json_encode($request, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE) . "\n";
            $written = 0;
            while ($written < strlen($line)) {
                $n = @fwrite($stream, substr($line, $written));
                if ($n === false || $n === 0) {
                    throw new outbox_exception('outbox_unreachable', $this->socket . ': write failed');
                }
                $written += $n;
            }
            $answer = fgets($stream);
            if ($answer === false) {
                $meta = stream_get_meta_data($stream);
                $why = !empty($meta['timed_out']) ? 'no answer within ' . self::TIMEOUT . ' s' : 'connection closed';
                throw new outbox_exception('outbox_unreachable', $this->socket . ': ' . $why);
            }
        } finally {
            fclose($stream);
        }
        $decoded = json_decode($answer, true);
        if (!is_array($decoded)) {
            throw new outbox_exception('outbox_badanswer', trim(substr($answer, 0, 200)));
        }
        if (empty($decoded['ok'])) {
            $error = isset($decoded['error']) ? (string) $decoded['error'] : '';
            throw new outbox_exception('outbox_refused', $error);
        }
        return $decoded;
    }
}
