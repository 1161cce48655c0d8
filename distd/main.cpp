// distd: the daemon. Reads its config and runs the role named there:
//   hq        serves public/ over HTTP (docs/formats/http.md) until SIGTERM/SIGINT, and publishes
//             every channel each [hq] publish_interval seconds when that is set;
//   regional  runs run_regional_daemon() (distd/regional/daemon.h) and, with [replica] moodle_dir,
//             the Moodle cache watch (distd/replica/moodle_site.h) beside it.
// With --once, HQ publishes every channel once and exits; a regional center runs one pass.
// Under systemd (Type=notify) it reports READY=1, STATUS= lines and WATCHDOG=1 pings.
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>

#include "distd/check_config.h"
#include "distd/config/config.h"
#include "distd/hq/http_server.h"
#include "distd/hq/publisher.h"
#include "distd/forum/channel.h"
#include "distd/plugins.h"
#include "distd/regional/daemon.h"
#include "distd/regional/sync.h"
#include "distd/replica/moodle_site.h"
#include "manifest/error.h"
#include "manifest/keys.h"

namespace distd {
namespace {

// sd_notify(3) wrapper: a no-op outside systemd (no $NOTIFY_SOCKET).
class Notifier {
 public:
  Notifier() {
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0) watchdog_usec_ = usec;
  }
  void ready(const std::string& status) { sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str()); }
  void status(const std::string& s) { sd_notifyf(0, "STATUS=%s", s.c_str()); }
  void ping() {
    if (watchdog_usec_) sd_notify(0, "WATCHDOG=1");
  }
  void stopping() { sd_notify(0, "STOPPING=1\nSTATUS=stopping"); }
  // How long the main loop may sleep between checks: half the watchdog period, at most 1 s.
  std::chrono::microseconds tick() const {
    auto t = std::chrono::microseconds(1'000'000);
    if (watchdog_usec_ && watchdog_usec_ / 2 < 1'000'000) t = std::chrono::microseconds(watchdog_usec_ / 2);
    return t;
  }

 private:
  uint64_t watchdog_usec_ = 0;
};

void log_line(const std::string& s) {
  // Under systemd ($JOURNAL_STREAM), "<4>" gives warnings the journal's warning priority.
  static const bool journal = std::getenv("JOURNAL_STREAM") != nullptr;
  const char* prio = journal && s.rfind("warning: ", 0) == 0 ? "<4>" : "";
  std::fprintf(stderr, "%sdistd: %s\n", prio, s.c_str());
  std::fflush(stderr);
}

std::string error_text(const Error& e) {
  return std::string(e.what()) + (e.hint().empty() ? "" : " (what to do: " + e.hint() + ")");
}

// Waits for SIGTERM/SIGINT for up to `tick`. Returns true when one arrived.
// REQUIRES: the signals are blocked in every thread (done in main before any thread starts).
bool wait_for_stop_signal(std::chrono::microseconds tick) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  timespec ts{static_cast<time_t>(tick.count() / 1'000'000), static_cast<long>(tick.count() % 1'000'000) * 1000};
  int sig = sigtimedwait(&set, nullptr, &ts);
  if (sig == SIGHUP) log_line("SIGHUP ignored; restart distd to read a changed config");
  return sig == SIGTERM || sig == SIGINT;
}

// Publishes every channel; returns the exit status of the worst failure (0: all fine).
int publish_all(const Config& cfg, Notifier* notify) {
  int worst = 0;
  for (const auto& ch : cfg.channels) {
    try {
      if (notify) notify->status("publishing " + ch.name);
      hq::PublishResult r = hq::publish_channel(cfg, ch.name);
      for (const auto& w : r.warnings) log_line("warning: " + w);
      if (r.changed)
        log_line("published " + ch.name + " version " + std::to_string(r.version) + " (" + r.reason + "): " +
                 std::to_string(r.files) + " files, " + std::to_string(r.added) + " added, " +
                 std::to_string(r.modified) + " changed, " + std::to_string(r.removed) + " removed, " +
                 std::to_string(r.moved) + " moved");
      else
        log_line(ch.name + " unchanged, still version " + std::to_string(r.version));
    } catch (const Error& e) {
      log_line("publish of " + ch.name + " failed: " + error_text(e));
      if (!worst) worst = exit_status(e.code());
    }
  }
  return worst;
}

int run_hq(const Config& cfg, bool once) {
  const hq::HqSettings hs = hq::hq_settings(cfg);
  Notifier notify;
  if (once) return publish_all(cfg, nullptr);

  hq::HttpServerOptions opts;
  opts.threads = hs.threads;
  hq::HttpServer server(cfg, opts);
  server.bind();
  const std::string where = server.address().host + ":" + std::to_string(server.address().port);

  std::atomic<bool> server_done{false};
  std::thread serving([&] {
    server.run();
    server_done = true;
  });
  for (int i = 0; i < 500 && !server.running() && !server_done; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));

  // Periodic publish in its own thread, so that hashing a large tree never delays the
  // watchdog pings or the answer to SIGTERM.
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread publishing;
  if (hs.publish_interval > 0) {
    publishing = std::thread([&] {
      std::unique_lock<std::mutex> lk(mu);
      while (!stopping) {
        lk.unlock();
        publish_all(cfg, &notify);
        notify.status("serving on " + where + "; next publish in " + std::to_string(hs.publish_interval) + " s");
        lk.lock();
        cv.wait_for(lk, std::chrono::seconds(hs.publish_interval), [&] { return stopping; });
      }
    });
  }

  // Forum posts that wait (HQ's database was down when they came) are applied again and again.
  std::atomic<bool> applier_stop{false};
  std::thread applier;
  if (forum::forum_enabled(cfg))
    applier = std::thread([&] {
      try {
        forum::run_post_applier(cfg, applier_stop, log_line);
      } catch (const std::exception& e) {
        log_line(std::string("warning: forum posts are not applied: ") + e.what());
      }
    });

  log_line("hq serving " + cfg.state_dir + "/public on http://" + where + " (" + std::to_string(cfg.channels.size()) +
           " channels" + (hs.publish_interval > 0 ? ", publishing every " + std::to_string(hs.publish_interval) + " s" : "") +
           ")");
  notify.ready("serving on " + where);
  int rc = 0;
  while (!wait_for_stop_signal(notify.tick())) {
    if (server_done) {
      log_line("error: the HTTP server stopped unexpectedly");
      rc = exit_status(Errc::network);
      break;
    }
    notify.ping();
  }
  notify.stopping();
  log_line("stopping");
  {
    std::lock_guard<std::mutex> g(mu);
    stopping = true;
  }
  cv.notify_all();
  while (!server_done) {
    server.stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  serving.join();
  applier_stop = true;
  if (applier.joinable()) applier.join();
  if (publishing.joinable()) {
    notify.status("stopping: waiting for the publish in progress");
    publishing.join();
  }
  return rc;
}

int run_regional(const Config& cfg, bool once) {
  Notifier notify;
  forum::SendSignal post_signal;  // the daemon's probe and the post socket wake the post sender
  std::atomic<bool> stop{once};  // --once: the daemon makes one pass and returns
  std::atomic<bool> done{false};
  int rc = 0;
  std::exception_ptr failure;
  std::thread worker([&] {
    try {
      rc = run_regional_daemon(
          cfg, stop,
          [&notify](const std::string& s) {
            notify.status(s);
            log_line(s);
          },
          [&post_signal] { post_signal.link_up(); });
    } catch (...) {
      failure = std::current_exception();
    }
    done = true;
  });
  // The center's Moodle caches follow HQ's replicated settings (distd/replica/moodle_site.h).
  std::thread cache_watch;
  if (!once)
    cache_watch = std::thread([&] {
      try {
        replica::watch_moodle_caches(cfg, stop, log_line);
      } catch (const std::exception& e) {
        log_line(std::string("warning: Moodle cache watch stopped: ") + e.what());
      }
    });
  // Forum posts: the local_distd plugin hands them over on the post socket; the sender takes them
  // to HQ whenever it answers (distd/forum/channel.h).
  std::thread post_socket, post_sender;
  if (!once) {
    post_socket = std::thread([&] {
      try {
        forum::serve_post_socket(cfg, stop, post_signal, log_line);
      } catch (const std::exception& e) {
        log_line(std::string("warning: the forum post socket is closed: ") + e.what());
      }
    });
    post_sender = std::thread([&] {
      try {
        forum::run_post_sender(cfg, stop, post_signal, log_line);
      } catch (const std::exception& e) {
        log_line(std::string("warning: forum posts are not sent: ") + e.what());
      }
    });
  }
  notify.ready("regional center " + cfg.site + " started");
  while (!done) {
    if (wait_for_stop_signal(notify.tick())) {
      notify.stopping();
      log_line("stopping");
      stop = true;
      break;
    }
    notify.ping();
  }
  worker.join();
  stop = true;
  if (cache_watch.joinable()) cache_watch.join();
  post_signal.link_up();  // stop is set: the sender returns
  if (post_socket.joinable()) post_socket.join();
  if (post_sender.joinable()) post_sender.join();
  if (failure) std::rethrow_exception(failure);
  return rc;
}

// --check-config: what a start would read before serving, without binding or touching state.
int print_config_check(const Config& cfg) {
  ConfigCheck c = check_config(cfg);
  std::printf("config %s: OK (%s)\n", c.file.c_str(), c.summary().c_str());
  return 0;
}

}  // namespace
}  // namespace distd

int main(int argc, char** argv) {
  using namespace distd;
  CLI::App app{"distd - the distd daemon (role hq or regional, from its config file)", "distd"};
  const char* env = std::getenv("DISTD_CONFIG");
  std::string config = env && *env ? env : "/etc/distd/distd.toml";
  bool once = false, check_only = false;
  app.add_option("-c,--config", config, "config file ($DISTD_CONFIG or /etc/distd/distd.toml)")->capture_default_str();
  app.add_flag("--once", once, "hq: publish every channel once and exit; regional: one sync pass, then exit");
  app.add_flag("--check-config", check_only,
               "read and check the config (its sections, keys and the files they name), print a summary and exit");
  app.footer("See docs/hq.md and docs/config.md. Stops cleanly on SIGTERM or SIGINT.\n" + exit_status_footer());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help exits 0; every mistake in the arguments exits 2, as documented.
    return app.exit(e) == 0 ? 0 : exit_status(Errc::usage);
  }

  // Signals are taken synchronously by the main thread (sigtimedwait): block them before any
  // thread starts, so every thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  register_plugins();
  try {
    Config cfg = load_config(config);
    if (check_only) return print_config_check(cfg);
    return cfg.role == "hq" ? run_hq(cfg, once) : run_regional(cfg, once);
  } catch (const Error& e) {
    std::fprintf(stderr, "distd: error: %s\n", e.what());
    if (!e.hint().empty()) std::fprintf(stderr, "  what to do: %s\n", e.hint().c_str());
    sd_notifyf(0, "STATUS=error: %s", e.what());
    return exit_status(e.code());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "distd: internal error: %s\n  what to do: please report this with your config and log\n",
                 e.what());
    return 70;
  }
}
