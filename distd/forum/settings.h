// The [forum] section of distd.toml, typed, with its defaults in one place (docs/forum.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "distd/config/config.h"

namespace distd::forum {

struct ForumSettings {
  // center
  std::string socket;              // the plugin's local channel; default <state_dir>/post.sock
  std::string socket_group;        // group allowed to connect (the web server's); empty: distd's own
  int64_t send_interval = 20;      // seconds between sends while posts wait and the link is up
  // HQ
  std::string moodle_dir;          // HQ's Moodle code (holds local/distd/cli/apply.php)
  std::string php = "php";
  std::vector<std::string> apply_command;  // overrides "php <moodle_dir>/local/distd/cli/apply.php"
  int64_t apply_interval = 60;     // seconds between attempts on posts that wait (HQ's database down)
  // both
  size_t max_message_bytes = 65536;
  std::string outbox, inbox;       // <state_dir>/forum-outbox.db, forum-inbox.db

  // Throws Error{usage} naming the key and what to write.
  static ForumSettings from(const Config& cfg);
  // The adapter's command line; throws Error{usage} when neither moodle_dir nor apply_command is set.
  std::vector<std::string> adapter_argv() const;
};

// The lines for the center's Moodle config.php that put local_distd in center mode (printed by
// `distctl replica moodle-config`): $CFG->forced_plugin_settings['local_distd'] = [...].
std::string moodle_config_lines(const Config& cfg);

}  // namespace distd::forum
