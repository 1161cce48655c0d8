#include "distd/fleet/page.h"

#include <algorithm>

#include "manifest/encoding.h"
#include "manifest/version.h"

namespace distd::fleet {
namespace {

constexpr size_t kMaxShownText = 400;  // bytes of an error or warning shown (distctl fleet: 200)

// How each flag of fleet_view() looks and what the legend says of it. A flag not listed here is
// still shown (with the "warn" look); a new flag gets a line here.
struct FlagStyle {
  const char* flag;
  const char* look;  // "bad", "warn" or "none": the badge's colours (its text says the same)
  const char* meaning;
};
constexpr FlagStyle kFlags[] = {
    {"never-seen", "none", "HQ has no report from it yet"},
    {"stale", "warn", "no report for longer than the stale limit"},
    {"behind", "warn", "a channel's installed version is below HQ's latest"},
    {"stuck", "bad", "files pending with no progress for longer than the stale limit"},
    {"refusing", "bad", "the center refuses what HQ sends (signature, rollback, expiry, corrupt, unsafe path)"},
    {"error", "bad", "the last sync of a channel failed"},
    {"expiring", "warn", "an installed manifest expires soon or has expired"},
    {"replica", "bad", "the center's database replica is not ok or over an hour behind"},
    {"warning", "warn", "the center reported a warning"},
};

const FlagStyle* style_of(const std::string& flag) {
  for (const auto& f : kFlags)
    if (flag == f.flag) return &f;
  return nullptr;
}
const char* look_of(const std::string& flag) {
  const FlagStyle* s = style_of(flag);
  return s ? s->look : "warn";
}

// The look of a site's row: its worst flag's.
const char* row_look(const SiteView& s) {
  if (s.flags.empty()) return "ok";
  const char* worst = "none";
  for (const auto& f : s.flags) {
    std::string_view l = look_of(f);
    if (l == "bad") return "bad";
    if (l == "warn") worst = "warn";
  }
  return worst;
}

std::string badge(const std::string& look, const std::string& text) {
  return "<span class=\"flag " + look + "\">" + html_escape(text) + "</span>";
}

// At most kMaxShownText bytes, cut at a UTF-8 character boundary.
std::string shortened(const std::string& text) {
  if (text.size() <= kMaxShownText) return text;
  size_t n = kMaxShownText;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return text.substr(0, n) + "…";
}

std::string version_text(uint64_t v) { return v ? std::to_string(v) : std::string("none"); }

// --- the columns: one function per cell; a new SiteView field is a line in one of them, or a
// new entry in kColumns. ---

std::string site_cell(const SiteView& s, const PageContext&) {
  std::string o = "<span class=\"site\">" + html_escape(s.site) + "</span>";
  if (!s.enrolled) o += " <span class=\"note\">(not enrolled)</span>";
  return o;
}

std::string flags_cell(const SiteView& s, const PageContext&) {
  if (s.flags.empty()) return badge("ok", "ok");
  std::string o;
  for (const auto& f : s.flags) o += badge(look_of(f), f) + " ";
  return o;
}

std::string seen_cell(const SiteView& s, const PageContext& ctx) {
  if (!s.seen) return "<span class=\"muted\">never</span>";
  const std::string utc = format_utc(s.received);
  return "<time datetime=\"" + utc + "\" title=\"" + utc + "\">" + html_escape(relative_age(ctx.now - s.received)) +
         "</time><span class=\"utc\">" + utc + "</span>";
}

std::string how_cell(const SiteView& s, const PageContext&) {
  if (!s.seen || s.how.empty()) return "<span class=\"muted\">–</span>";
  return "<span class=\"how\">" + html_escape(s.how) + "</span>";
}

std::string channel_line(const SiteChannel& c) {
  const bool behind = c.hq_latest > c.installed;
  std::string o = "<li><span class=\"ch\">" + html_escape(c.channel) + "</span> ";
  o += "<span class=\"" + std::string(behind ? "v behind" : "v") + "\">" + version_text(c.installed) + "</span>";
  o += " <span class=\"of\">of HQ " + (c.hq_latest ? std::to_string(c.hq_latest) : std::string("–")) + "</span>";
  if (c.pending_files || c.pending_bytes)
    o += "<span class=\"pending\">pending " + std::to_string(c.pending_files) +
         (c.pending_files == 1 ? " file, " : " files, ") + human_bytes(c.pending_bytes) + "</span>";
  if (c.manifest_expires) {
    const bool soon = std::find(c.flags.begin(), c.flags.end(), "expiring") != c.flags.end();
    o += "<span class=\"" + std::string(soon ? "expires soon" : "expires") + "\">expires " +
         format_utc(c.manifest_expires).substr(0, 10) + "</span>";
  }
  return o + "</li>";
}

std::string channels_cell(const SiteView& s, const PageContext&) {
  if (s.channels.empty()) return "<span class=\"muted\">–</span>";
  std::string o = "<ul class=\"chans\">";
  for (const auto& c : s.channels) o += channel_line(c);
  return o + "</ul>";
}

std::string problems_cell(const SiteView& s, const PageContext&) {
  std::string o;
  for (const auto& c : s.channels) {
    const std::string ch = "<b>" + html_escape(c.channel) + ":</b> ";
    if (!c.last_error.empty()) o += "<p class=\"err\">" + ch + html_escape(shortened(c.last_error)) + "</p>";
    for (const auto& w : c.warnings) o += "<p class=\"wrn\">" + ch + html_escape(shortened(w)) + "</p>";
  }
  return o.empty() ? "<span class=\"muted\">–</span>" : o;
}

// The center's database replica and its forum outbox (the report's "replica" and "outbox").
std::string center_cell(const SiteView& s, const PageContext&) {
  std::string o;
  if (s.replica && s.replica->configured) {
    const SiteReplica& r = *s.replica;
    std::string lag = r.lag_seconds ? ", " + std::to_string(*r.lag_seconds) + " s behind" : std::string();
    if (r.ok) {
      o += "<span class=\"rep\">replica ok" + lag + "</span>";
    } else {
      o += "<span class=\"rep bad\">replica NOT OK" + lag + "</span>";
      if (!r.error.empty()) o += "<p class=\"err\">" + html_escape(shortened(r.error)) + "</p>";
    }
  }
  if (s.outbox_posts)
    o += "<span class=\"rep\">" + std::to_string(*s.outbox_posts) + (*s.outbox_posts == 1 ? " post" : " posts") +
         " wait for HQ</span>";
  return o.empty() ? "<span class=\"muted\">–</span>" : o;
}

std::string version_cell(const SiteView& s, const PageContext&) {
  std::string o = s.distd_version.empty() ? "<span class=\"muted\">–</span>" : html_escape(s.distd_version);
  if (s.free_bytes) o += "<span class=\"free\">" + human_bytes(*s.free_bytes) + " free</span>";
  return o;
}

struct Column {
  const char* label;  // the table's header, and the label of the line on a phone
  const char* cls;
  std::string (*cell)(const SiteView&, const PageContext&);
};
constexpr Column kColumns[] = {
    {"Site", "c-site", site_cell},         {"Flags", "c-flags", flags_cell},
    {"Last seen", "c-seen", seen_cell},    {"Via", "c-how", how_cell},
    {"Channels", "c-chans", channels_cell}, {"Last error", "c-err", problems_cell},
    {"Replica, posts", "c-rep", center_cell}, {"distd", "c-ver", version_cell},
};

constexpr const char* kStyle = R"css(
*{box-sizing:border-box}
body{margin:0;padding:16px;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f4f5f7}
main{max-width:1200px;margin:0 auto}
h1{font-size:1.5em;margin:0 0 4px}
h1 small{font-weight:normal;color:#5a6270;font-size:.6em}
.summary{font-size:1.1em;margin:0 0 4px}
.meta{color:#5a6270;margin:0 0 16px;font-size:.9em}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #d5d9e0}
th,td{text-align:left;vertical-align:top;padding:8px 10px;border-bottom:1px solid #e4e7ec;overflow-wrap:break-word}
th{background:#eceef2;font-size:.85em;font-weight:600;color:#444c58;white-space:nowrap}
td.c-err{width:35%;overflow-wrap:anywhere}
tr.row-bad td:first-child{box-shadow:inset 4px 0 #c62828}
tr.row-warn td:first-child{box-shadow:inset 4px 0 #e0a100}
tr.row-none td:first-child{box-shadow:inset 4px 0 #9aa1ab}
tr.row-ok td:first-child{box-shadow:inset 4px 0 #2e7d32}
.site{font-weight:600}
.flag{display:inline-block;padding:0 8px;border-radius:10px;font-size:.85em;font-weight:600;border:1px solid;margin:1px 2px 1px 0;white-space:nowrap}
.flag.ok{color:#1e5e25;background:#e3f3e4;border-color:#9ccc9f}
.flag.bad{color:#9b1c1c;background:#fdecec;border-color:#f0a6a6}
.flag.warn{color:#7a4f00;background:#fff4d4;border-color:#e8c66a}
.flag.none{color:#454c57;background:#eceef1;border-color:#c3c8cf}
.muted,.note,.of,.utc,.free{color:#5a6270}
.utc,.free,.pending{display:block;font-size:.8em}
.pending{color:#7a4f00}
.expires,.rep{display:block;font-size:.8em;color:#5a6270}
.expires.soon,.rep.bad{color:#9b1c1c;font-weight:600}
.how{display:inline-block;padding:0 6px;border-radius:4px;background:#eceef1;font-size:.85em;white-space:nowrap}
.chans{list-style:none;margin:0;padding:0}
.chans li+li{margin-top:4px}
.ch{font-family:ui-monospace,Menlo,Consolas,monospace}
.of{white-space:nowrap}
.v{font-weight:600}
.v.behind{color:#9b1c1c}
.err,.wrn{margin:0 0 4px;font-size:.9em}
.err{color:#9b1c1c}
.wrn{color:#7a4f00}
.legend{display:grid;grid-template-columns:max-content 1fr;gap:4px 10px;margin:16px 0;color:#444c58;font-size:.9em}
.legend dt,.legend dd{margin:0}
.empty{background:#fff;border:1px solid #d5d9e0;padding:16px}
@media (min-width:601px){.site,.utc,.free,.chans li{white-space:nowrap}}
@media (max-width:600px){
body{padding:10px}
table,tbody,tr,td{display:block;width:auto}
table{border:0;background:none}
td.c-err{width:auto}
thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
tr{background:#fff;border:1px solid #d5d9e0;border-radius:8px;margin:0 0 12px;padding:8px 10px}
tr td:first-child{box-shadow:none!important}
tr.row-bad{border-left:5px solid #c62828}
tr.row-warn{border-left:5px solid #e0a100}
tr.row-none{border-left:5px solid #9aa1ab}
tr.row-ok{border-left:5px solid #2e7d32}
td{display:grid;grid-template-columns:5.8em minmax(0,1fr);gap:8px;border:0;padding:3px 0;overflow-wrap:anywhere}
td::before{content:attr(data-label);font-weight:600;color:#5a6270;font-size:.85em;padding-top:1px}
td.c-site{display:block;font-size:1.15em;padding-bottom:4px}
td.c-site::before{content:none}
}
)css";

std::string summary(const std::vector<SiteView>& sites) {
  size_t flagged = 0;
  for (const auto& s : sites) flagged += s.flags.empty() ? 0 : 1;
  std::string o = "<p class=\"summary\"><b>" + std::to_string(sites.size()) +
                  (sites.size() == 1 ? " site" : " sites") + "</b>, ";
  if (flagged == 0) return o + "none needs attention</p>";
  return o + "<b class=\"attention\">" + std::to_string(flagged) +
         (flagged == 1 ? " needs attention" : " need attention") + "</b></p>";
}

std::string meta_line(const PageContext& ctx) {
  std::string o = "<p class=\"meta\">As of <time datetime=\"" + format_utc(ctx.now) + "\">" + format_utc(ctx.now) +
                  "</time> (HQ's clock)";
  if (!ctx.hq_latest.empty()) {
    o += " · HQ's latest:";
    bool first = true;
    for (const auto& [ch, v] : ctx.hq_latest) {
      o += std::string(first ? " " : ", ") + "<span class=\"ch\">" + html_escape(ch) + "</span> " +
           (v ? std::to_string(v) : std::string("none"));
      first = false;
    }
  }
  return o + "</p>";
}

std::string site_row(const SiteView& s, const PageContext& ctx) {
  std::string o = "<tr class=\"row-" + std::string(row_look(s)) + "\" id=\"site-" + html_escape(s.site) + "\">";
  for (const auto& col : kColumns)
    o += std::string("<td class=\"") + col.cls + "\" data-label=\"" + col.label + "\"><div>" + col.cell(s, ctx) +
         "</div></td>";
  return o + "</tr>\n";
}

std::string legend(const PageContext& ctx) {
  std::string o = "<dl class=\"legend\">";
  o += "<dt>" + badge("ok", "ok") + "</dt><dd>reported, up to date, no error</dd>";
  for (const auto& f : kFlags) {
    std::string meaning = f.meaning;
    if (std::string_view(f.flag) == "stale") meaning = "no report for " + std::to_string(ctx.stale_after / 3600) + " h";
    o += "<dt>" + badge(f.look, f.flag) + "</dt><dd>" + html_escape(meaning) + "</dd>";
  }
  return o + "</dl>";
}

}  // namespace

std::vector<std::pair<std::string, std::string>> page_headers() {
  return {{"Cache-Control", "no-store"},
          {"X-Content-Type-Options", "nosniff"},
          {"Content-Security-Policy",
           "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; frame-ancestors 'none'; "
           "base-uri 'none'; form-action 'none'"}};
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  return out;
}

std::string relative_age(int64_t s) {
  if (s < 0) {
    const std::string ahead = relative_age(-s);  // "5 min ago" -> "in 5 min" (a clock ahead of HQ's)
    return ahead == "just now" ? ahead : "in " + ahead.substr(0, ahead.size() - 4);
  }
  if (s < 5) return "just now";
  if (s < 60) return std::to_string(s) + " s ago";
  if (s < 3600) return std::to_string(s / 60) + " min ago";
  if (s < 48 * 3600) return std::to_string(s / 3600) + " h ago";
  return std::to_string(s / 86400) + " d ago";
}

std::string render_fleet_page(const std::vector<SiteView>& sites_in, const PageContext& ctx) {
  std::vector<SiteView> sites = sites_in;
  std::stable_partition(sites.begin(), sites.end(), [](const SiteView& s) { return !s.flags.empty(); });
  const std::string title = "Fleet" + (ctx.hq_site.empty() ? std::string() : " · HQ " + ctx.hq_site);
  std::string o = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                  "<meta name=\"viewport\" content=\"width=device-width\">\n<title>" +
                  html_escape(title) + "</title>\n<style>" + kStyle + "</style></head>\n<body><main>\n";
  o += "<h1>Fleet" + (ctx.hq_site.empty() ? std::string() : " <small>HQ " + html_escape(ctx.hq_site) + "</small>") +
       "</h1>\n";
  o += summary(sites) + "\n" + meta_line(ctx) + "\n";
  if (sites.empty()) {
    o += "<p class=\"empty\">No site is enrolled and none has reported. A center shows up here once its "
         "key is in <code>[hq] sites_dir</code> and after its first sync (docs/hq.md \"The fleet\").</p>\n";
  } else {
    o += "<table>\n<thead><tr>";
    for (const auto& col : kColumns) o += std::string("<th scope=\"col\">") + col.label + "</th>";
    o += "</tr></thead>\n<tbody>\n";
    for (const auto& s : sites) o += site_row(s, ctx);
    o += "</tbody></table>\n";
  }
  o += legend(ctx);
  o += "\n<p class=\"meta\">distd " + html_escape(distd_version()) +
       " · the same data as <code>distctl fleet</code> and <code>GET /metrics</code></p>\n</main></body></html>\n";
  return o;
}

std::string render_fleet_page(const Config& cfg, int64_t now) {
  PageContext ctx;
  ctx.now = now;
  ctx.hq_site = cfg.site;
  ctx.hq_latest = hq_latest_versions(cfg);
  return render_fleet_page(fleet_view(cfg, now, ctx.stale_after), ctx);
}

}  // namespace distd::fleet
