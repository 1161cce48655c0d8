// A test's flaky link: the flaky_proxy tool (tests/tools/flaky_proxy.cpp) between a client and
// a real service on loopback, with the knobs of docs/testing.md ("The flaky link").
//
//   distd::test::NginxServer hq(root);
//   distd::test::FlakyLink link(hq.port(), {.seed = 7, .cut_every = 300'000});
//   run({"curl", "-C", "-", "-o", out, link.url() + "/objects/ab/abcd"});
//   link.control("down");  ...  link.up();  BOOST_TEST(link.stats().cuts >= 3);
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace distd::test {

// Zero means "off" for every number. Field order is fixed so designated initializers work.
struct FlakyOptions {
  uint64_t seed = 1;
  double rate = 0;              // bytes/s, one bucket for all connections and both directions
  int delay_ms = 0;             // added latency per chunk, each direction
  int64_t cut_after = 0;        // reset the connection carrying downstream byte N, once
  int64_t cut_every = 0;        // reset every ~N downstream bytes (seeded +/-25% jitter)
  double cut_prob = 0;          // probability of a reset after each downstream chunk
  int64_t blackhole_after = 0;  // after N downstream bytes, forward nothing for blackhole_secs
  double blackhole_secs = 0;
  bool down = false;            // start refusing (reset on accept) every connection
  std::string upstream_host = "127.0.0.1";
};

struct FlakyStats {
  int64_t bytes_up = 0;     // client -> upstream bytes forwarded
  int64_t bytes_down = 0;   // upstream -> client bytes forwarded
  int64_t connections = 0;  // accepted so far (refused ones included)
  int64_t active = 0;       // open right now
  int64_t refused = 0;      // reset on accept while down
  int64_t cuts = 0;
  std::vector<int64_t> cut_offsets;  // bytes_down at each cut, in order
  int64_t blackholes = 0;
  bool blackholed = false;
  bool down = false;
};

class FlakyLink {
 public:
  // Starts flaky_proxy on a free loopback port forwarding to upstream_host:upstream_port, with
  // a control port, and waits until both accept connections. Throws std::runtime_error (with
  // the proxy's log) when it cannot.
  explicit FlakyLink(int upstream_port, const FlakyOptions& opts = {});
  ~FlakyLink();
  FlakyLink(const FlakyLink&) = delete;
  FlakyLink& operator=(const FlakyLink&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }  // no trailing '/'
  int control_port() const { return control_port_; }
  int pid() const { return proc_->pid(); }

  // Sends one control line ("down", "up", "cut", "blackhole 5", "set rate 20000",
  // "set cut-every 300000", "stats", ...) and returns the answer line ("ok", or JSON for
  // stats). Throws std::runtime_error when the answer is "err ..." or nothing comes back.
  std::string control(const std::string& command);
  FlakyStats stats();
  void down() { control("down"); }   // resets current connections and refuses new ones
  void up() { control("up"); }
  void cut() { control("cut"); }     // resets every current connection now
  void blackhole(double secs) { control("blackhole " + std::to_string(secs)); }  // 0 ends one
  void set_rate(double bytes_per_s) { control("set rate " + std::to_string(bytes_per_s)); }
  void set_cut_every(int64_t bytes) { control("set cut-every " + std::to_string(bytes)); }

  std::string log() const;  // the proxy's event log so far (cuts, blackholes, control)
  int stop();               // SIGTERM; returns the exit status (0 on a clean exit)

 private:
  TempDir dir_{"flaky"};
  std::unique_ptr<Process> proc_;
  int port_ = 0;
  int control_port_ = 0;
};

}  // namespace distd::test
