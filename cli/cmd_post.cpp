// distctl post: the forum-post channel for operators and scripts (docs/forum.md).
#include <sys/stat.h>

#include <sodium.h>

#include <cstdio>
#include <ctime>

#include "cli/command.h"
#include "cli/json_out.h"
#include "distd/config/config.h"
#include "distd/forum/channel.h"
#include "distd/forum/inbox.h"
#include "distd/forum/outbox.h"
#include "manifest/encoding.h"
#include "manifest/error.h"
#include "manifest/fs.h"

namespace distd::cli {
namespace {

using nlohmann::json;
using namespace distd::forum;

std::string new_uuid() {
  unsigned char b[16];
  randombytes_buf(b, sizeof b);
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);
  std::string h = to_hex(b, sizeof b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

std::string when(int64_t t) {
  if (t <= 0) return "-";
  return format_utc(t);
}

json item_json(const OutboxItem& it) {
  json j = to_json(it.post);
  j["state"] = state_name(it.state);
  j["sends"] = it.sends;
  j["last_sent"] = it.last_sent;
  j["dismissed"] = it.dismissed;
  j["answer"] = to_json(it.answer);
  return j;
}

json row_json(const Inbox::Row& r) {
  json j = to_json(r.post);
  j["state"] = state_name(r.answer.state);
  j["received"] = r.received;
  j["attempts"] = r.attempts;
  if (!r.last_error.empty()) j["last_error"] = r.last_error;
  j["answer"] = to_json(r.answer);
  return j;
}

std::string one_line(const std::string& s, size_t n) {
  std::string o;
  for (char c : s) o += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  return o.size() > n ? o.substr(0, n - 3) + "..." : o;
}

std::string where_to(const Post& p) {
  return p.kind == "reply" ? "reply to post " + std::to_string(p.parent) + " (discussion " + std::to_string(p.discussion) + ")"
                           : "new discussion in forum " + std::to_string(p.forum);
}

std::string answer_words(const Answer& a) {
  switch (a.state) {
    case PostState::queued: return "queued at this center";
    case PostState::sent: return "held at HQ, not applied yet";
    case PostState::applied: return "applied at HQ as post " + std::to_string(a.postid) + " at " + when(a.applied);
    case PostState::refused: return "refused by HQ: " + a.reason + (a.reason_text.empty() ? "" : " (" + a.reason_text + ")");
  }
  return "";
}

void print_item_text(const Post& p, PostState s, const Answer& a, const std::string& extra) {
  std::printf("post %s from site %s\n", p.uuid.c_str(), p.site.c_str());
  std::printf("  author    user %lld\n", static_cast<long long>(p.userid));
  std::printf("  where     %s\n", where_to(p).c_str());
  std::printf("  subject   %s\n", p.subject.c_str());
  std::printf("  written   %s (the center's clock)\n", when(p.created).c_str());
  std::printf("  state     %s: %s\n", state_name(s), answer_words(a).c_str());
  if (!extra.empty()) std::printf("%s", extra.c_str());
  std::printf("  message (%zu bytes, format %lld):\n%s\n", p.message.size(), static_cast<long long>(p.format), p.message.c_str());
}

struct Common {
  std::string config = default_config_path();
  bool json = false;
};

void add_common(CLI::App* c, Common& a) {
  a.config = default_config_path();
  c->add_option("-c,--config", a.config, "config file ($DISTD_CONFIG or /etc/distd/distd.toml)");
  c->add_flag("--json", a.json, "print as JSON on stdout");
}

Config center_config(const std::string& path, const char* what) {
  Config cfg = load_config(path);
  cfg.require_role("regional", std::string("distctl post ") + what + " works on a center's outbox",
                   "use the regional center's config (at HQ: 'distctl post list' and 'distctl post apply')");
  return cfg;
}

void add_list(CLI::App* post, Action& chosen) {
  static Common list_a;
  static std::string list_state;
  static size_t list_limit = 50;
  auto* list = post->add_subcommand("list", "List posts, newest first (center: the outbox; HQ: the inbox)");
  add_common(list, list_a);
  list->add_option("--state", list_state, "only this state: queued, sent, applied, refused")
      ->check(CLI::IsMember({"queued", "sent", "applied", "refused"}));
  list->add_option("--limit", list_limit, "at most this many")->capture_default_str();
  list->callback([&chosen] {
    chosen = [] {
      Config cfg = load_config(list_a.config);
      ForumSettings fs = ForumSettings::from(cfg);
      json arr = json::array();
      std::map<std::string, size_t> counts;
      if (cfg.role == "regional") {
        Outbox ob(fs.outbox);
        for (auto& it : ob.list(list_state, list_limit)) {
          arr.push_back(item_json(it));
          counts[state_name(it.state)]++;
          if (!list_a.json)
            std::printf("%-36s  %-7s  user %-6lld %s  %s\n", it.post.uuid.c_str(), state_name(it.state),
                        static_cast<long long>(it.post.userid), when(it.post.created).c_str(),
                        one_line(it.post.subject, 40).c_str());
        }
        if (list_a.json) print_json({{"site", cfg.site}, {"role", "regional"}, {"unanswered", ob.count_unanswered()}, {"posts", arr}});
        else std::printf("%zu posts wait for HQ's answer\n", ob.count_unanswered());
      } else {
        Inbox ib(fs.inbox);
        for (auto& r : ib.list(list_state, list_limit)) {
          arr.push_back(row_json(r));
          if (!list_a.json)
            std::printf("%-36s  %-12s %-7s  user %-6lld %s  %s\n", r.post.uuid.c_str(), r.post.site.c_str(),
                        state_name(r.answer.state), static_cast<long long>(r.post.userid), when(r.received).c_str(),
                        one_line(r.last_error.empty() ? r.post.subject : "error: " + r.last_error, 60).c_str());
        }
        if (list_a.json) print_json({{"site", cfg.site}, {"role", "hq"}, {"waiting", ib.count_waiting()}, {"posts", arr}});
        else std::printf("%zu posts wait to be applied\n", ib.count_waiting());
      }
      return 0;
    };
  });
}

void add_post_show(CLI::App* post, Action& chosen) {
  static Common show_a;
  static std::string show_uuid;
  auto* show = post->add_subcommand("show", "Show one post: where it goes, its text, HQ's answer");
  add_common(show, show_a);
  show->add_option("uuid", show_uuid, "the post's UUID (from 'distctl post list')")->required();
  show->callback([&chosen] {
    chosen = [] {
      Config cfg = load_config(show_a.config);
      ForumSettings fs = ForumSettings::from(cfg);
      if (cfg.role == "regional") {
        auto it = Outbox(fs.outbox).get(show_uuid);
        if (!it) throw Error(Errc::not_found, "no post " + show_uuid + " in this center's outbox", "see 'distctl post list'");
        if (show_a.json) print_json(item_json(*it));
        else
          print_item_text(it->post, it->state, it->answer,
                          "  sends     " + std::to_string(it->sends) + (it->last_sent ? ", last " + when(it->last_sent) : "") + "\n");
        return 0;
      }
      auto r = Inbox(fs.inbox).get(show_uuid);
      if (!r) throw Error(Errc::not_found, "no post " + show_uuid + " in HQ's inbox", "see 'distctl post list'");
      if (show_a.json) print_json(row_json(*r));
      else
        print_item_text(r->post, r->answer.state, r->answer,
                        "  received  " + when(r->received) + ", " + std::to_string(r->attempts) + " attempts" +
                            (r->last_error.empty() ? "" : "; last error: " + r->last_error) + "\n");
      return 0;
    };
  });
}

void add_retry(CLI::App* post, Action& chosen) {
  static Common retry_a;
  static std::vector<std::string> retry_uuids;
  static bool retry_all = false;
  auto* retry = post->add_subcommand("retry", "Send refused posts to HQ once more (after the cause is fixed there)");
  add_common(retry, retry_a);
  retry->add_option("uuid", retry_uuids, "the posts' UUIDs");
  retry->add_flag("--all-refused", retry_all, "every refused post");
  retry->callback([&chosen] {
    chosen = [] {
      Config cfg = center_config(retry_a.config, "retry");
      Outbox ob(ForumSettings::from(cfg).outbox);
      std::vector<std::string> ids = retry_uuids;
      if (retry_all)
        for (auto& it : ob.list("refused", 1u << 30)) ids.push_back(it.post.uuid);
      if (ids.empty()) throw Error(Errc::usage, "name the posts to retry, or --all-refused");
      json done = json::array(), skipped = json::array();
      for (auto& u : ids) {
        if (ob.retry(u)) {
          done.push_back(u);
        } else {
          skipped.push_back(u);
          if (!retry_a.json) std::fprintf(stderr, "%s: not refused (or not in the outbox); left as it is\n", u.c_str());
        }
      }
      if (retry_a.json) print_json({{"queued", done}, {"skipped", skipped}});
      else std::printf("%zu posts queued again; they go with the next send or stick\n", done.size());
      return skipped.empty() ? 0 : exit_status(Errc::not_found);
    };
  });
}

void add_submit(CLI::App* post, Action& chosen) {
  static Common submit_a;
  static int64_t sub_user = 0, sub_reply = 0, sub_discussion = 0, sub_forum = 0, sub_format = 1;
  static std::string sub_subject, sub_message, sub_message_file, sub_uuid;
  auto* submit = post->add_subcommand("submit", "Queue a post as a user would write it (scripts and tests)");
  add_common(submit, submit_a);
  submit->add_option("--user", sub_user, "the author's Moodle user id")->required();
  auto* r = submit->add_option("--reply", sub_reply, "reply to this post id");
  submit->add_option("--discussion", sub_discussion, "the reply's discussion id (shown in the center's page)");
  auto* f = submit->add_option("--forum", sub_forum, "start a new discussion in this forum id");
  r->excludes(f);
  submit->add_option("--subject", sub_subject, "the subject")->required();
  auto* m = submit->add_option("--message", sub_message, "the text (HTML)");
  auto* mf = submit->add_option("--message-file", sub_message_file, "read the text from this file");
  m->excludes(mf);
  submit->add_option("--format", sub_format, "Moodle's text format (1 = HTML)")->capture_default_str();
  submit->add_option("--uuid", sub_uuid, "the post's UUID (default: a new one)");
  submit->callback([&chosen] {
    chosen = [] {
      Config cfg = center_config(submit_a.config, "submit");
      ForumSettings fs = ForumSettings::from(cfg);
      if (!sub_reply && !sub_forum) throw Error(Errc::usage, "give --reply POSTID or --forum FORUMID");
      std::string msg = sub_message_file.empty() ? sub_message : read_file(sub_message_file, 16 << 20, "message");
      json pj = {{"uuid", sub_uuid.empty() ? new_uuid() : sub_uuid},
                 {"userid", sub_user},
                 {"kind", sub_reply ? "reply" : "discussion"},
                 {"parent", sub_reply},
                 {"discussion", sub_discussion},
                 {"forum", sub_forum},
                 {"subject", sub_subject},
                 {"message", msg},
                 {"format", sub_format}};
      Post p = post_from_json(pj, true, fs.max_message_bytes);
      make_dirs(cfg.state_dir, 0750);
      SubmitResult res = Outbox(fs.outbox).submit(p, cfg.site, static_cast<int64_t>(::time(nullptr)));
      if (submit_a.json) print_json({{"uuid", res.item.post.uuid}, {"state", state_name(res.item.state)}, {"duplicate", res.duplicate},
                                     {"created", res.item.post.created}});
      else std::printf("%s %s\n", res.item.post.uuid.c_str(), res.duplicate ? "was already in the outbox" : "queued");
      return 0;
    };
  });
}

void add_send(CLI::App* post, Action& chosen) {
  static Common send_a;
  auto* send = post->add_subcommand("send", "Send the posts that wait to HQ now, and record its answers");
  add_common(send, send_a);
  send->footer("Exit status: 0 when HQ answered for every post (applied or refused), 75 when some are\n"
               "still waiting at HQ, 12 (network) when HQ could not be reached, 6 (bad signature) when HQ\n"
               "refused this site's signature (not enrolled, or another key).");
  send->callback([&chosen] {
    chosen = [] {
      Config cfg = center_config(send_a.config, "send");
      SendReport rep = send_posts(cfg, nullptr);
      if (send_a.json)
        print_json({{"sent", rep.sent}, {"applied", rep.applied}, {"refused", rep.refused}, {"waiting", rep.waiting},
                    {"bytes_sent", rep.bytes_sent}, {"bytes_received", rep.bytes_received}});
      else
        std::printf("sent %zu posts: %zu applied, %zu refused, %zu waiting at HQ (%s up, %s down)\n", rep.sent, rep.applied,
                    rep.refused, rep.waiting, human_bytes(rep.bytes_sent).c_str(), human_bytes(rep.bytes_received).c_str());
      return rep.waiting ? kExitDeferred : 0;
    };
  });
}

void add_apply(CLI::App* post, Action& chosen) {
  static Common apply_a;
  auto* apply = post->add_subcommand("apply", "At HQ: apply the posts that wait in the inbox now");
  add_common(apply, apply_a);
  apply->footer("Exit status: 0 when nothing waits, 75 when posts still wait, 13 (database) when the\n"
                "adapter failed (HQ's database down, PHP errors: the message says which).");
  apply->callback([&chosen] {
    chosen = [] {
      Config cfg = load_config(apply_a.config);
      if (cfg.role != "hq") throw Error(Errc::usage, "distctl post apply runs at HQ; config " + cfg.file + " is a center's");
      ForumSettings fs = ForumSettings::from(cfg);
      Inbox ib(fs.inbox);
      ApplyStats total;
      for (;;) {
        ApplyStats s = ib.apply_waiting(fs, cfg.state_dir + "/tmp");
        total.offered += s.offered, total.applied += s.applied, total.refused += s.refused;
        total.adapter_error = s.adapter_error;
        total.adapter_status = s.adapter_status;
        if (s.offered == 0 || !s.adapter_error.empty() || s.applied + s.refused == 0) break;
      }
      size_t waiting = ib.count_waiting();
      if (apply_a.json)
        print_json({{"applied", total.applied}, {"refused", total.refused}, {"waiting", waiting}, {"error", total.adapter_error}});
      else {
        std::printf("applied %zu, refused %zu; %zu wait\n", total.applied, total.refused, waiting);
        if (!total.adapter_error.empty()) std::fprintf(stderr, "distctl: %s\n", total.adapter_error.c_str());
      }
      if (!total.adapter_error.empty()) return exit_status(Errc::database);
      return waiting ? kExitDeferred : 0;
    };
  });
}

void register_post(CLI::App& app, Action& chosen) {
  auto* post = app.add_subcommand("post", "Forum posts written at a center: the outbox there, the inbox at HQ");
  post->require_subcommand(1);
  post->footer(
      "Students post on the center's Moodle (the local_distd plugin); distd keeps each post in the\n"
      "center's outbox until HQ has answered for it (applied once, or refused with a reason), and sends\n"
      "it over the link whenever HQ answers and inside every stick request. See docs/forum.md.\n\n"
      "States: queued (HQ does not have it), sent (HQ holds it, not applied yet), applied, refused.\n\n"
      "Examples:\n"
      "  distctl post list                      # the center's outbox (at HQ: the inbox)\n"
      "  distctl post list --state refused --json\n"
      "  distctl post show 0b5c...-...          # one post, its text and HQ's answer\n"
      "  distctl post retry 0b5c...-...         # HQ tries a refused post again (e.g. the discussion reopened)\n"
      "  distctl post send                      # send now instead of waiting for the daemon\n"
      "  distctl post apply                     # at HQ: apply posts that wait (its database was down)");
  add_list(post, chosen);
  add_post_show(post, chosen);
  add_retry(post, chosen);
  add_submit(post, chosen);
  add_send(post, chosen);
  add_apply(post, chosen);
}

const CommandRegistrar registrar_post(47, register_post);

}  // namespace
}  // namespace distd::cli
