#include "distd/replica/moodle_site.h"

#include <cctype>
#include <regex>
#include <sstream>

#include "distd/io/pause.h"
#include "distd/io/run_command.h"
#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd::replica {

const std::vector<MoodleSetting>& center_moodle_settings() {
  static const std::vector<MoodleSetting> s = {
      {"forcedefaultmymoodle", "1",
       "without it a user's first visit to the Dashboard copies the default page into mdl_my_pages and "
       "mdl_block_instances (my_copy_page() in my/lib.php), which are HQ's tables"},
  };
  return s;
}

std::string moodle_config_snippet() {
  std::ostringstream o;
  o << "// distd: this Moodle runs on a replica of HQ's database (distctl replica moodle-config).\n";
  o << "// Put these lines before require_once(__DIR__ . '/lib/setup.php');\n";
  for (auto& m : center_moodle_settings())
    o << "$CFG->" << m.name << " = " << m.value << ";  // " << m.why << "\n";
  return o.str();
}

std::vector<Finding> check_moodle_config(const ReplicaConfig& rc) {
  if (rc.moodle_dir.empty())
    throw Error(Errc::usage, "replica.moodle_dir is not set",
                "set it to the center's Moodle code directory (the one with config.php), e.g. /var/www/moodle");
  const std::string path = rc.moodle_dir + "/config.php";
  std::string text = read_file(path, 1 << 20, "Moodle config.php");
  std::vector<Finding> out;
  for (auto& m : center_moodle_settings()) {
    // The last assignment wins in PHP; comments are not assignments.
    std::regex re("^[ \\t]*\\$CFG->" + m.name + "[ \\t]*=[ \\t]*([^;]*);", std::regex::multiline);
    std::string value;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it)
      value = (*it)[1].str();
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.pop_back();
    bool ok = value == m.value || (m.value == "1" && (value == "true" || value == "TRUE"));
    if (ok) continue;
    out.push_back({"moodle-config", "error",
                   value.empty() ? path + " does not set $CFG->" + m.name + ": " + m.why
                                 : path + " sets $CFG->" + m.name + " = " + value + " (needs " + m.value + "): " + m.why,
                   "add to " + path + " before require_once(...lib/setup.php): $CFG->" + m.name + " = " + m.value +
                       ";  (distctl replica moodle-config prints every line)"});
  }
  return out;
}

std::string cache_fingerprint(db::SqlConnection& db, const ReplicaConfig& rc) {
  std::string list;
  for (auto& t : rc.cache_watch_tables)
    list += (list.empty() ? "" : ", ") + db::quote_ident(rc.database) + "." + db::quote_ident(rc.prefix + t);
  if (list.empty()) return {};
  std::string fp;
  for (auto& row : db.query("CHECKSUM TABLE " + list))
    fp += row.str({"Table"}) + "=" + row.str({"Checksum"}, "missing") + ";";
  return fp;
}

namespace {

std::string state_file(const Config& cfg) { return cfg.state_dir + "/replica/moodle-cache.fingerprint"; }

}  // namespace

CachePurge purge_caches_if_changed(const Config& cfg, const ReplicaConfig& rc, bool force, bool dry_run) {
  if (rc.moodle_dir.empty() && rc.moodle_purge_command.empty())
    throw Error(Errc::usage, "replica.moodle_dir is not set, so distd cannot purge the center's Moodle caches",
                "set replica.moodle_dir to the center's Moodle code directory (or replica.moodle_purge_command)");
  CachePurge r;
  db::SqlConnection db(rc.conn);
  r.fingerprint = cache_fingerprint(db, rc);
  std::string last;
  try {
    last = read_file(state_file(cfg), 1 << 16, "cache fingerprint");
  } catch (const Error&) {
  }
  r.changed = last != r.fingerprint;
  r.command = rc.moodle_purge_command;
  if (r.command.empty())
    r.command = {rc.php, rc.moodle_dir + "/admin/cli/purge_caches.php", "--muc"};
  if ((!r.changed && !force) || dry_run) return r;
  make_dirs(cfg.state_dir + "/replica", 0750);
  auto res = run_command(r.command, rc.moodle_dir, cfg.state_dir + "/replica/.purge-output", 64 << 10);
  r.output = tail_lines(res.output, 5);
  if (res.status != 0) {
    std::string cmd;
    for (auto& a : r.command) cmd += (cmd.empty() ? "" : " ") + a;
    throw Error(Errc::io,
                "purging the center's Moodle caches failed: '" + cmd + "' exited " + std::to_string(res.status) +
                    (res.status == 127 ? " (program not found)" : "") + ": " + r.output,
                "run the same command by hand as the web server's user; set replica.php or "
                "replica.moodle_purge_command if it needs another program or user (e.g. sudo -u www-data)");
  }
  write_file_atomic(state_file(cfg), r.fingerprint, 0640);
  r.purged = true;
  return r;
}

void watch_moodle_caches(const Config& cfg, const std::atomic<bool>& stop,
                         const std::function<void(const std::string&)>& say) {
  ReplicaConfig rc = load_replica_config(cfg, false);
  if (!rc.present || (rc.moodle_dir.empty() && rc.moodle_purge_command.empty())) return;
  std::string last_error;
  while (!stop.load()) {
    try {
      auto r = purge_caches_if_changed(cfg, rc, false);
      if (r.purged) say("purged the center's Moodle caches: HQ's settings, roles or capabilities changed");
      if (!last_error.empty()) say("Moodle cache watch works again");
      last_error.clear();
    } catch (const Error& e) {
      std::string msg = std::string("warning: Moodle cache watch: ") + e.what();
      if (msg != last_error) say(msg + (e.hint().empty() ? "" : " (what to do: " + e.hint() + ")"));
      last_error = msg;
    }
    sleep_unless_stopped(&stop, static_cast<double>(rc.cache_watch_seconds));
  }
}

}  // namespace distd::replica
