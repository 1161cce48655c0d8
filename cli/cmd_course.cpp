// distctl publish-course (HQ) and distctl courses (either side): Moodle course backups.
#include <cstdio>

#include "cli/command.h"
#include "cli/json_out.h"
#include "distd/config/config.h"
#include "distd/course/course_library.h"
#include "distd/course/course_publisher.h"
#include "manifest/encoding.h"
#include "manifest/error.h"

namespace distd::cli {
namespace {

nlohmann::json delta_json(const course::MemberDelta& d) { return {{"files", d.files}, {"bytes", d.bytes}}; }

void print_publish(const course::CoursePublishResult& r, bool json) {
  const auto& info = r.record.info;
  const auto& p = r.publish;
  for (const auto& w : p.warnings) std::fprintf(stderr, "distctl: warning: %s\n", w.c_str());
  if (json) {
    print_json({{"course",
                 {{"id", info.course_id},
                  {"shortname", info.shortname},
                  {"fullname", info.fullname},
                  {"backup_date", format_utc(info.backup_date)},
                  {"moodle_release", info.moodle_release},
                  {"include_files", info.include_files}}},
                {"key", r.key},
                {"archive", {{"format", course::format_name(r.record.format)}, {"size", r.record.archive_size}}},
                {"members", r.record.members.size()},
                {"files", r.record.file_count()},
                {"bytes", r.record.content_bytes()},
                {"first_version", r.first},
                {"new", delta_json(r.added)},
                {"changed", delta_json(r.changed)},
                {"unchanged", delta_json(r.unchanged)},
                {"removed", delta_json(r.removed)},
                {"priority_hashes", r.priority_hashes},
                {"staged_bytes", r.staged_bytes},
                {"channel",
                 {{"name", p.channel},
                  {"changed", p.changed},
                  {"version", p.version},
                  {"previous_version", p.previous_version},
                  {"bytes_copied", p.bytes_copied},
                  {"hashed_files", p.hashed_files},
                  {"hashed_bytes", p.hashed_bytes},
                  {"manifest", p.manifest_path}}},
                {"warnings", p.warnings}});
    return;
  }
  std::printf("course %s \"%s\" (id %llu), backup of %s, Moodle %s\n", info.shortname.c_str(), info.fullname.c_str(),
              static_cast<unsigned long long>(info.course_id), format_utc(info.backup_date).c_str(),
              info.moodle_release.c_str());
  std::printf("  archive: %s, %s; %zu members, %zu files, %s of content\n", course::format_name(r.record.format),
              human_bytes(r.record.archive_size).c_str(), r.record.members.size(), r.record.file_count(),
              human_bytes(r.record.content_bytes()).c_str());
  if (r.first)
    std::printf("  first version of this course in channel %s\n", p.channel.c_str());
  else
    std::printf("  since the backup of %s: %zu new (%s), %zu changed (%s), %zu unchanged (%s), %zu removed\n",
                format_utc(r.previous_backup_date).c_str(), r.added.files, human_bytes(r.added.bytes).c_str(),
                r.changed.files, human_bytes(r.changed.bytes).c_str(), r.unchanged.files,
                human_bytes(r.unchanged.bytes).c_str(), r.removed.files);
  if (!info.include_files)
    std::printf("  note: the backup was made without files (include_files = 0)\n");
  if (r.priority_hashes)
    std::printf("  %zu moodledata files of the course go first in the next sync and bundle\n", r.priority_hashes);
  if (p.changed)
    std::printf("published %s version %llu (%s, %s new in the object store)\n", p.channel.c_str(),
                static_cast<unsigned long long>(p.version), p.reason.c_str(), human_bytes(p.bytes_copied).c_str());
  else
    std::printf("%s unchanged, still version %llu; nothing published\n", p.channel.c_str(),
                static_cast<unsigned long long>(p.version));
}

void register_course(CLI::App& app, Action& chosen) {
  auto* cmd = app.add_subcommand("publish-course", "Publish a Moodle course backup (.mbz) to the courses channel (HQ)");
  cmd->footer(
      "Checks the whole archive (tar.gz or zip, detected by content), reads moodle_backup.xml,\n"
      "stores the course's members under its shortname in the courses channel and signs a new\n"
      "version. Regional centers fetch only members they lack and rebuild the .mbz. A damaged or\n"
      "non-Moodle archive is refused and nothing is published. See docs/courses.md.\n\n"
      "Examples:\n"
      "  distctl publish-course backup-moodle2-course-42-bio101-20241028-0933.mbz\n"
      "  distctl publish-course --moodle /var/www/moodle --course-id 42\n"
      "  distctl publish-course --moodle /var/www/moodle --course BIO101 --json");
  struct Args {
    std::string file, config, moodle, shortname, channel;
    uint64_t course_id = 0;
    bool json = false, force = false;
  };
  static Args a;
  a.config = default_config_path();
  cmd->add_option("FILE", a.file, "the course backup (.mbz)");
  cmd->add_option("-c,--config", a.config, "config file ($DISTD_CONFIG or /etc/distd/distd.toml)");
  cmd->add_option("--moodle", a.moodle, "Moodle's code directory: make the backup with its admin/cli/backup.php");
  cmd->add_option("--course-id", a.course_id, "with --moodle: the course id");
  cmd->add_option("--course", a.shortname, "with --moodle: the course shortname");
  cmd->add_option("--channel", a.channel, "the courses channel (default [hq] courses_channel or \"courses\")");
  cmd->add_flag("--json", a.json, "print the result as JSON on stdout");
  cmd->add_flag("--force", a.force, "sign a new channel version even when nothing changed");
  cmd->callback([&chosen] {
    chosen = [] {
      if (a.file.empty() == a.moodle.empty())
        throw Error(Errc::usage, "give either a .mbz FILE or --moodle DIR with --course-id N or --course SHORTNAME",
                    "see distctl publish-course --help");
      if (!a.moodle.empty() && (a.course_id == 0) == a.shortname.empty())
        throw Error(Errc::usage, "with --moodle give exactly one of --course-id N and --course SHORTNAME",
                    "see distctl publish-course --help");
      Config cfg = load_config(a.config);
      course::CoursePublishOptions opts;
      opts.channel = a.channel;
      opts.force = a.force;
      opts.log = [](const std::string& s) { std::fprintf(stderr, "distctl: %s\n", s.c_str()); };
      course::CoursePublishResult r;
      if (!a.moodle.empty()) {
        course::MoodleBackupRequest req{a.moodle, a.course_id, a.shortname};
        r = course::publish_course_from_moodle(cfg, req, opts);
      } else {
        r = course::publish_course(cfg, a.file, opts);
      }
      print_publish(r, a.json);
      return 0;
    };
  });

  auto* ls = app.add_subcommand("courses", "List the courses available at this site");
  ls->footer(
      "At a regional center: every course of the courses channel, with its backup date, size and\n"
      "whether its .mbz is rebuilt and complete ([regional] courses_dir) or still arriving, and\n"
      "the state of [regional] course_hook for its latest version. At HQ: the published courses.\n\n"
      "Examples:\n"
      "  distctl courses\n"
      "  distctl courses --json");
  struct LsArgs {
    std::string config;
    bool json = false;
  };
  static LsArgs b;
  b.config = default_config_path();
  ls->add_option("-c,--config", b.config, "config file ($DISTD_CONFIG or /etc/distd/distd.toml)");
  ls->add_flag("--json", b.json, "print the list as JSON on stdout");
  ls->callback([&chosen] {
    chosen = [] {
      Config cfg = load_config(b.config);
      auto list = course::list_courses(cfg);
      const bool regional = cfg.role == "regional";
      auto status = [&](const course::LocalCourse& c) -> std::string {
        if (!regional) return c.members_present == c.members_total ? "published" : "incomplete";
        if (c.complete) return "complete";
        if (c.members_present == c.members_total) return "arrived, not rebuilt yet";
        return "arriving " + std::to_string(c.members_present) + "/" + std::to_string(c.members_total);
      };
      if (b.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& c : list) {
          nlohmann::json j = {{"shortname", c.record.info.shortname},
                              {"fullname", c.record.info.fullname},
                              {"id", c.record.info.course_id},
                              {"backup_date", format_utc(c.record.info.backup_date)},
                              {"format", course::format_name(c.record.format)},
                              {"size", c.bytes_total},
                              {"files", c.members_total},
                              {"files_present", c.members_present},
                              {"bytes_present", c.bytes_present},
                              {"complete", regional ? c.complete : c.members_present == c.members_total},
                              {"status", status(c)}};
          if (regional) {
            j["mbz"] = c.built ? c.mbz_path : "";
            j["mbz_size"] = c.built ? c.mbz_size : 0;
            if (!c.hook.empty()) j["hook"] = c.hook;
          }
          arr.push_back(std::move(j));
        }
        print_json({{"courses", arr}});
        return 0;
      }
      if (list.empty()) {
        std::printf("no courses here yet\n");
        return 0;
      }
      std::printf("%-20s %-20s %-10s %-22s %s\n", "SHORTNAME", "BACKUP DATE", "SIZE", "STATUS", "FULLNAME");
      for (const auto& c : list) {
        std::string st = status(c);
        if (!c.hook.empty()) st += ", hook " + c.hook;
        std::printf("%-20s %-20s %-10s %-22s %s\n", c.record.info.shortname.c_str(),
                    format_utc(c.record.info.backup_date).c_str(), human_bytes(c.bytes_total).c_str(), st.c_str(),
                    c.record.info.fullname.c_str());
      }
      return 0;
    };
  });
}

const CommandRegistrar registrar_course(35, register_course);

}  // namespace
}  // namespace distd::cli
