#include "distd/forum/settings.h"

#include "manifest/error.h"

namespace distd::forum {

ForumSettings ForumSettings::from(const Config& cfg) {
  ForumSettings s;
  s.socket = cfg.resolve(cfg.get_string("forum.socket", cfg.state_dir + "/post.sock"));
  s.socket_group = cfg.get_string("forum.socket_group");
  s.send_interval = cfg.get_int("forum.send_interval", 20);
  if (s.send_interval < 1 || s.send_interval > 86400)
    throw Error(Errc::usage, "config " + cfg.file + ": [forum] send_interval must be 1 ... 86400 seconds");
  s.moodle_dir = cfg.get_string("forum.moodle_dir");
  if (!s.moodle_dir.empty()) s.moodle_dir = cfg.resolve(s.moodle_dir);
  s.php = cfg.get_string("forum.php", "php");
  if (auto node = cfg.table.at_path("forum.apply_command")) {
    auto* arr = node.as_array();
    if (!arr || arr->empty())
      throw Error(Errc::usage, "config " + cfg.file + ": [forum] apply_command must be a list of strings",
                  "e.g. apply_command = [\"php\", \"/var/www/moodle/local/distd/cli/apply.php\"]");
    for (auto& el : *arr) {
      auto v = el.value<std::string>();
      if (!v) throw Error(Errc::usage, "config " + cfg.file + ": [forum] apply_command must be a list of strings");
      s.apply_command.push_back(*v);
    }
  }
  s.apply_interval = cfg.get_int("forum.apply_interval", 60);
  if (s.apply_interval < 1 || s.apply_interval > 86400)
    throw Error(Errc::usage, "config " + cfg.file + ": [forum] apply_interval must be 1 ... 86400 seconds");
  int64_t mm = cfg.get_int("forum.max_message_bytes", 65536);
  if (mm < 1024 || mm > 1 << 20)
    throw Error(Errc::usage, "config " + cfg.file + ": [forum] max_message_bytes must be 1024 ... 1048576");
  s.max_message_bytes = static_cast<size_t>(mm);
  s.outbox = cfg.state_dir + "/forum-outbox.db";
  s.inbox = cfg.state_dir + "/forum-inbox.db";
  return s;
}

std::vector<std::string> ForumSettings::adapter_argv() const {
  if (!apply_command.empty()) return apply_command;
  if (moodle_dir.empty())
    throw Error(Errc::usage, "HQ cannot apply forum posts: [forum] moodle_dir is not set",
                "set it to HQ's Moodle directory, which holds local/distd (docs/forum.md)");
  return {php, moodle_dir + "/local/distd/cli/apply.php"};
}

namespace {
std::string php_string(const std::string& s) {
  std::string o = "'";
  for (char c : s) {
    if (c == '\\' || c == '\'') o += '\\';
    o += c;
  }
  return o + "'";
}
}  // namespace

std::string moodle_config_lines(const Config& cfg) {
  ForumSettings fs = ForumSettings::from(cfg);
  return "// distd: forum posts written here go to this center's distd, then to HQ (docs/forum.md).\n"
         "$CFG->forced_plugin_settings['local_distd'] = ['mode' => 'center', 'socket' => " +
         php_string(fs.socket) + ", 'site' => " + php_string(cfg.site) + "];\n";
}

}  // namespace distd::forum
