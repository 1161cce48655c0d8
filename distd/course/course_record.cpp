#include "distd/course/course_record.h"

#include <map>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include "manifest/digest.h"
#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/path.h"

namespace distd::course {

namespace {

std::string text_of(const pugi::xml_node& info, const char* name) {
  return info.child(name).text().as_string("");
}

}  // namespace

BackupInfo parse_backup_info(std::string_view xml, const std::string& archive) {
  pugi::xml_document doc;
  pugi::xml_parse_result pr = doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!pr)
    throw Error(Errc::corrupt,
                "course backup '" + archive + "': moodle_backup.xml is not well-formed XML: " + pr.description() +
                    " at byte " + std::to_string(pr.offset),
                "the backup is damaged; make it again with Moodle and retry (nothing was published)");
  pugi::xml_node info = doc.child("moodle_backup").child("information");
  if (!info)
    throw Error(Errc::corrupt,
                "course backup '" + archive + "': moodle_backup.xml has no <moodle_backup><information> element",
                "this is not a Moodle 2+ course backup; nothing was published");
  BackupInfo b;
  b.name = text_of(info, "name");
  b.moodle_version = text_of(info, "moodle_version");
  b.moodle_release = text_of(info, "moodle_release");
  b.backup_version = text_of(info, "backup_version");
  b.backup_release = text_of(info, "backup_release");
  b.original_wwwroot = text_of(info, "original_wwwroot");
  b.shortname = text_of(info, "original_course_shortname");
  b.fullname = text_of(info, "original_course_fullname");
  b.course_format = text_of(info, "original_course_format");
  b.type = info.child("details").child("detail").child("type").text().as_string("");
  auto number = [&](const char* name, bool required) -> uint64_t {
    std::string t = text_of(info, name);
    auto v = parse_u64(t);
    if (!v) {
      if (!required && t.empty()) return 0;
      throw Error(Errc::corrupt,
                  "course backup '" + archive + "': moodle_backup.xml has " +
                      (t.empty() ? std::string("no <") + name + ">" : std::string("<") + name + "> '" + t + "', not a number"),
                  "the backup is damaged or not a course backup; nothing was published");
    }
    return *v;
  };
  b.course_id = number("original_course_id", true);
  b.backup_date = static_cast<int64_t>(number("backup_date", true));
  b.course_contextid = number("original_course_contextid", false);
  std::string inc = text_of(info, "include_files");
  b.include_files = inc != "0";
  if (b.shortname.empty())
    throw Error(Errc::corrupt,
                "course backup '" + archive + "': moodle_backup.xml has no <original_course_shortname>",
                "the backup is damaged or not a course backup; nothing was published");
  if (!b.type.empty() && b.type != "course")
    throw Error(Errc::unsupported,
                "course backup '" + archive + "' is a backup of a single " + b.type + ", not of a course",
                "back up the whole course (admin/cli/backup.php --courseid=N)");
  return b;
}

uint64_t CourseRecord::content_bytes() const {
  uint64_t n = 0;
  for (const auto& m : members) n += m.h.size;
  return n;
}
size_t CourseRecord::file_count() const {
  size_t n = 0;
  for (const auto& m : members) n += !m.h.dir;
  return n;
}
const Member* CourseRecord::find(const std::string& path) const {
  for (const auto& m : members)
    if (m.h.path == path) return &m;
  return nullptr;
}

std::string course_key(const std::string& shortname) {
  if (shortname.empty()) throw Error(Errc::usage, "a course needs a shortname", "check moodle_backup.xml");
  std::string out;
  static const char* hex = "0123456789ABCDEF";
  for (size_t i = 0; i < shortname.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(shortname[i]);
    bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                (c == '.' && i > 0);
    if (keep) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (out.size() > kMaxComponentBytes)
    throw Error(Errc::usage, "course shortname '" + shortname + "' is too long to name a directory",
                "shorten the course's shortname in Moodle (at most ~80 characters)");
  return out;
}

namespace {

// The mtime most members have (the smallest of the most common ones; 0 without members).
int64_t common_mtime(const std::vector<Member>& members) {
  std::map<int64_t, size_t> count;
  for (const auto& m : members) ++count[m.h.mtime];
  int64_t best = 0;
  size_t most = 0;
  for (const auto& [t, n] : count)
    if (n > most) best = t, most = n;
  return best;
}

}  // namespace

std::string record_to_json(const CourseRecord& r) {
  nlohmann::ordered_json j;
  j["format"] = "distd-course 2";
  j["course"] = {{"id", r.info.course_id},
                 {"shortname", r.info.shortname},
                 {"fullname", r.info.fullname},
                 {"course_format", r.info.course_format},
                 {"contextid", r.info.course_contextid},
                 {"backup_name", r.info.name},
                 {"backup_date", r.info.backup_date},
                 {"moodle_version", r.info.moodle_version},
                 {"moodle_release", r.info.moodle_release},
                 {"backup_version", r.info.backup_version},
                 {"backup_release", r.info.backup_release},
                 {"include_files", r.info.include_files},
                 {"original_wwwroot", r.info.original_wwwroot}};
  // Moodle stamps the members with the time each was written, seconds apart, and a new backup
  // re-stamps them all: the record says one time for all (the one most members have), so a new
  // backup changes the record where its content changed (a delta of it stays small), not on
  // every member's entry. The center rebuilds every member with that time (restore ignores it).
  const int64_t mtime = common_mtime(r.members);
  j["archive"] = {{"format", format_name(r.format)}, {"name", r.archive_name}, {"size", r.archive_size},
                  {"published", format_utc(r.published)}, {"mtime", mtime}};
  auto& ms = j["members"] = nlohmann::ordered_json::array();
  for (const auto& m : r.members) {
    nlohmann::ordered_json e = {{"path", encode_path(m.h.path)},
                                {"type", m.h.dir ? "dir" : "file"},
                                {"mode", m.h.mode}};
    if (!m.h.dir) {
      e["size"] = m.h.size;
      e["digest"] = m.digest;
    }
    ms.push_back(std::move(e));
  }
  return j.dump(1, ' ', true, nlohmann::json::error_handler_t::replace) + "\n";
}

CourseRecord parse_record(std::string_view text, const std::string& name) {
  auto bad = [&](const std::string& what) {
    return Error(Errc::corrupt, "course record '" + name + "' is damaged: " + what,
                 "HQ wrote it with 'distctl publish-course'; publish the course again");
  };
  CourseRecord r;
  try {
    auto j = nlohmann::json::parse(text);
    // Format 1 gave every member its mtime; format 2 gives archive.mtime, and a member's own
    // only when it differs (docs/formats/course.md). Both are read.
    const std::string format = j.at("format").get<std::string>();
    if (format != "distd-course 1" && format != "distd-course 2") throw bad("unknown format '" + j.at("format").dump() + "'");
    const bool v1 = format == "distd-course 1";
    const auto& c = j.at("course");
    r.info.course_id = c.at("id").get<uint64_t>();
    r.info.shortname = c.at("shortname").get<std::string>();
    r.info.fullname = c.at("fullname").get<std::string>();
    r.info.course_format = c.value("course_format", "");
    r.info.course_contextid = c.value("contextid", uint64_t{0});
    r.info.name = c.value("backup_name", "");
    r.info.backup_date = c.at("backup_date").get<int64_t>();
    r.info.moodle_version = c.value("moodle_version", "");
    r.info.moodle_release = c.value("moodle_release", "");
    r.info.backup_version = c.value("backup_version", "");
    r.info.backup_release = c.value("backup_release", "");
    r.info.include_files = c.value("include_files", true);
    r.info.original_wwwroot = c.value("original_wwwroot", "");
    const auto& a = j.at("archive");
    std::string f = a.at("format").get<std::string>();
    if (f == "tar.gz") r.format = ArchiveFormat::tgz;
    else if (f == "zip") r.format = ArchiveFormat::zip;
    else throw bad("unknown archive format '" + f + "'");
    r.archive_name = a.value("name", "");
    r.archive_size = a.value("size", uint64_t{0});
    if (auto t = parse_utc(a.value("published", ""))) r.published = *t;
    const int64_t mtime = v1 ? 0 : a.at("mtime").get<int64_t>();
    for (const auto& e : j.at("members")) {
      Member m;
      auto p = decode_path(e.at("path").get<std::string>());
      if (!p || !unsafe_path_reason(*p).empty()) throw bad("unsafe member path " + e.at("path").dump());
      m.h.path = *p;
      std::string type = e.at("type").get<std::string>();
      if (type != "dir" && type != "file") throw bad("member type '" + type + "'");
      m.h.dir = type == "dir";
      m.h.mode = e.at("mode").get<uint32_t>() & 0777;
      m.h.mtime = v1 || e.contains("mtime") ? e.at("mtime").get<int64_t>() : mtime;
      if (!m.h.dir) {
        m.h.size = e.at("size").get<uint64_t>();
        m.digest = e.at("digest").get<std::string>();
        if (!parse_digest_hex(m.digest)) throw bad("member " + quote_path(m.h.path) + " has a bad digest");
      }
      r.members.push_back(std::move(m));
    }
  } catch (const nlohmann::json::exception& e) {
    throw bad(e.what());
  }
  return r;
}

}  // namespace distd::course
