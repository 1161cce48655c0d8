// distctl publish: scan a channel at HQ and, when it changed, publish the next signed version.
#include <chrono>
#include <cstdio>

#include "cli/command.h"
#include "cli/json_out.h"
#include "cli/progress.h"
#include "distd/config/config.h"
#include "distd/hq/publisher.h"
#include "manifest/encoding.h"

namespace distd::cli {
namespace {

std::string with_commas(uint64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

void register_publish(CLI::App& app, Action& chosen) {
  auto* cmd = app.add_subcommand("publish", "Publish the next version of a channel (HQ)");
  cmd->footer(
      "Rescans the channel's source tree (files whose stat did not change are not hashed again),\n"
      "stores new content in the object store, and writes manifest version N+1, signed with\n"
      "[hq] secret_key and chained to version N. When nothing changed no version is written and\n"
      "the exit status is 0. Old versions beyond [hq] keep_versions and their objects are removed.\n"
      "See docs/hq.md.\n\n"
      "Examples:\n"
      "  distctl publish --channel moodledata\n"
      "  distctl publish --channel courses --config /etc/distd/distd.toml --json");
  struct Args {
    std::string channel, config;
    bool json = false, force = false;
  };
  static Args a;
  a.config = default_config_path();
  cmd->add_option("--channel", a.channel, "the channel to publish (a [[channel]] name in the config)")->required();
  cmd->add_option("-c,--config", a.config, "config file ($DISTD_CONFIG or /etc/distd/distd.toml)");
  cmd->add_flag("--json", a.json, "print the result as JSON on stdout");
  cmd->add_flag("--force", a.force, "write a new version even when nothing changed (renews its expiry)");
  cmd->callback([&chosen] {
    chosen = [] {
      Config cfg = load_config(a.config);
      hq::PublishResult r;
      {
        ProgressLine bar("publishing " + a.channel);
        hq::PublishOptions opts;
        opts.force = a.force;
        // Quiet for a quick publish; a bar once hashing or copying takes more than a second.
        const auto start = std::chrono::steady_clock::now();
        r = hq::publish_channel(
            cfg, a.channel,
            [&bar, start](const hq::PublishProgress& p) {
              if (std::chrono::steady_clock::now() - start < std::chrono::seconds(1)) return;
              const char* what = p.phase == hq::PublishProgress::Phase::scanning ? " files hashed" : " files stored";
              bar.update(p.bytes_done, p.bytes_total,
                         std::to_string(p.files_done) + "/" + std::to_string(p.files_total) + what);
            },
            opts);
        bar.finish();
      }
      for (const auto& w : r.warnings) std::fprintf(stderr, "distctl: warning: %s\n", w.c_str());
      if (a.json) {
        print_json({{"channel", r.channel},
                    {"changed", r.changed},
                    {"reason", r.reason},
                    {"version", r.version},
                    {"previous_version", r.previous_version},
                    {"files", r.files},
                    {"bytes", r.bytes},
                    {"added", r.added},
                    {"changed_files", r.modified},
                    {"removed", r.removed},
                    {"moved", r.moved},
                    {"hashed_files", r.hashed_files},
                    {"hashed_bytes", r.hashed_bytes},
                    {"objects", {{"linked", r.objects_linked}, {"copied", r.objects_copied},
                                 {"present", r.objects_present}, {"bytes_copied", r.bytes_copied},
                                 {"zstd_forms", r.zstd_forms}, {"zstd_form_bytes", r.zstd_form_bytes}}},
                    {"gc", {{"manifests_pruned", r.manifests_pruned}, {"objects_removed", r.gc.objects_removed},
                            {"object_bytes_removed", r.gc.object_bytes_removed}, {"deltas_removed", r.gc.deltas_removed}}},
                    {"expires", format_utc(r.expires)},
                    {"manifest", r.manifest_path},
                    {"warnings", r.warnings}});
        return 0;
      }
      if (!r.changed) {
        std::printf("%s unchanged, still version %llu (%s files, %s); nothing published\n", r.channel.c_str(),
                    static_cast<unsigned long long>(r.version), with_commas(r.files).c_str(),
                    human_bytes(r.bytes).c_str());
        return 0;
      }
      std::printf("published %s version %llu (%s): %s files, %s\n", r.channel.c_str(),
                  static_cast<unsigned long long>(r.version), r.reason.c_str(), with_commas(r.files).c_str(),
                  human_bytes(r.bytes).c_str());
      if (r.previous_version)
        std::printf("  since version %llu: %zu added, %zu changed, %zu removed, %zu moved\n",
                    static_cast<unsigned long long>(r.previous_version), r.added, r.modified, r.removed, r.moved);
      std::printf("  objects: %llu new (%llu hard-linked, %llu copied: %s written), %llu already stored\n",
                  static_cast<unsigned long long>(r.objects_linked + r.objects_copied),
                  static_cast<unsigned long long>(r.objects_linked), static_cast<unsigned long long>(r.objects_copied),
                  human_bytes(r.bytes_copied).c_str(), static_cast<unsigned long long>(r.objects_present));
      if (r.zstd_forms)
        std::printf("  compressed forms: %llu stored (%s, zstd)\n", static_cast<unsigned long long>(r.zstd_forms),
                    human_bytes(r.zstd_form_bytes).c_str());
      if (r.manifests_pruned || r.gc.objects_removed || r.gc.deltas_removed)
        std::printf("  retention: %llu old manifests, %llu objects (%s), %llu deltas removed\n",
                    static_cast<unsigned long long>(r.manifests_pruned),
                    static_cast<unsigned long long>(r.gc.objects_removed), human_bytes(r.gc.object_bytes_removed).c_str(),
                    static_cast<unsigned long long>(r.gc.deltas_removed));
      std::printf("  manifest: %s (expires %s)\n", r.manifest_path.c_str(), format_utc(r.expires).c_str());
      return 0;
    };
  });
}

const CommandRegistrar registrar_publish(30, register_publish);

}  // namespace
}  // namespace distd::cli
