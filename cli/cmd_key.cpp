// distctl key rotate: replace HQ's signing key; centers follow by link and by stick.
#include <cstdio>

#include "cli/command.h"
#include "cli/json_out.h"
#include "distd/config/config.h"
#include "distd/hq/key_rotation.h"

namespace distd::cli {
namespace {

void register_key(CLI::App& app, Action& chosen) {
  auto* key = app.add_subcommand("key", "Manage HQ's signing key (HQ)");
  key->require_subcommand(1);
  auto* cmd = key->add_subcommand("rotate", "Replace HQ's signing key with a new one that centers follow");
  cmd->footer(
      "Creates a new key pair, publishes key record N (public/keys/<N>.keys: the new key, revoking\n"
      "the old one, signed by both), installs the new pair at [hq] secret_key and [hq] public_key,\n"
      "keeps the old secret key as <secret_key>.retired-<key id> (mode 0600), and re-signs every\n"
      "published channel. Centers follow the record before their next sync, or from the next stick\n"
      "(distctl bundle export carries every record), and from then on refuse the old key.\n"
      "Nothing to change at the centers: they keep pinning the first key.\n\n"
      "Interrupted (a crash, a power cut)? Run it again: it finishes the rotation it finds half done\n"
      "and rotates no further. It waits for no publish: while one runs it fails with exit 16 (busy).\n"
      "Run as root, the new secret key goes to the owner of HQ's state directory (the user distd\n"
      "runs as). See docs/hq.md \"Rotating the signing key\".\n\n"
      "Example:\n  sudo distctl key rotate --config /etc/distd/distd.toml");
  struct Args {
    std::string config;
    bool json = false;
  };
  static Args a;
  a.config = default_config_path();
  cmd->add_option("-c,--config", a.config, "config file ($DISTD_CONFIG or /etc/distd/distd.toml)");
  cmd->add_flag("--json", a.json, "print the result as JSON on stdout");
  cmd->callback([&chosen] {
    chosen = [] {
      Config cfg = load_config(a.config);
      hq::RotationResult r = hq::rotate_signing_key(cfg, [](const std::string& line) {
        if (!a.json) std::printf("%s\n", line.c_str());
      });
      if (a.json) {
        nlohmann::json channels = nlohmann::json::array();
        for (const auto& c : r.channels)
          channels.push_back({{"channel", c.channel}, {"version", c.version}, {"reason", c.reason}});
        print_json({{"record_version", r.record_version},
                    {"record", r.record_path},
                    {"old_key_id", short_key_id(r.old_key_id)},
                    {"new_key_id", r.new_key.short_id()},
                    {"retired_secret_key", r.retired_secret},
                    {"resumed", r.resumed},
                    {"channels", channels}});
        return 0;
      }
      std::printf("HQ's signing key is now %s (key record %llu: %s)\n", r.new_key.short_id().c_str(),
                  static_cast<unsigned long long>(r.record_version), r.record_path.c_str());
      std::printf("  old key %s revoked; its secret is kept as %s\n", short_key_id(r.old_key_id).c_str(),
                  r.retired_secret.c_str());
      std::printf("  %zu channels re-signed; centers follow before their next sync or from the next stick\n",
                  r.channels.size());
      return 0;
    };
  });
}

const CommandRegistrar registrar_key(12, register_key);

}  // namespace
}  // namespace distd::cli
