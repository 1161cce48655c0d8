// What a stored report says (read_report) and what HQ makes of it (set_flags): the rules are
// those of docs/hq.md "The fleet: which centers hold what".
#include <algorithm>
#include <set>

#include "distd/fleet/fleet.h"
#include "manifest/encoding.h"

namespace distd::fleet {
namespace {

uint64_t u64(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

std::string str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A report's time: "YYYY-MM-DDTHH:MM:SSZ" (or unix seconds); 0 when absent, null or malformed.
int64_t utc(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  return it->is_string() ? parse_utc(it->get<std::string>()).value_or(0) : 0;
}

std::vector<std::string> strings(const nlohmann::json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it != j.end() && it->is_array())
    for (const auto& w : *it)
      if (w.is_string()) out.push_back(w);
  return out;
}

const std::set<std::string> kRefusals = {"bad_signature", "rollback", "expired", "corrupt", "unsafe_path"};

// In kFlags order.
std::vector<std::string> ordered(const std::set<std::string>& flags) {
  std::vector<std::string> out;
  for (const char* f : kFlags)
    if (flags.count(f)) out.push_back(f);
  return out;
}

}  // namespace

void read_report(const nlohmann::json& r, const std::map<std::string, uint64_t>& latest, SiteView& v) {
  v.received = r.value("received", int64_t{0});
  v.how = str(r, "how");
  v.distd_version = str(r, "distd_version");
  if (r.contains("free_bytes") && r["free_bytes"].is_number_unsigned()) v.free_bytes = r["free_bytes"].get<uint64_t>();
  if (r.contains("expiry_warning_days") && r["expiry_warning_days"].is_number_integer())
    v.expiry_warning_days = r["expiry_warning_days"].get<int64_t>();
  if (auto it = r.find("replica"); it != r.end() && it->is_object()) {
    SiteReplica rep;
    // A section that could not be made ({"error": ...}) counts as a configured replica not ok.
    rep.configured = it->value("configured", it->contains("error"));
    rep.ok = it->value("ok", false);
    rep.reachable = it->value("reachable", false);
    if (it->contains("seconds_behind") && (*it)["seconds_behind"].is_number_integer())
      rep.lag_seconds = (*it)["seconds_behind"].get<int64_t>();
    rep.error = str(*it, "error");
    rep.warnings = strings(*it, "warnings");
    v.replica = std::move(rep);
  }
  if (auto it = r.find("outbox"); it != r.end() && it->is_object() && it->contains("posts"))
    v.outbox_posts = u64(*it, "posts");
  for (const auto& c : r["channels"]) {
    SiteChannel sc;
    sc.channel = str(c, "channel");
    sc.installed = u64(c, "installed_version");
    sc.latest_known = u64(c, "latest_known_version");
    sc.pending_files = u64(c, "pending_files");
    sc.pending_bytes = u64(c, "pending_bytes");
    sc.last_success = utc(c, "last_success");
    sc.last_error_time = utc(c, "last_error_time");
    sc.last_error = str(c, "last_error");
    sc.last_error_code = str(c, "last_error_code");
    sc.manifest_expires = utc(c, "manifest_expires");
    sc.plan_started = utc(c, "plan_started");
    sc.warnings = strings(c, "warnings");
    auto l = latest.find(sc.channel);
    sc.hq_latest = l == latest.end() ? 0 : l->second;
    v.channels.push_back(std::move(sc));
  }
}

void set_flags(SiteView& v, int64_t now, int64_t stale_after) {
  std::set<std::string> flags;
  if (!v.seen) flags.insert("never-seen");
  if (v.seen && now - v.received > stale_after) flags.insert("stale");
  const int64_t expiring_within = std::max(kExpiringWithin, v.expiry_warning_days * 86400);
  for (auto& c : v.channels) {
    std::set<std::string> cf;
    if (c.hq_latest > c.installed) cf.insert("behind");
    // Files pending, and neither a success nor a new plan for longer than stale_after.
    const int64_t since = std::max(c.plan_started, c.last_success);
    if (c.pending_files > 0 && since > 0 && now - since > stale_after) cf.insert("stuck");
    if (kRefusals.count(c.last_error_code)) cf.insert("refusing");
    if (!c.last_error.empty()) cf.insert("error");
    if (c.manifest_expires > 0 && c.manifest_expires - now <= expiring_within) cf.insert("expiring");
    if (!c.warnings.empty()) cf.insert("warning");
    c.flags = ordered(cf);
    flags.insert(cf.begin(), cf.end());
  }
  if (v.replica && v.replica->configured &&
      (!v.replica->ok || (v.replica->lag_seconds && *v.replica->lag_seconds > kReplicaLagLimit)))
    flags.insert("replica");
  v.flags = ordered(flags);
}

}  // namespace distd::fleet
