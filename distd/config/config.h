// distd's configuration file (TOML): one file per site, every path overridable for tests.
//
//   role = "hq"                 # or "regional"
//   site = "hq"                 # this site's id (regional: e.g. "center-07")
//   state_dir = "/var/lib/distd"
//   [hq]       listen, secret_key, public_key, keep_versions, expires_days
//   [regional] hq_url, hq_public_key, expiry_slack_days, ...
//   [[channel]] name, path, exclude = [...], preset = "moodledata", link = true
//   [replica]  (see distd/replica/)
//
// Sections that belong to one engine are parsed by that engine from Config::table.
// Relative paths in the file are resolved against the file's directory.
#pragma once

#include <string>
#include <vector>
#include <toml++/toml.h>

namespace distd {

struct ChannelConfig {
  std::string name;
  std::string path;                   // HQ: the source tree; regional: where it is installed
  std::vector<std::string> excludes;  // scan exclude patterns (see manifest/scan.h)
  std::string preset;                 // "moodledata" adds Moodle's local-only directories
  bool link = false;                  // `link = true`: HQ may store objects as hard links to the sources
};

struct Config {
  std::string file;       // the file it was read from
  std::string role;       // "hq" or "regional"
  std::string site;       // site id
  std::string state_dir;  // where distd keeps its state (journal, stat caches, object store)
  std::vector<ChannelConfig> channels;
  toml::table table;      // the whole parsed file, for engine-specific sections

  // Returns the channel or throws Error{not_found} listing the configured names.
  const ChannelConfig& channel(const std::string& name) const;
  // Resolves a path from the config file relative to the file's directory.
  std::string resolve(const std::string& p) const;
  // Typed access to optional keys of a section: "hq.listen", "regional.hq_url".
  std::string get_string(const std::string& dotted, const std::string& fallback = {}) const;
  int64_t get_int(const std::string& dotted, int64_t fallback) const;
  bool get_bool(const std::string& dotted, bool fallback) const;
  // Like get_string but required: throws Error{usage} naming the key and the file.
  std::string require_string(const std::string& dotted) const;
  // Throws Error{usage} "config F has role "R"; <why>" unless role is `wanted` ("hq" or "regional").
  // The hint says which config to use; `hint` replaces it where the caller knows better.
  void require_role(const std::string& wanted, const std::string& why, const std::string& hint = {}) const;
};

// The first line of a password file (a database password kept out of the config), refusing a
// file group or others can read or write (Error{usage} with the chmod to run). what: "replica
// password file", for messages.
std::string read_password_file(const std::string& path, const std::string& what);

// Parses and validates a config file. Throws Error{usage} with the line and what to fix.
Config load_config(const std::string& path);

}  // namespace distd
