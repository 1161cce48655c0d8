// distctl keygen: create HQ's (or a site's) Ed25519 key pair.
#include <cstdio>

#include "cli/command.h"
#include "manifest/keys.h"

namespace distd::cli {
namespace {

void register_keygen(CLI::App& app, Action& chosen) {
  auto* cmd = app.add_subcommand("keygen", "Create an Ed25519 key pair for signing manifests");
  cmd->footer(
      "The secret key is written with mode 0600 and is never overwritten. Copy only the public key to\n"
      "the regional centers ([regional] hq_public_key) and compare its key id by eye.\n\n"
      "Example:\n  distctl keygen --secret /etc/distd/hq.key --public /etc/distd/hq.pub");
  static std::string secret, pub;
  cmd->add_option("--secret", secret, "where to write the secret key (mode 0600)")->required();
  cmd->add_option("--public", pub, "where to write the public key")->required();
  cmd->callback([&chosen] {
    chosen = [] {
      KeyPair kp = generate_keypair();
      write_keypair(kp, secret, pub);
      std::printf("wrote secret key %s (mode 0600) and public key %s\nkey id: %s\n", secret.c_str(), pub.c_str(),
                  kp.pub.short_id().c_str());
      return 0;
    };
  });
}

const CommandRegistrar registrar_keygen(10, register_keygen);

}  // namespace
}  // namespace distd::cli
