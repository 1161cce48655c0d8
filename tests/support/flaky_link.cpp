#include "tests/support/flaky_link.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <sstream>
#include <stdexcept>

namespace distd::test {

namespace {

std::string num(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

}  // namespace

FlakyLink::FlakyLink(int upstream_port, const FlakyOptions& o) {
  std::string log = dir_ / "proxy.log";
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    control_port_ = free_port();
    if (control_port_ == port_) continue;
    std::vector<std::string> argv = {bin("flaky_proxy"),
                                     "--listen", std::to_string(port_),
                                     "--upstream", o.upstream_host + ":" + std::to_string(upstream_port),
                                     "--control", std::to_string(control_port_),
                                     "--seed", std::to_string(o.seed),
                                     "--log", log};
    if (o.rate > 0) argv.insert(argv.end(), {"--rate", num(o.rate)});
    if (o.delay_ms > 0) argv.insert(argv.end(), {"--delay-ms", std::to_string(o.delay_ms)});
    if (o.cut_after > 0) argv.insert(argv.end(), {"--cut-after", std::to_string(o.cut_after)});
    if (o.cut_every > 0) argv.insert(argv.end(), {"--cut-every", std::to_string(o.cut_every)});
    if (o.cut_prob > 0) argv.insert(argv.end(), {"--cut-prob", num(o.cut_prob)});
    if (o.blackhole_after > 0)
      argv.insert(argv.end(), {"--blackhole-after", std::to_string(o.blackhole_after), "--blackhole-secs",
                               num(o.blackhole_secs)});
    if (o.down) argv.push_back("--down");
    proc_ = std::make_unique<Process>(argv, dir_ / "stdout.log");
    // Probing the data port counts as a connection (and, when down, a refusal): probe the
    // control port, and the data port only through the log line written after both are bound.
    if (wait_for_port(control_port_, 10)) {
      for (int i = 0; i < 200 && proc_->running(); ++i) {
        if (this->log().find("listening on") != std::string::npos) return;
        ::usleep(25'000);
      }
    }
    proc_->stop();  // most likely a port taken between free_port() and bind(): try others
  }
  throw std::runtime_error("flaky_proxy did not start; its log:\n" + this->log() + proc_->log());
}

FlakyLink::~FlakyLink() = default;

std::string FlakyLink::control(const std::string& command) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) throw std::runtime_error("socket failed");
  timeval tv{5, 0};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(control_port_));
  std::string line = command + "\n", answer;
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::send(s, line.data(), line.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(line.size())) {
    char buf[4096];
    while (answer.find('\n') == std::string::npos) {
      ssize_t n = ::recv(s, buf, sizeof buf, 0);
      if (n <= 0) break;
      answer.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(s);
  if (answer.empty() || answer.back() != '\n')
    throw std::runtime_error("flaky_proxy control '" + command + "': no answer on port " +
                             std::to_string(control_port_));
  answer.pop_back();
  if (answer.rfind("err", 0) == 0) throw std::runtime_error("flaky_proxy control '" + command + "': " + answer);
  return answer;
}

FlakyStats FlakyLink::stats() {
  auto j = nlohmann::json::parse(control("stats"));
  FlakyStats s;
  s.bytes_up = j.at("bytes_up");
  s.bytes_down = j.at("bytes_down");
  s.connections = j.at("connections");
  s.active = j.at("active");
  s.refused = j.at("refused");
  s.cuts = j.at("cuts");
  s.cut_offsets = j.at("cut_offsets").get<std::vector<int64_t>>();
  s.blackholes = j.at("blackholes");
  s.blackholed = j.at("blackholed");
  s.down = j.at("down");
  return s;
}

std::string FlakyLink::log() const {
  std::string p = dir_ / "proxy.log";
  return exists(p) ? read_file(p) : std::string();
}

int FlakyLink::stop() { return proc_->stop(); }

}  // namespace distd::test
