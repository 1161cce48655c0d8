#include "distd/config/config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>

#include "distd/config/known_keys.h"
#include "manifest/error.h"
#include "manifest/fs.h"
#include "manifest/request_auth.h"

namespace distd {

const ChannelConfig& Config::channel(const std::string& name) const {
  std::string names;
  for (const auto& c : channels) {
    if (c.name == name) return c;
    names += (names.empty() ? "" : ", ") + c.name;
  }
  throw Error(Errc::not_found, "channel '" + name + "' is not configured in " + file,
              names.empty() ? "add a [[channel]] section" : "configured channels: " + names);
}

std::string Config::resolve(const std::string& p) const {
  if (p.empty() || p[0] == '/') return p;
  return dir_name(file) + "/" + p;
}

std::string Config::get_string(const std::string& dotted, const std::string& fallback) const {
  auto node = table.at_path(dotted);
  if (!node) return fallback;
  if (auto s = node.value<std::string>()) return *s;
  throw Error(Errc::usage, "config " + file + ": '" + dotted + "' must be a string", "quote the value");
}

int64_t Config::get_int(const std::string& dotted, int64_t fallback) const {
  auto node = table.at_path(dotted);
  if (!node) return fallback;
  if (auto v = node.value<int64_t>()) return *v;
  throw Error(Errc::usage, "config " + file + ": '" + dotted + "' must be an integer", "write a plain number");
}

bool Config::get_bool(const std::string& dotted, bool fallback) const {
  auto node = table.at_path(dotted);
  if (!node) return fallback;
  if (auto v = node.value<bool>()) return *v;
  throw Error(Errc::usage, "config " + file + ": '" + dotted + "' must be true or false", "write true or false, unquoted");
}

void Config::require_role(const std::string& wanted, const std::string& why, const std::string& hint) const {
  if (role == wanted) return;
  throw Error(Errc::usage, "config " + file + " has role \"" + role + "\"; " + why,
              !hint.empty()        ? hint
              : wanted == "hq"     ? std::string("use HQ's config (role = \"hq\")")
                                   : std::string("use the regional center's config (role = \"regional\")"));
}

std::string Config::require_string(const std::string& dotted) const {
  std::string v = get_string(dotted);
  if (v.empty())
    throw Error(Errc::usage, "config " + file + " has no '" + dotted + "'", "add it to the config file");
  return v;
}

std::string read_password_file(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_errno("stat " + what, path, errno);
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw Error(Errc::usage,
                "the " + what + " '" + path + "' has mode " + mode + ": it is readable or writable by group or others",
                "run: chmod 600 '" + path + "' (and chown it to distd's user)");
  }
  std::string data = read_file(path, 4096, what);
  auto nl = data.find_first_of("\r\n");
  if (nl != std::string::npos) data.resize(nl);
  return data;
}

Config load_config(const std::string& path) {
  Config cfg;
  cfg.file = path;
  try {
    cfg.table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    if (e.description().find("could not be opened") != std::string_view::npos ||
        e.description().find("File could not") != std::string_view::npos)
      throw Error(Errc::not_found, "cannot read config file '" + path + "'",
                  "pass --config FILE or set DISTD_CONFIG; see docs/config.md");
    throw Error(Errc::usage,
                "config " + path + " line " + std::to_string(e.source().begin.line) + ": " +
                    std::string(e.description()),
                "fix the TOML syntax at that line");
  }
  check_known_keys(cfg.table, path);
  cfg.role = cfg.get_string("role");
  if (cfg.role != "hq" && cfg.role != "regional")
    throw Error(Errc::usage, "config " + path + ": role must be \"hq\" or \"regional\", not \"" + cfg.role + "\"",
                "set role = \"hq\" at headquarters, role = \"regional\" at a regional center");
  cfg.site = cfg.get_string("site", cfg.role);
  if (!valid_site_id(cfg.site))
    throw Error(Errc::usage, "config " + path + ": site '" + cfg.site + "' is not a site id",
                "use 1 to 128 letters, digits, '.', '_' or '-' (e.g. \"center-07\"): it names the site in signed "
                "requests, sticks, posts and HQ's enrolment file <sites_dir>/<site>.pub");
  cfg.state_dir = cfg.resolve(cfg.require_string("state_dir"));
  if (auto arr = cfg.table["channel"].as_array()) {
    for (auto& node : *arr) {
      auto* t = node.as_table();
      if (!t) throw Error(Errc::usage, "config " + path + ": [[channel]] must be a table");
      ChannelConfig ch;
      ch.name = (*t)["name"].value_or(std::string{});
      ch.path = cfg.resolve((*t)["path"].value_or(std::string{}));
      ch.preset = (*t)["preset"].value_or(std::string{});
      if (auto ex = (*t)["exclude"].as_array())
        for (auto& e : *ex)
          if (auto s = e.value<std::string>()) ch.excludes.push_back(*s);
      if (ch.name.empty() || ch.path.empty())
        throw Error(Errc::usage, "config " + path + ": every [[channel]] needs a name and a path");
      for (char c : ch.name)
        if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'))
          throw Error(Errc::usage, "config " + path + ": channel name '" + ch.name + "' may use only letters, digits, - and _");
      for (auto& other : cfg.channels)
        if (other.name == ch.name) throw Error(Errc::usage, "config " + path + ": channel '" + ch.name + "' appears twice");
      if (auto link = (*t)["link"]) {
        auto b = link.value<bool>();
        if (!b)
          throw Error(Errc::usage, "config " + path + ": channel '" + ch.name + "': link must be true or false",
                      "write link = true (hard links into an immutable source tree) or leave it out");
        ch.link = *b;
      }
      cfg.channels.push_back(std::move(ch));
    }
  }
  return cfg;
}

}  // namespace distd
