// publish-course --moodle DIR: Moodle's own admin/cli/backup.php makes the .mbz, then
// publish_course() publishes it (distd/course/course_publisher.h).
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "distd/course/course_publisher.h"
#include "distd/hq/settings.h"
#include "distd/io/run_command.h"
#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd::course {

CoursePublishResult publish_course_from_moodle(const Config& cfg, const MoodleBackupRequest& req,
                                               const CoursePublishOptions& opts) {
  cfg.require_role("hq", "only HQ publishes courses", "run distctl publish-course at HQ");
  if ((req.course_id == 0) == req.shortname.empty())
    throw Error(Errc::usage, "give exactly one of --course-id N and --course SHORTNAME", "");
  const std::string script = req.moodle_dir + "/admin/cli/backup.php";
  struct stat st {};
  if (::stat(script.c_str(), &st) != 0)
    throw Error(Errc::not_found, "Moodle's backup script '" + script + "' does not exist",
                "--moodle must name Moodle's code directory (the one with config.php and admin/cli/)");
  const std::string php = hq::hq_settings(cfg).php;
  make_dirs(cfg.state_dir, 0755);
  std::string tmpl = cfg.state_dir + "/moodle-backup-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw_errno("cannot create a temporary directory", tmpl, errno);
  struct Cleanup {
    std::string d;
    ~Cleanup() { remove_tree(d); }
  } cleanup{tmpl};
  const std::string dest = tmpl;
  std::vector<std::string> args = {php, script,
                                   req.course_id ? "--courseid=" + std::to_string(req.course_id)
                                                 : "--courseshortname=" + req.shortname,
                                   "--destination=" + dest};
  if (opts.log) opts.log("running " + php + " " + script + " " + args[2] + " --destination=" + dest);
  CommandResult cr = run_command(args, req.moodle_dir, dest + "/.backup-output.log", 16 << 20);
  const std::string& output = cr.output;
  if (opts.log)
    for (size_t a = 0, b; a < output.size(); a = b + 1) {
      b = output.find('\n', a);
      if (b == std::string::npos) b = output.size();
      if (b > a) opts.log("backup.php: " + output.substr(a, b - a));
    }
  int code = cr.status;
  if (code != 0)
    throw Error(Errc::io,
                "Moodle's backup (" + php + " " + script + ") failed with exit status " + std::to_string(code) +
                    (code == 127 ? " (is '" + php + "' installed? set [hq] php)" : "") + ": " + tail_lines(output, 3),
                "run the same command by hand as the web server's user to see why; nothing was published");
  std::vector<std::string> found;
  if (DIR* d = ::opendir(dest.c_str())) {
    while (auto* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 4 && n.substr(n.size() - 4) == ".mbz") found.push_back(dest + "/" + n);
    }
    ::closedir(d);
  }
  if (found.empty())
    throw Error(Errc::not_found, "Moodle's backup finished but wrote no .mbz file into " + dest,
                "check backup.php's output above; nothing was published");
  std::sort(found.begin(), found.end(), [](const std::string& a, const std::string& b) {
    struct stat sa {}, sb {};
    ::stat(a.c_str(), &sa);
    ::stat(b.c_str(), &sb);
    return sa.st_mtime > sb.st_mtime;
  });
  return publish_course(cfg, found.front(), opts);
}

}  // namespace distd::course
