// distctl manifest build|verify|diff|show: the signed-manifest library from the command line.
#include <unistd.h>

#include <cstdio>
#include <ctime>

#include "cli/command.h"
#include "cli/json_out.h"
#include "manifest/key_record.h"
#include "cli/progress.h"
#include "manifest/diff.h"
#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/fs.h"
#include "manifest/path.h"
#include "manifest/scan.h"

namespace distd::cli {
namespace {

struct ScanArgs {
  std::vector<std::string> excludes;
  std::string preset;
  std::string special = "skip";
  std::string stat_cache;
  unsigned threads = 0;

  void add_to(CLI::App* cmd) {
    cmd->add_option("--exclude", excludes,
                    "skip paths matching PATTERN (repeatable): 'temp/' a directory at any depth, '*.tmp' a name "
                    "glob, 'a/b/' anchored at the root");
    cmd->add_option("--preset", preset, "add a preset's excludes: 'moodledata' (temp/ cache/ localcache/ sessions/ "
                                        "trashdir/ lock/ backuptempdir/ muc/ *.tmp)")
        ->check(CLI::IsMember({"moodledata"}));
    cmd->add_option("--special", special, "symlinks, devices, sockets, FIFOs: 'skip' with a warning, or 'refuse'")
        ->check(CLI::IsMember({"skip", "refuse"}))
        ->capture_default_str();
    cmd->add_option("--stat-cache", stat_cache,
                    "SQLite stat cache: files whose size, mtime, ctime and inode did not change are not hashed again");
    cmd->add_option("--threads", threads, "hashing threads (default: one per core)");
  }

  ScanOptions options() const {
    ScanOptions o;
    o.excludes = excludes;
    if (preset == "moodledata")
      o.excludes.insert(o.excludes.end(), moodledata_excludes().begin(), moodledata_excludes().end());
    o.special = special == "refuse" ? SpecialFiles::refuse : SpecialFiles::skip;
    o.stat_cache_path = stat_cache;
    o.threads = threads;
    o.warn = [](const std::string& w) { std::fprintf(stderr, "distctl: warning: %s\n", w.c_str()); };
    return o;
  }
};

std::vector<Entry> scan_with_progress(const std::string& dir, ScanOptions o, ScanStats* st) {
  ProgressLine bar("hashing");
  o.progress = [&bar](const ScanProgress& p) {
    if (p.files_to_hash)
      bar.update(p.bytes_hashed, p.bytes_to_hash,
                 std::to_string(p.files_hashed) + "/" + std::to_string(p.files_to_hash) + " files");
    else
      bar.update(0, 0, std::to_string(p.files_seen) + " files seen");
  };
  auto entries = scan_tree(dir, o, st);
  bar.finish();
  return entries;
}

// The pinned key followed through HQ's key records keys_dir/2.keys, 3.keys, ... (each verified
// against the key before it; a bad one throws as verify_key_record does). Nothing is stored.
PublicKey follow_key_records(PublicKey key, const std::string& keys_dir, uint64_t& version) {
  version = 1;
  if (keys_dir.empty()) return key;
  for (uint64_t v = 2;; ++v) {
    const std::string p = keys_dir + "/" + std::to_string(v) + ".keys";
    if (::access(p.c_str(), F_OK) != 0) return key;
    key = verify_key_record(read_file(p, kMaxKeyRecordBytes, "key record"), key, v, p).key;
    version = v;
  }
}

SignedManifest load_verified(const std::string& file, const std::string& pubkey_path, int64_t slack_days,
                             bool check_expiry, const std::string& keys_dir = {}, uint64_t* key_version = nullptr) {
  uint64_t followed = 1;
  PublicKey key = follow_key_records(load_public_key(pubkey_path), keys_dir, followed);
  if (key_version) *key_version = followed;
  std::string bytes = read_file(file, kMaxManifestBytes, "manifest");
  VerifyOptions vo;
  vo.expiry_slack_seconds = slack_days * 86400;
  vo.check_expiry = check_expiry;
  return verify_manifest(bytes, key, vo, "'" + file + "'");
}

void add_build(CLI::App* grp, Action& chosen) {
  auto* cmd = grp->add_subcommand("build", "Scan a tree and write a signed manifest of it");
  cmd->footer(
      "Example:\n  distctl manifest build /var/lib/moodledata/filedir --channel moodledata --version 7 \\\n"
      "      --previous v6.manifest --key /etc/distd/hq.key -o v7.manifest --preset moodledata\n"
      "'distctl publish' does all of this (and keeps objects) from the config; this command is the\n"
      "building block.");
  struct A {
    std::string dir, channel, key, out, previous;
    uint64_t version = 0;
    int expires_days = 90;
    bool json = false;
    ScanArgs scan;
  };
  static A a;
  cmd->add_option("DIR", a.dir, "the tree to scan")->required();
  cmd->add_option("--channel", a.channel, "channel name (letters, digits, - and _)")->required();
  cmd->add_option("--version", a.version, "version number, 1 or more; must grow with every publication")->required();
  cmd->add_option("--key", a.key, "HQ's secret key file (mode 0600)")->required();
  cmd->add_option("-o,--output", a.out, "manifest file to write")->required();
  cmd->add_option("--previous", a.previous, "the previous version's manifest, to chain to it");
  cmd->add_option("--expires", a.expires_days, "days until the manifest expires")->capture_default_str()->check(CLI::Range(1, 36500));
  cmd->add_flag("--json", a.json, "print a JSON summary on stdout");
  a.scan.add_to(cmd);
  cmd->callback([&chosen] {
    chosen = [] {
      SecretKey key = load_secret_key(a.key);
      Manifest m;
      m.channel = a.channel;
      m.version = a.version;
      m.created = static_cast<int64_t>(std::time(nullptr));
      m.expires = m.created + int64_t(a.expires_days) * 86400;
      if (!a.previous.empty()) {
        SignedManifest prev = parse_manifest(read_file(a.previous, kMaxManifestBytes, "manifest"), "'" + a.previous + "'");
        if (prev.manifest.channel != m.channel)
          throw Error(Errc::usage, "previous manifest '" + a.previous + "' is for channel '" + prev.manifest.channel + "'",
                      "pass the previous manifest of channel '" + m.channel + "'");
        if (prev.manifest.version >= m.version)
          throw Error(Errc::rollback,
                      "version " + std::to_string(m.version) + " is not newer than the previous version " +
                          std::to_string(prev.manifest.version),
                      "use --version " + std::to_string(prev.manifest.version + 1));
        m.previous = prev.body_digest;
      }
      ScanStats st;
      m.entries = scan_with_progress(a.dir, a.scan.options(), &st);
      std::string file = sign_manifest(m, key);
      write_file_atomic(a.out, file, 0644);
      if (a.json) {
        print_json({{"manifest", a.out}, {"channel", m.channel}, {"version", m.version}, {"files", st.files},
                    {"bytes", st.bytes}, {"hashed_files", st.hashed_files}, {"hashed_bytes", st.hashed_bytes},
                    {"skipped", st.skipped}, {"excluded", st.excluded},
                    {"digest", digest_hex(digest_bytes(file.substr(0, file.rfind("signature ed25519 "))))}});
      } else {
        std::printf("wrote %s: channel %s version %llu, %llu files, %s (hashed %llu files, %s; %llu skipped)\n",
                    a.out.c_str(), m.channel.c_str(), static_cast<unsigned long long>(m.version),
                    static_cast<unsigned long long>(st.files), human_bytes(st.bytes).c_str(),
                    static_cast<unsigned long long>(st.hashed_files), human_bytes(st.hashed_bytes).c_str(),
                    static_cast<unsigned long long>(st.skipped));
      }
      return 0;
    };
  });
}

void add_verify(CLI::App* grp, Action& chosen) {
  auto* cmd = grp->add_subcommand("verify", "Check a manifest's signature and expiry, and optionally a tree against it");
  cmd->footer(
      "Exit 0 only when the signature is valid, the manifest has not expired (beyond --slack-days) and,\n"
      "with --tree, the tree holds exactly the listed files with the signed digests. Otherwise one line\n"
      "on stderr says what is wrong; --json gives every difference.\n\n"
      "After HQ rotated its key, pass --keys with HQ's key records: the pinned --pubkey is followed\n"
      "through them as a center does.\n\n"
      "Example:\n  distctl manifest verify v7.manifest --pubkey /etc/distd/hq.pub --tree /srv/moodledata/filedir\n"
      "  distctl manifest verify /media/distd/channels/c/latest.manifest --pubkey /etc/distd/hq.pub \\\n"
      "      --keys /media/distd/distd-keys");
  struct A {
    std::string file, pubkey, tree, keys;
    int64_t slack_days = 0;
    bool no_expiry = false, json = false;
    ScanArgs scan;
  };
  static A a;
  cmd->add_option("FILE", a.file, "the manifest")->required();
  cmd->add_option("--pubkey", a.pubkey, "HQ's public key file (the pinned key)")->required();
  cmd->add_option("--keys", a.keys,
                  "follow HQ's key records in this directory (2.keys, 3.keys, ...: HQ's public/keys, a stick's "
                  "distd-keys) from --pubkey, and verify with the key they lead to");
  cmd->add_option("--tree", a.tree, "also check that this tree matches the manifest exactly");
  cmd->add_option("--slack-days", a.slack_days, "accept an expired manifest for this many days")->capture_default_str();
  cmd->add_flag("--ignore-expiry", a.no_expiry, "do not check the expiry date");
  cmd->add_flag("--json", a.json, "print the result as JSON on stdout");
  a.scan.add_to(cmd);
  cmd->callback([&chosen] {
    chosen = [] {
      uint64_t key_version = 1;
      SignedManifest sm = load_verified(a.file, a.pubkey, a.slack_days, !a.no_expiry, a.keys, &key_version);
      const Manifest& m = sm.manifest;
      nlohmann::json j = {{"manifest", a.file}, {"channel", m.channel},       {"version", m.version},
                          {"signature", "valid"}, {"files", m.entries.size()}, {"bytes", m.total_bytes()},
                          {"key_version", key_version}};
      int status = 0;
      std::string problem;
      if (!a.tree.empty()) {
        Manifest actual;
        actual.entries = scan_with_progress(a.tree, a.scan.options(), nullptr);
        ManifestDiff d = diff_manifests(m, actual);
        nlohmann::json diffs = nlohmann::json::array();
        auto add = [&](const char* kind, const Entry& e, const std::string& detail) {
          diffs.push_back({{"problem", kind}, {"path", encode_path(e.path)}, {"detail", detail}});
          if (problem.empty()) problem = "file " + quote_path(e.path) + " " + detail;
        };
        for (auto& [want, got] : d.changed)
          add("changed", want,
              want.size != got.size ? "changed (size " + std::to_string(got.size) + ", signed " + std::to_string(want.size) + ")"
              : want.digest != got.digest ? "changed (content differs from the signed digest)"
                                          : "changed (mode)");
        for (auto& e : d.removed) add("missing", e, "is missing");
        for (auto& [want, got] : d.moved) add("missing", want, "is missing (its content is at " + quote_path(got.path) + ")");
        for (auto& e : d.added) add("extra", e, "is not in the manifest (extra)");
        for (auto& [want, got] : d.moved) add("extra", got, "is not in the manifest (extra)");
        j["tree"] = a.tree;
        j["tree_matches"] = diffs.empty();
        j["differences"] = diffs;
        if (!diffs.empty()) {
          status = exit_status(Errc::mismatch);
          if (diffs.size() > 1) problem += " (and " + std::to_string(diffs.size() - 1) + " more differences; --json lists all)";
        }
      }
      if (a.json) print_json(j);
      if (status) {
        std::fprintf(stderr, "distctl: tree '%s' does not match %s: %s\n", a.tree.c_str(), a.file.c_str(), problem.c_str());
      } else if (!a.json) {
        std::printf("%s: valid signature by key %s; channel %s version %llu, %zu files, %s, expires %s%s\n",
                    a.file.c_str(), load_public_key(a.pubkey).short_id().c_str(), m.channel.c_str(),
                    static_cast<unsigned long long>(m.version), m.entries.size(), human_bytes(m.total_bytes()).c_str(),
                    format_utc(m.expires).c_str(), a.tree.empty() ? "" : "; the tree matches exactly");
      }
      return status;
    };
  });
}

void add_diff(CLI::App* grp, Action& chosen) {
  auto* cmd = grp->add_subcommand("diff", "Show what changed between two manifests");
  cmd->footer("Lines: '+ added', '- removed', '~ changed', '> moved old -> new'. Signatures are not checked\n"
              "(use 'manifest verify' for that). Example:\n  distctl manifest diff v6.manifest v7.manifest");
  struct A {
    std::string old_file, new_file;
    bool json = false;
  };
  static A a;
  cmd->add_option("OLD", a.old_file, "the older manifest")->required();
  cmd->add_option("NEW", a.new_file, "the newer manifest")->required();
  cmd->add_flag("--json", a.json, "print the differences as JSON");
  cmd->callback([&chosen] {
    chosen = [] {
      auto o = parse_manifest(read_file(a.old_file, kMaxManifestBytes, "manifest"), "'" + a.old_file + "'");
      auto n = parse_manifest(read_file(a.new_file, kMaxManifestBytes, "manifest"), "'" + a.new_file + "'");
      ManifestDiff d = diff_manifests(o.manifest, n.manifest);
      if (a.json) {
        nlohmann::json j = {{"old_version", o.manifest.version}, {"new_version", n.manifest.version}};
        auto arr = [](const std::vector<Entry>& v) {
          nlohmann::json x = nlohmann::json::array();
          for (auto& e : v) x.push_back(entry_json(e));
          return x;
        };
        auto pairs = [](const std::vector<std::pair<Entry, Entry>>& v) {
          nlohmann::json x = nlohmann::json::array();
          for (auto& [a1, b1] : v) x.push_back({{"old", entry_json(a1)}, {"new", entry_json(b1)}});
          return x;
        };
        j["added"] = arr(d.added);
        j["removed"] = arr(d.removed);
        j["changed"] = pairs(d.changed);
        j["moved"] = pairs(d.moved);
        print_json(j);
        return 0;
      }
      for (auto& e : d.added) std::printf("+ %s (%s)\n", encode_path(e.path).c_str(), human_bytes(e.size).c_str());
      for (auto& e : d.removed) std::printf("- %s\n", encode_path(e.path).c_str());
      for (auto& [x, y] : d.changed)
        std::printf("~ %s (%s -> %s)\n", encode_path(y.path).c_str(), human_bytes(x.size).c_str(), human_bytes(y.size).c_str());
      for (auto& [x, y] : d.moved) std::printf("> %s -> %s\n", encode_path(x.path).c_str(), encode_path(y.path).c_str());
      std::printf("%zu added, %zu removed, %zu changed, %zu moved (version %llu -> %llu)\n", d.added.size(),
                  d.removed.size(), d.changed.size(), d.moved.size(),
                  static_cast<unsigned long long>(o.manifest.version), static_cast<unsigned long long>(n.manifest.version));
      return 0;
    };
  });
}

void add_show(CLI::App* grp, Action& chosen) {
  auto* cmd = grp->add_subcommand("show", "Print a manifest's header and entries");
  cmd->footer("Without --pubkey the signature is NOT checked. Example:\n  distctl manifest show v7.manifest --pubkey hq.pub");
  struct A {
    std::string file, pubkey;
    bool json = false, header_only = false;
  };
  static A a;
  cmd->add_option("FILE", a.file, "the manifest")->required();
  cmd->add_option("--pubkey", a.pubkey, "check the signature with this public key too");
  cmd->add_flag("--json", a.json, "print as JSON");
  cmd->add_flag("--header", a.header_only, "omit the entries");
  cmd->callback([&chosen] {
    chosen = [] {
      std::string bytes = read_file(a.file, kMaxManifestBytes, "manifest");
      SignedManifest sm;
      std::string sig_state = "not checked (pass --pubkey)";
      if (!a.pubkey.empty()) {
        VerifyOptions vo;
        vo.check_expiry = false;
        sm = verify_manifest(bytes, load_public_key(a.pubkey), vo, "'" + a.file + "'");
        sig_state = "valid";
      } else {
        sm = parse_manifest(bytes, "'" + a.file + "'");
      }
      const Manifest& m = sm.manifest;
      std::string kid = digest_hex(sm.key_id);
      if (a.json) {
        nlohmann::json j = {{"channel", m.channel}, {"version", m.version}, {"created", format_utc(m.created)},
                            {"expires", format_utc(m.expires)},
                            {"previous", m.previous ? nlohmann::json(digest_hex(*m.previous)) : nlohmann::json(nullptr)},
                            {"digest", digest_hex(sm.body_digest)}, {"key_id", kid}, {"signature", sig_state},
                            {"files", m.entries.size()}, {"bytes", m.total_bytes()}};
        if (!a.header_only) {
          nlohmann::json e = nlohmann::json::array();
          for (auto& x : m.entries) e.push_back(entry_json(x));
          j["entries"] = e;
        }
        print_json(j);
        return 0;
      }
      std::printf("channel    %s\nversion    %llu\ncreated    %s\nexpires    %s\nprevious   %s\ndigest     %s\n"
                  "key id     %s %s %s %s\nsignature  %s\nentries    %zu files, %s\n",
                  m.channel.c_str(), static_cast<unsigned long long>(m.version), format_utc(m.created).c_str(),
                  format_utc(m.expires).c_str(), m.previous ? digest_hex(*m.previous).c_str() : "none (first version)",
                  digest_hex(sm.body_digest).c_str(), kid.substr(0, 4).c_str(), kid.substr(4, 4).c_str(),
                  kid.substr(8, 4).c_str(), kid.substr(12, 4).c_str(), sig_state.c_str(), m.entries.size(),
                  human_bytes(m.total_bytes()).c_str());
      if (!a.header_only)
        for (auto& e : m.entries)
          std::printf("%s %12llu %04o %s\n", digest_hex(e.digest).substr(0, 16).c_str(),
                      static_cast<unsigned long long>(e.size), e.mode, encode_path(e.path).c_str());
      return 0;
    };
  });
}

void register_manifest(CLI::App& app, Action& chosen) {
  auto* grp = app.add_subcommand("manifest", "Build, verify, compare and show signed manifests");
  grp->require_subcommand(1);
  add_build(grp, chosen);
  add_verify(grp, chosen);
  add_diff(grp, chosen);
  add_show(grp, chosen);
}

const CommandRegistrar registrar_manifest(20, register_manifest);

}  // namespace
}  // namespace distd::cli
