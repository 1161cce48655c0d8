// [regional] metrics_file: after a pass of distd the center's own state is in a file in
// Prometheus' text format (node-exporter's textfile collector), written atomically;
// `distctl status --prometheus` prints the same; a file that cannot be written is one log line,
// never a failed pass.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "tests/support/sync_site.h"

using namespace distd;
using namespace distd::test;

namespace {

struct Exposition {
  std::map<std::string, std::string> type, help;  // per metric name
  std::map<std::string, double> samples;           // "name{labels as written}" -> value
  std::set<std::string> names;
};

// A strict reader of the text format 0.0.4: every sample's metric has HELP and TYPE before it,
// once each; names and label names are valid; label values are quoted with \\ \" \n escapes
// only; values are numbers; the samples of one metric are together; the text ends in a newline.
Exposition parse_exposition(const std::string& text) {
  Exposition e;
  BOOST_REQUIRE(!text.empty() && text.back() == '\n');
  const std::regex name_re("[a-zA-Z_:][a-zA-Z0-9_:]*");
  const std::regex meta_re("# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)");
  std::istringstream in(text);
  std::string line, last_name;
  std::set<std::string> finished;
  while (std::getline(in, line)) {
    BOOST_TEST_CONTEXT("line: " << line) {
      std::smatch m;
      if (line.rfind("#", 0) == 0) {
        BOOST_REQUIRE(std::regex_match(line, m, meta_re));
        auto& slot = m[1] == "HELP" ? e.help : e.type;
        BOOST_TEST(!slot.count(m[2]));
        slot[m[2]] = m[3];
        if (m[1] == "TYPE") BOOST_TEST((m[3] == "gauge" || m[3] == "counter"));
        continue;
      }
      size_t i = 0;
      while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
      const std::string name = line.substr(0, i);
      BOOST_REQUIRE(std::regex_match(name, name_re));
      BOOST_TEST(e.type.count(name), name << " has no TYPE before it");
      BOOST_TEST(e.help.count(name), name << " has no HELP before it");
      if (name != last_name) {
        BOOST_TEST(!finished.count(name), name << "'s samples are not together");
        if (!last_name.empty()) finished.insert(last_name);
        last_name = name;
      }
      if (i < line.size() && line[i] == '{') {
        ++i;
        while (line.at(i) != '}') {
          size_t eq = line.find('=', i);
          BOOST_REQUIRE(eq != std::string::npos);
          BOOST_TEST(std::regex_match(line.substr(i, eq - i), std::regex("[a-zA-Z_][a-zA-Z0-9_]*")));
          BOOST_REQUIRE(line.at(eq + 1) == '"');
          i = eq + 2;
          while (line.at(i) != '"') {
            if (line[i] == '\\') {
              BOOST_TEST((line.at(i + 1) == '\\' || line[i + 1] == '"' || line[i + 1] == 'n'));
              ++i;
            }
            ++i;
          }
          ++i;
          if (line.at(i) == ',') ++i;
        }
        ++i;
      }
      BOOST_REQUIRE(line.at(i) == ' ');
      const std::string value = line.substr(i + 1);
      size_t used = 0;
      double v = std::stod(value, &used);
      BOOST_TEST(used == value.size(), "value '" << value << "'");
      const std::string key = line.substr(0, i);
      BOOST_TEST(!e.samples.count(key), key << " twice");
      e.samples[key] = v;
      e.names.insert(name);
    }
  }
  return e;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_daemon_pass_writes_the_metrics_file_and_status_prints_the_same) {
  TempDir collector{"textfile"};
  const std::string prom = collector / "distd.prom";
  SyncSite s("metrics_file = \"" + prom + "\"");
  write_file(s.src() + "/a", random_bytes(20'000, 1));
  s.publish();
  s.start_hq();
  s.enroll_center();
  RunResult r = run({"distd", "--config", s.reg_cfg, "--once"}, {}, {}, 120);
  BOOST_TEST_INFO("distd --once: " << r.err);
  BOOST_REQUIRE_EQUAL(r.status, 0);
  s.check_converged(1);

  BOOST_REQUIRE(std::filesystem::exists(prom));
  // Written through a temporary in the same directory, renamed: nothing else is left there.
  BOOST_TEST(std::distance(std::filesystem::directory_iterator(collector.path()), {}) == 1);
  BOOST_TEST(((std::filesystem::status(prom).permissions() & std::filesystem::perms::others_read) !=
              std::filesystem::perms::none));  // node-exporter runs as its own user
  const std::string text = read_file(prom);
  Exposition e = parse_exposition(text);
  BOOST_TEST(e.samples.at("distd_center_installed_version{channel=\"c\"}") == 1.0);
  BOOST_TEST(e.samples.at("distd_center_latest_known_version{channel=\"c\"}") == 1.0);
  BOOST_TEST(e.samples.at("distd_center_pending_files{channel=\"c\"}") == 0.0);
  BOOST_TEST(e.samples.at("distd_center_last_error{channel=\"c\"}") == 0.0);
  const double now = static_cast<double>(::time(nullptr));
  BOOST_TEST(e.samples.at("distd_center_last_success_timestamp_seconds{channel=\"c\"}") > now - 300);
  BOOST_TEST(e.samples.at("distd_center_last_attempt_timestamp_seconds{channel=\"c\"}") > now - 300);
  BOOST_TEST(e.samples.at("distd_center_free_bytes") > 0.0);
  BOOST_TEST(text.find("distd_center_build_info{site=\"center-1\",version=\"") != std::string::npos, text);

  RunResult st = run({"distctl", "status", "--config", s.reg_cfg, "--prometheus"});
  BOOST_TEST(st.status == 0, st.err);
  Exposition e2 = parse_exposition(st.out);
  BOOST_TEST(e2.names == e.names);
  BOOST_TEST(e2.samples.at("distd_center_installed_version{channel=\"c\"}") == 1.0);
  for (const char* n : {"distd_center_build_info", "distd_center_installed_version", "distd_center_latest_known_version",
                        "distd_center_pending_files", "distd_center_pending_bytes",
                        "distd_center_last_success_timestamp_seconds", "distd_center_last_attempt_timestamp_seconds",
                        "distd_center_last_error", "distd_center_warnings", "distd_center_free_bytes"})
    BOOST_TEST(e.names.count(n), n);

  // A failed pass rewrites the file: a center pinning another key refuses HQ's manifest.
  write_keypair(generate_keypair(), s.tmp / "other.key", s.tmp / "other.pub");
  std::string cfg = read_file(s.reg_cfg);
  const std::string from = "hq_public_key = \"" + s.pub + "\"";
  cfg.replace(cfg.find(from), from.size(), "hq_public_key = \"" + (s.tmp / "other.pub") + "\"");
  write_file(s.reg_cfg, cfg);
  RunResult bad = run({"distd", "--config", s.reg_cfg, "--once"}, {}, {}, 120);
  BOOST_TEST(bad.status != 0);
  Exposition e3 = parse_exposition(read_file(prom));
  BOOST_TEST_INFO("distd --once: " << bad.err);
  BOOST_TEST(e3.samples.at("distd_center_last_error{channel=\"c\"}") == 1.0);
  BOOST_TEST(e3.samples.at("distd_center_installed_version{channel=\"c\"}") == 1.0);
}

BOOST_AUTO_TEST_CASE(distctl_sync_writes_the_metrics_file_too) {
  TempDir collector{"textfile"};
  const std::string prom = collector / "distd.prom";
  SyncSite s("metrics_file = \"" + prom + "\"");
  write_file(s.src() + "/a", random_bytes(5'000, 2));
  s.publish();
  s.start_hq();
  s.sync_ok();  // distctl sync, not the daemon
  BOOST_REQUIRE(std::filesystem::exists(prom));
  Exposition e = parse_exposition(read_file(prom));
  BOOST_TEST(e.samples.at("distd_center_installed_version{channel=\"c\"}") == 1.0);
}

BOOST_AUTO_TEST_CASE(a_center_that_never_synced_has_metrics_at_zero) {
  SyncSite s;
  RunResult st = run({"distctl", "status", "--config", s.reg_cfg, "--prometheus"});
  BOOST_TEST(st.status == 0, st.err);
  Exposition e = parse_exposition(st.out);
  BOOST_TEST(e.samples.at("distd_center_installed_version{channel=\"c\"}") == 0.0);
  BOOST_TEST(e.samples.at("distd_center_last_success_timestamp_seconds{channel=\"c\"}") == 0.0);
  RunResult both = run({"distctl", "status", "--config", s.reg_cfg, "--prometheus", "--json"});
  BOOST_TEST(both.status == 2, both.err);
}

BOOST_AUTO_TEST_CASE(a_metrics_file_that_cannot_be_written_is_one_log_line_not_a_failed_pass) {
  SyncSite s;
  const std::string prom = s.tmp / "no-such-dir/distd.prom";
  s.set_hq_url(s.hq_url(), "metrics_file = \"" + prom + "\"");
  write_file(s.src() + "/a", random_bytes(1000, 2));
  s.publish();
  s.start_hq();
  s.enroll_center();
  RunResult r = run({"distd", "--config", s.reg_cfg, "--once"}, {}, {}, 120);
  BOOST_TEST_INFO("distd --once: " << r.err);
  BOOST_TEST(r.status == 0);
  s.check_converged(1);
  BOOST_TEST(!std::filesystem::exists(s.tmp / "no-such-dir"));
  size_t lines = 0;
  std::istringstream in(r.err);
  for (std::string l; std::getline(in, l);)
    if (l.find("metrics file not written") != std::string::npos) {
      ++lines;
      BOOST_TEST(l.find(prom) != std::string::npos, l);
      BOOST_TEST(l.find("the sync is not affected") != std::string::npos, l);
    }
  BOOST_TEST(lines == 1u);

  // Not a string: refused when the daemon starts (exit 2), not at every pass.
  s.set_hq_url(s.hq_url(), "metrics_file = 3");
  RunResult bad = run({"distd", "--config", s.reg_cfg, "--once"}, {}, {}, 60);
  BOOST_TEST(bad.status == 2, bad.err);
  BOOST_TEST(bad.err.find("metrics_file") != std::string::npos, bad.err);
}
