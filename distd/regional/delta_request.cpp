#include "distd/regional/delta_request.h"

#include <nlohmann/json.hpp>

#include "distd/delta/rsync.h"
#include "distd/io/pause.h"
#include "manifest/digest.h"

namespace distd {
namespace {

// The first line of an error answer (HQ's reason), at most 300 characters.
std::string first_line(const std::string& body) {
  std::string l = body.substr(0, std::min(body.find('\n'), size_t(300)));
  return l.empty() ? "no reason given" : l;
}

}  // namespace

std::optional<DeltaTicket> request_delta(HttpClient& http, const std::string& signature,
                                         const std::string& target_hex, uint64_t target_size, DeltaDeclined* declined) {
  auto no = [&](NoDelta reason, std::string why) {
    *declined = {reason, std::move(why)};
    return std::nullopt;
  };
  // 503: HQ computes as many deltas at once as [hq] max_delta_jobs allows and asks the others to
  // come back (Retry-After: 5); a whole download instead would cost far more on a slow link.
  HttpAnswer a;
  for (int attempt = 1;; ++attempt) {
    a = http.post("/deltas?target=" + target_hex, signature, 64 * 1024);
    if (a.status != 503 || attempt > kBusyRetries) break;
    sleep_unless_stopped(http.options().stop, kBusyPauseSeconds);
  }
  if (a.status == 503)
    return no(NoDelta::refused, "HQ stayed busy with other deltas (HTTP 503 " + std::to_string(kBusyRetries + 1) +
                                    " times)");
  if (a.status == 404 || a.status == 405 || a.status == 501) {
    return no(NoDelta::unsupported,
              "HQ does not compute deltas here (HTTP " + std::to_string(a.status) + ", a plain web server?)");
  }
  if (a.status == 401 || a.status == 403)
    return no(NoDelta::unsupported, "HQ computes deltas only for enrolled sites (HTTP " + std::to_string(a.status) + ": " +
                                    first_line(a.body) + ")");
  if (a.status != 200) {
    return no(NoDelta::refused, "HQ refused the delta request (HTTP " + std::to_string(a.status) + ")");
  }
  DeltaTicket t;
  try {
    auto j = nlohmann::json::parse(a.body);
    t.id = j.at("id").get<std::string>();
    t.size = j.at("size").get<uint64_t>();
    t.zsize = j.value("zsize", uint64_t{0});
    if (t.zsize >= t.size) t.zsize = 0;  // not smaller: the delta as it is
    if (j.contains("target") && j.at("target").get<std::string>() != target_hex) throw std::runtime_error("target");
    if (j.contains("target_size") && j.at("target_size").get<uint64_t>() != target_size)
      throw std::runtime_error("target_size");
  } catch (const std::exception& e) {
    return no(NoDelta::malformed, std::string("HQ's delta answer is malformed (") + e.what() + ")");
  }
  if (!parse_digest_hex(t.id)) {
    return no(NoDelta::malformed, "HQ's delta id is not a digest");
  }
  if (t.size > delta_size_cap(target_size)) {
    return no(NoDelta::not_smaller, "the delta is larger than the file");
  }
  if (!delta_pays(t.zsize ? t.zsize : t.size, signature.size(), target_size)) {
    return no(NoDelta::not_smaller, "the delta is not clearly smaller than the file");
  }
  return t;
}

}  // namespace distd
