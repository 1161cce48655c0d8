#include "distd/bundle/importer.h"

#include "distd/bundle/importer_impl.h"

namespace distd::bundle {

using import_detail::now_s;

bool ImportResult::complete() const {
  if (!problems.empty() || !missing_volumes.empty() || !truncated_volumes.empty()) return false;
  for (auto& c : channels)
    if (!c.converged || !c.ok) return false;
  return true;
}

int ImportResult::exit_status() const {
  if (!problems.empty()) return distd::exit_status(problems.front().code);
  for (auto& c : channels)
    if (!c.ok) return distd::exit_status(c.code);
  return complete() ? 0 : kExitIncomplete;
}

namespace {
std::string result_heading(const std::string& site) {
  return "distd bundle import at site " + site + ", " + format_utc(now_s()) + "\n";
}
}  // namespace

std::string render_refusal_text(const Error& e, const std::string& site) {
  return result_heading(site) + "result: REFUSED\n" + e.what() + "\nwhat to do: " + e.hint() + "\n";
}

std::string render_result_text(const ImportResult& r, const std::string& site) {
  std::string o = result_heading(site);
  o += "bundle " + (r.bundle_id.empty() ? std::string("(none)") : r.bundle_id) + ", " + std::to_string(r.volumes) +
       " volumes\n";
  o += std::string("result: ") +
       (r.complete() ? "COMPLETE" : r.problems.empty() ? "INCOMPLETE (files missing)" : "REFUSED PARTS (see below)") +
       "\n\n";
  for (auto& n : r.notes) o += n + "\n";
  if (!r.notes.empty()) o += "\n";
  for (auto& c : r.channels) {
    o += "channel " + c.channel + ": ";
    if (!c.ok)
      o += "ERROR: " + c.error + "\n";
    else if (c.up_to_date)
      o += "already at version " + std::to_string(c.to_version) + "\n";
    else
      o += (c.converged ? "now at version " : "partly installed, version ") + std::to_string(c.to_version) + ": " +
           std::to_string(c.installed) + " installed (" + std::to_string(c.delta) + " by delta), " +
           std::to_string(c.copied) + " copied locally, " + std::to_string(c.skipped) + " already present, " +
           std::to_string(c.missing.size()) + " missing\n";
    size_t shown = 0;
    for (auto& m : c.missing) {
      if (++shown > 20) {
        o += "  ... and " + std::to_string(c.missing.size() - 20) + " more\n";
        break;
      }
      o += "  missing " + encode_path(m.path) + " (" + human_bytes(m.size) + "): " + m.why + "\n";
    }
  }
  for (auto v : r.missing_volumes) o += "volume " + std::to_string(v) + " is missing from the stick\n";
  for (auto v : r.truncated_volumes) o += "volume " + std::to_string(v) + " is truncated or damaged\n";
  for (auto& p : r.problems) o += "refused: " + p.message + "\n";
  return o;
}

}  // namespace distd::bundle
