// [hq] listen = "HOST:PORT" (declared in http_server.h).
#include "distd/hq/http_server.h"
#include "manifest/encoding.h"
#include "manifest/error.h"

namespace distd::hq {

ListenAddress parse_listen(const std::string& text) {
  auto bad = [&]() -> Error {
    return Error(Errc::usage, "[hq] listen = \"" + text + "\" is not HOST:PORT",
                 "write e.g. listen = \"127.0.0.1:8750\" (loopback only), \"0.0.0.0:8750\" or \"[::]:8750\"");
  };
  ListenAddress a;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') throw bad();
    a.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) throw bad();
    a.host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (a.host.find(':') != std::string::npos) throw bad();  // IPv6 needs brackets
  }
  if (a.host.empty()) a.host = "0.0.0.0";
  auto p = parse_u64(port);
  if (!p || *p == 0 || *p > 65535) throw bad();
  a.port = static_cast<int>(*p);
  return a;
}

}  // namespace distd::hq
