#include "distd/course/course_priority.h"

#include <dirent.h>

#include <algorithm>
#include <set>

#include "distd/course/course_publisher.h"
#include "distd/course/course_record.h"
#include "distd/db/sql_connection.h"
#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd::course {

std::optional<MoodleDbSettings> moodle_db_settings(const Config& cfg) {
  auto node = cfg.table.at_path("hq.database");
  if (!node) return std::nullopt;
  if (!node.as_table())
    throw Error(Errc::usage, "config " + cfg.file + ": [hq.database] must be a table",
                "write [hq.database] with host, port (or socket), user, password_file, database");
  MoodleDbSettings s;
  s.host = cfg.get_string("hq.database.host", s.host);
  s.port = static_cast<int>(cfg.get_int("hq.database.port", s.port));
  s.socket = cfg.get_string("hq.database.socket", "");
  s.user = cfg.require_string("hq.database.user");
  s.password = cfg.get_string("hq.database.password", "");
  if (std::string pf = cfg.get_string("hq.database.password_file"); !pf.empty())
    s.password = read_password_file(cfg.resolve(pf), "[hq.database] password file");
  s.database = cfg.get_string("hq.database.database", s.database);
  s.prefix = cfg.get_string("hq.database.prefix", s.prefix);
  for (char c : s.prefix)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_'))
      throw Error(Errc::usage, "config " + cfg.file + ": [hq.database] prefix '" + s.prefix + "' is not a table prefix",
                  "Moodle's $CFG->prefix, usually \"mdl_\"");
  return s;
}

std::vector<std::string> course_filedir_hashes(const MoodleDbSettings& db, uint64_t course_id) {
  db::ConnectParams p;
  p.host = db.host;
  p.port = db.port;
  p.socket = db.socket;
  p.user = db.user;
  p.password = db.password;
  p.database = db.database;
  db::SqlConnection c(p);
  const std::string ctx = db::quote_ident(db.prefix + "context");
  const std::string files = db::quote_ident(db.prefix + "files");
  // CONTEXT_COURSE = 50; every context below it (modules 70, blocks 80) has a path that starts
  // with the course context's path (lib/accesslib.php, context::path = "/1/<cat>/.../<id>").
  auto row = c.query_bound("SELECT id, path FROM " + ctx + " WHERE contextlevel = 50 AND instanceid = ?",
                           {std::to_string(course_id)});
  if (row.empty())
    throw Error(Errc::not_found,
                "course " + std::to_string(course_id) + " has no course context in " + p.describe() + " (" +
                    db.database + ")",
                "is [hq.database] HQ's Moodle database, and the course still there?");
  const std::string id = row[0].str({"id"});
  const std::string path = row[0].str({"path"});
  std::string like = path;
  std::string escaped;
  for (char ch : like) {
    if (ch == '%' || ch == '_' || ch == '\\') escaped += '\\';
    escaped += ch;
  }
  std::vector<std::string> out;
  c.for_each_bound("SELECT DISTINCT f.contenthash FROM " + files + " f JOIN " + ctx +
                       " x ON x.id = f.contextid WHERE f.filename <> '.' AND f.filesize > 0 AND (x.id = ?"
                       " OR x.path LIKE ?)",
                   {id, escaped + "/%"},
             [&](const db::Row& r) {
               std::string h = r.str({"contenthash"});
               if (h.size() == 40 && std::all_of(h.begin(), h.end(), [](char x) { return isxdigit(static_cast<unsigned char>(x)); }))
                 out.push_back(h);
             });
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::string> course_priority_hashes(const Config& cfg) {
  std::vector<std::string> out;
  try {
    const ChannelConfig* ch = nullptr;
    const std::string name = courses_channel_name(cfg);
    for (const auto& c : cfg.channels)
      if (c.name == name) ch = &c;
    if (!ch) return out;
    std::vector<std::string> keys = list_dir(ch->path);
    std::set<std::string> all;
    for (const auto& k : keys) {
      try {
        std::string text = read_file(ch->path + "/" + k + "/" + kPriorityName, 64ull << 20, "priority list");
        for (size_t a = 0, b; a < text.size(); a = b + 1) {
          b = text.find('\n', a);
          if (b == std::string::npos) b = text.size();
          if (b - a == 40) all.insert(text.substr(a, 40));
        }
      } catch (const Error&) {
      }
    }
    out.assign(all.begin(), all.end());
  } catch (const Error&) {
    // A courses channel that cannot be read gives no priorities; the sync goes on in size order.
    // Anything else (out of memory, a bug) is not ours to hide.
  }
  return out;
}

}  // namespace distd::course
