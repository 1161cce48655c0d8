// The forum-post channel without a Moodle: envelopes and seals, the outbox's forward-only states,
// the inbox's apply-once rule around a stand-in adapter (tests/support/stand_in_apply.py keeps
// the PHP adapter's contract), and the real binaries over the link (with cuts) and on a stick.
// The same paths against a real Moodle: tests/moodle/test_forum_*.py.
#include <boost/test/unit_test.hpp>

#include <sodium.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "distd/forum/channel.h"
#include "distd/forum/inbox.h"
#include "distd/forum/outbox.h"
#include "distd/forum/post.h"
#include "distd/plugins.h"
#include "distd/regional/daemon.h"
#include "manifest/error.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include "tests/support/bundle_site.h"

using namespace distd;
using namespace distd::forum;
using namespace distd::test;
using nlohmann::json;

namespace {

int64_t now_s() { return static_cast<int64_t>(::time(nullptr)); }

std::string uuid_n(int n) {
  char b[40];
  std::snprintf(b, sizeof b, "00000000-0000-4000-8000-%012d", n);
  return b;
}

Post reply(int n, const std::string& site = "center-1") {
  Post p;
  p.uuid = uuid_n(n);
  p.site = site;
  p.userid = 5;
  p.kind = "reply";
  p.parent = 1;
  p.discussion = 1;
  p.forum = 1;
  p.subject = "Re: Welcome " + std::to_string(n);
  p.message = "<p>Answer number " + std::to_string(n) + "</p>";
  p.created = now_s() - 60;
  return p;
}

json stand_in_state(const std::string& path) { return json::parse(read_file(path)); }

void set_mode(const std::string& path, const std::string& mode, int n = 0) {
  json s = exists(path) ? json::parse(read_file(path)) : json::object();
  s["mode"] = mode;
  s["n"] = n;
  write_file(path + ".new", s.dump());  // whole or not at all: an adapter may be reading it
  std::filesystem::rename(path + ".new", path);
}

// An HQ + center pair with HQ's forum pointed at the stand-in adapter.
struct ForumSite : BundleSite {
  std::string adapter_state = tmp / "stand-in.json";
  ForumSite() {
    std::string cfg = read_file(hq_cfg);
    cfg += "\n[forum]\napply_command = [\"env\", \"STAND_IN_STATE=" + adapter_state + "\", \"python3\", \"" +
           source_path("tests/support/stand_in_apply.py") + "\"]\napply_interval = 1\n";
    write_file(hq_cfg, cfg);
  }
  RunResult submit(int n) {
    return run({"distctl", "post", "submit", "--config", reg_cfg, "--user", "5", "--reply", "1", "--discussion", "1",
                "--subject", "Re: Welcome " + std::to_string(n), "--message", "<p>secret text " + std::to_string(n) + "</p>",
                "--uuid", uuid_n(n), "--json"});
  }
  RunResult send() { return run({"distctl", "post", "send", "--config", reg_cfg, "--json"}, {}, {}, 120); }
  std::map<std::string, json> outbox() {
    RunResult r = run({"distctl", "post", "list", "--config", reg_cfg, "--json", "--limit", "100000"});
    BOOST_REQUIRE_EQUAL(r.status, 0);
    std::map<std::string, json> m;
    json all = json::parse(r.out);  // kept alive: a range-for over a temporary's member dangles
    for (auto& p : all["posts"]) m[p["uuid"].get<std::string>()] = p;
    return m;
  }
  std::map<std::string, json> inbox() {
    RunResult r = run({"distctl", "post", "list", "--config", hq_cfg, "--json", "--limit", "100000"});
    BOOST_REQUIRE_EQUAL(r.status, 0);
    std::map<std::string, json> m;
    json all = json::parse(r.out);  // kept alive: a range-for over a temporary's member dangles
    for (auto& p : all["posts"]) m[p["uuid"].get<std::string>()] = p;
    return m;
  }
  size_t applied_in_moodle() {
    return exists(adapter_state) ? stand_in_state(adapter_state)["applied"].size() : 0;
  }
  // The center's site key exists once a request or a send has run; HQ enrolls it.
  void make_site_key() {
    if (!exists(reg_state + "/site.key")) BOOST_REQUIRE_EQUAL(request(tmp / "first-request").status, 0);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(envelopes_and_seals_refuse_what_was_altered) {
  KeyPair center = generate_keypair(), hq = generate_keypair(), other = generate_keypair();
  std::string body = posts_body("center-1", now_s(), {reply(1)});
  Unsealed u = parse_envelope(signed_envelope("posts", "center-1", body, center.sec), "posts");
  BOOST_TEST(u.site == "center-1");
  BOOST_TEST(u.body == body);
  BOOST_TEST(verify_unsealed(u, center.pub));
  BOOST_TEST(!verify_unsealed(u, other.pub));  // another site's key
  u.body[10] ^= 1;
  BOOST_TEST(!verify_unsealed(u, center.pub));  // altered body
  std::string env = signed_envelope("posts", "center-1", body, center.sec);
  BOOST_CHECK_THROW(parse_envelope(env.substr(0, 60), "posts"), Error);  // cut in the header
  BOOST_CHECK_THROW(parse_envelope(env, "answers"), Error);               // wrong kind

  std::string sealed = seal_file("posts", "center-1", body, center.sec, hq.pub);
  BOOST_TEST(sealed.find("Answer number") == std::string::npos);  // a lost stick shows no text
  Unsealed o = open_sealed(sealed, "posts", hq.sec);
  BOOST_TEST(o.body == body);
  BOOST_TEST(verify_unsealed(o, center.pub));
  BOOST_CHECK_THROW(open_sealed(sealed, "posts", other.sec), Error);  // sealed to someone else
  BOOST_CHECK_THROW(open_sealed(sealed.substr(0, sealed.size() - 1), "posts", hq.sec), Error);
  std::string flipped = sealed;
  flipped[flipped.size() / 2] ^= 0x40;
  try {
    open_sealed(flipped, "posts", hq.sec);
    BOOST_FAIL("an altered seal opened");
  } catch (const Error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == static_cast<int>(Errc::bad_signature));
  }
}

BOOST_AUTO_TEST_CASE(posts_are_checked_field_by_field) {
  json good = to_json(reply(1));
  BOOST_CHECK_NO_THROW(post_from_json(good, false));
  auto bad = [&](const std::function<void(json&)>& f, const std::string& words) {
    json j = good;
    f(j);
    try {
      post_from_json(j, false);
      BOOST_FAIL("accepted: " + j.dump().substr(0, 200));
    } catch (const Error& e) {
      BOOST_TEST_INFO(e.what());
      BOOST_TEST(std::string(e.what()).find(words) != std::string::npos);
    }
  };
  bad([](json& j) { j["uuid"] = "../../etc/passwd"; }, "UUID");
  bad([](json& j) { j["uuid"] = "00000000-0000-4000-8000-00000000000A"; }, "UUID");  // upper case
  bad([](json& j) { j.erase("userid"); }, "userid");
  bad([](json& j) { j["kind"] = "edit"; }, "kind");
  bad([](json& j) { j["parent"] = 0; }, "parent");
  bad([](json& j) { j["subject"] = std::string(256, 'x'); }, "255");
  bad([](json& j) { j["message"] = std::string(kMaxMessageBytes + 1, 'x'); }, "over the limit");
  bad([](json& j) { j["site"] = "../hq"; }, "site");
  json subj = good;
  subj["subject"] = std::string(255, 'x');
  BOOST_CHECK_NO_THROW(post_from_json(subj, false));
  // A body may carry only its own site's posts.
  std::string body = posts_body("center-1", now_s(), {reply(1), reply(2, "center-2")});
  try {
    parse_posts_body(body);
    BOOST_FAIL("a post of another site was accepted");
  } catch (const Error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == static_cast<int>(Errc::bad_signature));
  }
}

BOOST_AUTO_TEST_CASE(the_outbox_moves_forward_only) {
  TempDir t("outbox");
  Outbox ob(t / "o.db");
  Post p = reply(1);
  SubmitResult r = ob.submit(p, "center-1", 1000);
  BOOST_TEST(!r.duplicate);
  BOOST_TEST(r.item.post.created == 1000);
  SubmitResult again = ob.submit(p, "center-1", 2000);  // the form sent twice
  BOOST_TEST(again.duplicate);
  BOOST_TEST(again.item.post.created == 1000);
  BOOST_TEST(ob.count_unanswered() == 1u);

  Answer sent{p.uuid, PostState::sent, 0, 0, 0, "", ""};
  Answer applied{p.uuid, PostState::applied, 77, 1, 3000, "", ""};
  BOOST_TEST(ob.apply_answers({sent}) == 1u);
  BOOST_TEST(ob.apply_answers({applied}) == 1u);
  BOOST_TEST(ob.apply_answers({sent}) == 0u);  // an old stick's answer
  BOOST_TEST(state_name(ob.get(p.uuid)->state) == std::string("applied"));
  BOOST_TEST(ob.get(p.uuid)->answer.postid == 77);
  BOOST_TEST(!ob.retry(p.uuid));  // applied is done
  BOOST_TEST(ob.count_unanswered() == 0u);

  Post q = reply(2);
  ob.submit(q, "center-1", 1001);
  Answer refused{q.uuid, PostState::refused, 0, 0, 0, "", ""};
  refused.reason = "discussion_locked";
  ob.apply_answers({refused});
  BOOST_TEST(ob.pending_for(5, 1, 0).size() == 2u);
  BOOST_TEST(ob.dismiss(5, q.uuid));
  BOOST_TEST(!ob.dismiss(6, p.uuid));  // another author's post
  BOOST_TEST(ob.pending_for(5, 1, 0).size() == 1u);
  BOOST_TEST(ob.get(q.uuid)->post.message == q.message);  // dismissed is kept
  BOOST_TEST(ob.retry(q.uuid));
  auto back = ob.get(q.uuid);
  BOOST_TEST(state_name(back->state) == std::string("queued"));
  BOOST_TEST(back->post.retry == 1);
  BOOST_TEST(!back->dismissed);
}

BOOST_AUTO_TEST_CASE(the_inbox_applies_each_post_once_whatever_the_adapter_does) {
  TempDir t("inbox");
  std::string st = t / "stand-in.json";
  ForumSettings fs;
  fs.apply_command = {"env", "STAND_IN_STATE=" + st, "python3", source_path("tests/support/stand_in_apply.py")};
  Inbox ib(t / "i.db");
  BOOST_TEST(ib.receive({reply(1), reply(2), reply(3)}, 0, now_s()) == 3u);
  BOOST_TEST(ib.receive({reply(1)}, 0, now_s()) == 0u);  // the same post by link and by stick

  set_mode(st, "down");  // HQ's database is down: nothing is marked applied
  ApplyStats a = ib.apply_waiting(fs, t / "tmp");
  BOOST_TEST(a.applied == 0u);
  BOOST_TEST(a.waiting == 3u);
  BOOST_TEST(a.adapter_error.find("status 1") != std::string::npos);

  set_mode(st, "die_after", 1);  // the adapter is killed mid-batch
  a = ib.apply_waiting(fs, t / "tmp");
  BOOST_TEST(a.applied == 1u);
  BOOST_TEST(a.waiting == 2u);
  BOOST_TEST(a.adapter_error.find("status 137") != std::string::npos);

  // A crash between Moodle's commit and the inbox's update: Moodle has post 2, the inbox does not know.
  json s = stand_in_state(st);
  s["applied"][std::string("center-1/") + uuid_n(2)] = {{"uuid", uuid_n(2)}, {"site", "center-1"}, {"state", "applied"},
                                                        {"postid", 555}, {"discussion", 1}};
  s["mode"] = "apply";
  write_file(st, s.dump());
  a = ib.apply_waiting(fs, t / "tmp");
  BOOST_TEST(a.applied == 2u);
  BOOST_TEST(a.adapter_error.empty());
  auto answers = ib.answers_for("center-1", {reply(1), reply(2), reply(3)});
  BOOST_REQUIRE_EQUAL(answers.size(), 3u);
  BOOST_TEST(answers[1].postid == 555);  // the duplicate's post id, not a second post
  BOOST_TEST(stand_in_state(st)["applied"].size() == 3u);
  for (auto& an : answers) BOOST_TEST(state_name(an.state) == std::string("applied"));
  BOOST_TEST(ib.apply_waiting(fs, t / "tmp").offered == 0u);
}

BOOST_AUTO_TEST_CASE(hq_corrects_a_center_clock_that_is_hours_wrong) {
  TempDir t("skew");
  Inbox ib(t / "i.db");
  Post p = reply(1);
  p.created = now_s() - 3 * 3600 - 60;  // written a minute ago by a clock three hours slow
  ib.receive({p}, 3 * 3600, now_s());
  auto rows = ib.list("", 10);
  BOOST_REQUIRE_EQUAL(rows.size(), 1u);
  BOOST_TEST(std::abs(rows[0].post.created - (now_s() - 60)) <= 2);
}

BOOST_AUTO_TEST_CASE(posts_cross_a_link_that_is_cut_and_are_applied_once) {
  ForumSite s;
  s.publish();
  s.start_hq();
  for (int n = 1; n <= 3; ++n) BOOST_REQUIRE_EQUAL(s.submit(n).status, 0);
  BOOST_TEST(json::parse(s.submit(1).out)["duplicate"] == true);

  // Not enrolled yet: refused as a whole, the posts stay queued.
  RunResult r = s.send();
  BOOST_TEST_INFO(r.err);
  BOOST_TEST(r.status == exit_status(Errc::bad_signature));
  BOOST_TEST(r.err.find("not enrolled") != std::string::npos);
  BOOST_TEST(s.outbox()[uuid_n(1)]["state"] == "queued");
  BOOST_TEST(s.inbox().empty());

  s.enroll();
  // The link is cut inside HQ's answer: HQ applied, the center did not hear it.
  FlakyOptions fo;
  fo.cut_after = 100;
  s.start_link(fo);
  r = s.send();
  BOOST_TEST(r.status == exit_status(Errc::network));
  BOOST_TEST(s.applied_in_moodle() == 3u);
  BOOST_TEST(s.outbox()[uuid_n(1)]["state"] == "queued");
  r = s.send();  // again: duplicates at HQ, answered with the same posts
  BOOST_TEST_INFO(r.err);
  BOOST_REQUIRE_EQUAL(r.status, 0);
  BOOST_TEST(json::parse(r.out)["applied"] == 3);
  BOOST_TEST(s.applied_in_moodle() == 3u);
  auto ob = s.outbox();
  auto ib = s.inbox();
  BOOST_TEST(ib.size() == 3u);
  for (int n = 1; n <= 3; ++n) {
    BOOST_TEST(ob[uuid_n(n)]["state"] == "applied");
    BOOST_TEST(ob[uuid_n(n)]["answer"]["postid"] == ib[uuid_n(n)]["answer"]["postid"]);
  }
  r = s.send();  // nothing waits
  BOOST_TEST(json::parse(r.out)["sent"] == 0);

  // Another key signing as this site: refused, nothing applied.
  s.submit(4);
  std::filesystem::remove(s.reg_state + "/site.key");
  std::filesystem::remove(s.reg_state + "/site.pub");
  write_keypair(generate_keypair(), s.reg_state + "/site.key", s.reg_state + "/site.pub");
  r = s.send();
  BOOST_TEST(r.status == exit_status(Errc::bad_signature));
  BOOST_TEST(r.err.find("not signed by the enrolled key") != std::string::npos);
  BOOST_TEST(s.outbox()[uuid_n(4)]["state"] == "queued");
  BOOST_TEST(s.applied_in_moodle() == 3u);
}

BOOST_AUTO_TEST_CASE(posts_travel_sealed_on_a_stick_and_answers_come_back) {
  ForumSite s;
  s.publish();
  s.make_site_key();
  s.enroll();
  for (int n = 1; n <= 2; ++n) BOOST_REQUIRE_EQUAL(s.submit(n).status, 0);

  // HQ's database is down when the first stick arrives: the answers say "sent".
  set_mode(s.adapter_state, "down");
  json first = s.round({}, s.tmp / "stick1");
  std::string sealed = read_file(s.tmp / "stick1/distd-outbound/forum-posts.sealed");
  BOOST_TEST(sealed.find("secret text") == std::string::npos);
  BOOST_TEST(exists(s.tmp / "stick1/distd-answers-center-1.sealed"));
  BOOST_TEST(s.inbox().size() == 2u);
  BOOST_TEST(s.applied_in_moodle() == 0u);
  RunResult imp = s.import_(s.tmp / "stick1");
  BOOST_TEST_INFO(imp.err);
  BOOST_TEST(BundleSite::js(imp)["notes"].dump().find("HQ answered 2 posts") != std::string::npos);
  BOOST_TEST(s.outbox()[uuid_n(1)]["state"] == "sent");

  // The second stick: applied. A third post went by link meanwhile? No link here; sticks only.
  set_mode(s.adapter_state, "apply");
  s.round({}, s.tmp / "stick2");
  BOOST_TEST(s.applied_in_moodle() == 2u);
  imp = s.import_(s.tmp / "stick2");
  BOOST_TEST(s.outbox()[uuid_n(1)]["state"] == "applied");
  BOOST_TEST(s.outbox()[uuid_n(2)]["state"] == "applied");
  // The same stick twice, then the old stick after the newer one: nothing moves back.
  s.import_(s.tmp / "stick2");
  s.import_(s.tmp / "stick1");
  BOOST_TEST(s.outbox()[uuid_n(1)]["state"] == "applied");
  // An old request replayed at HQ: the posts are duplicates there.
  BOOST_REQUIRE_EQUAL(s.export_({"--request", s.tmp / "stick1/distd-request.txt"}, s.tmp / "stick3").status, 0);
  BOOST_TEST(s.applied_in_moodle() == 2u);
  BOOST_TEST(s.inbox().size() == 2u);

  // A stick whose posts were altered on the way: the request's signature does not cover them.
  BOOST_REQUIRE_EQUAL(s.submit(3).status, 0);
  BOOST_REQUIRE_EQUAL(s.request(s.tmp / "stick4").status, 0);
  std::string p = s.tmp / "stick4/distd-outbound/forum-posts.sealed";
  std::string bytes = read_file(p);
  bytes[bytes.size() / 2] ^= 1;
  write_file(p, bytes);
  RunResult ex = s.export_({"--request", s.tmp / "stick4/distd-request.txt"}, s.tmp / "stick4");
  BOOST_TEST(ex.status == 0);
  BOOST_TEST(ex.out.find("does not match the signed request") != std::string::npos);
  BOOST_TEST(s.inbox().count(uuid_n(3)) == 0u);
  BOOST_TEST(s.outbox()[uuid_n(3)]["state"] == "queued");
}

BOOST_AUTO_TEST_CASE(operators_see_what_waits_and_why) {
  ForumSite s;
  s.publish();
  s.make_site_key();
  s.enroll();
  s.start_hq();
  BOOST_REQUIRE_EQUAL(s.submit(1).status, 0);
  // HQ's database is down: HQ holds the post ("sent"), `post apply` says the adapter failed.
  set_mode(s.adapter_state, "down");
  RunResult r = s.send();
  BOOST_TEST_INFO(r.err);
  BOOST_TEST(r.status == kExitDeferred);
  BOOST_TEST(s.outbox()[uuid_n(1)]["state"] == "sent");
  r = run({"distctl", "post", "apply", "--config", s.hq_cfg});
  BOOST_TEST(r.status == exit_status(Errc::database));
  BOOST_TEST(r.err.find("Database connection failed") != std::string::npos);
  // Each waiting post says why: Moodle's own words pointed out among its stack trace.
  BOOST_TEST(s.inbox()[uuid_n(1)]["last_error"].get<std::string>().find("cannot reach its database") != std::string::npos);
  set_mode(s.adapter_state, "apply");
  r = run({"distctl", "post", "apply", "--config", s.hq_cfg, "--json"});
  BOOST_TEST(r.status == 0);
  BOOST_TEST(json::parse(r.out)["applied"] == 1);
  BOOST_TEST(s.send().status == 0);
  BOOST_TEST(s.outbox()[uuid_n(1)]["state"] == "applied");

  // A post that waits for hours is the daemon's warning.
  BOOST_REQUIRE_EQUAL(s.submit(2).status, 0);
  {
    Outbox ob(s.reg_state + "/forum-outbox.db");
    BOOST_TEST(ob.count_unanswered() == 1u);
  }
  RunResult q = run({"sqlite3", s.reg_state + "/forum-outbox.db",
                     "UPDATE posts SET created = created - 7*3600 WHERE uuid = '" + uuid_n(2) + "'"});
  if (q.status != 0) {  // no sqlite3 CLI: set it through the library
    SQLite::Database db(s.reg_state + "/forum-outbox.db", SQLite::OPEN_READWRITE);
    db.exec("UPDATE posts SET created = created - 7*3600 WHERE uuid = '" + uuid_n(2) + "'");
  }
  register_plugins();
  std::vector<std::string> warnings;
  Config cfg = load_config(s.reg_cfg);
  for (auto& check : health_checks())
    for (auto& w : check(cfg)) warnings.push_back(w);
  bool found = false;
  for (auto& w : warnings) found |= w.find("forum: 1 posts wait for HQ, the oldest for 7 h") != std::string::npos;
  BOOST_TEST(found);
}

namespace {

// One request on the post socket, as the plugin makes it. Empty when distd closed without answering.
std::string socket_request(const std::string& path, const std::string& line) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "connect failed";
  }
  std::string out = line + "\n";
  (void)!::write(fd, out.data(), out.size());
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return got;
}

bool wait_for_socket(const std::string& path, double seconds) {
  for (int i = 0; i < seconds * 10; ++i) {
    if (socket_request(path, R"({"op":"status"})").find("\"ok\":true") != std::string::npos) return true;
    ::usleep(100000);
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_center_killed_between_outbox_write_and_answer_loses_nothing_and_doubles_nothing) {
  ForumSite s;
  s.publish();
  std::string sock = s.reg_state + "/post.sock";
  std::string submit = json{{"op", "submit"},
                            {"post", {{"uuid", uuid_n(9)}, {"userid", 5}, {"kind", "reply"}, {"parent", 1},
                                      {"discussion", 1}, {"subject", "Re: kill"}, {"message", "<p>kept</p>"}}}}
                           .dump();
  {
    Process center({"distd", "--config", s.reg_cfg}, s.tmp / "center1.log", {"DISTD_FAULT=kill:forum-submitted:1"});
    BOOST_REQUIRE_MESSAGE(wait_for_socket(sock, 20), center.log());
    std::string got = socket_request(sock, submit);
    BOOST_TEST(got.empty());  // the plugin hears nothing: it shows an error and keeps the text
    BOOST_TEST(center.stop(15, 10) == 137);
  }
  Process center({"distd", "--config", s.reg_cfg}, s.tmp / "center2.log");
  BOOST_REQUIRE_MESSAGE(wait_for_socket(sock, 20), center.log());
  // The student sends the kept form again (same UUID): one post, the one already stored.
  json again = json::parse(socket_request(sock, submit));
  BOOST_TEST(again["ok"] == true);
  BOOST_TEST(again["duplicate"] == true);
  auto ob = s.outbox();
  BOOST_TEST(ob.size() == 1u);
  BOOST_TEST(ob[uuid_n(9)]["message"] == "<p>kept</p>");
  // What the socket refuses, it says (a post of another shape is not stored).
  json bad = json::parse(socket_request(sock, R"({"op":"submit","post":{"uuid":"x"}})"));
  BOOST_TEST(bad["ok"] == false);
  BOOST_TEST(bad["error"].get<std::string>().find("UUID") != std::string::npos);
  BOOST_TEST(s.outbox().size() == 1u);
}

BOOST_AUTO_TEST_CASE(posts_written_during_an_outage_leave_when_the_daemon_finds_hq_again) {
  // A burst of posts while HQ is down must not drive the sender's backoff up: when the daemon's
  // probe finds HQ again, the posts go at once (bench_forum.sh measured 45-57 s before this).
  ForumSite s;
  s.publish();
  s.make_site_key();
  s.enroll();
  s.set_hq_url(s.hq_url(), "probe_min_seconds = 1\nprobe_max_seconds = 2");
  std::string sock = s.reg_state + "/post.sock";
  Process center({"distd", "--config", s.reg_cfg}, s.tmp / "center.log");
  BOOST_REQUIRE_MESSAGE(wait_for_socket(sock, 20), center.log());
  for (int n = 1; n <= 12; ++n) {
    json req = {{"op", "submit"},
                {"post", {{"uuid", uuid_n(n)}, {"userid", 5}, {"kind", "reply"}, {"parent", 1}, {"discussion", 1},
                          {"subject", "Re: outage " + std::to_string(n)}, {"message", "<p>during the outage</p>"}}}};
    BOOST_REQUIRE(json::parse(socket_request(sock, req.dump()))["ok"] == true);
    ::usleep(100000);
  }
  ::sleep(3);  // the sender has tried and failed at least once
  s.start_hq();
  auto t0 = std::chrono::steady_clock::now();
  size_t applied = 0;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30)) {
    applied = 0;
    for (auto& [u, p] : s.outbox()) applied += p["state"] == "applied";
    if (applied == 12) break;
    ::usleep(250000);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  BOOST_TEST_INFO(center.log());
  BOOST_TEST(applied == 12u);
  BOOST_TEST(secs < 15.0);  // the probe (at most 2 s apart here) wakes the sender
  BOOST_TEST_MESSAGE("posts applied " << secs << " s after HQ came back");
}

BOOST_AUTO_TEST_CASE(a_refused_post_is_tried_again_only_when_an_operator_says_so) {
  ForumSite s;
  s.publish();
  s.make_site_key();
  s.enroll();
  s.start_hq();
  BOOST_REQUIRE_EQUAL(s.submit(1).status, 0);
  set_mode(s.adapter_state, "refuse");
  BOOST_TEST(s.send().status == 0);
  BOOST_TEST(s.outbox()[uuid_n(1)]["state"] == "refused");
  BOOST_TEST(s.outbox()[uuid_n(1)]["answer"]["reason"] == "discussion_locked");
  set_mode(s.adapter_state, "apply");  // the teacher unlocked the discussion
  BOOST_TEST(json::parse(s.send().out)["sent"] == 0);  // refused is final: nothing is resent by itself
  RunResult r = run({"distctl", "post", "retry", uuid_n(1), "--config", s.reg_cfg});
  BOOST_TEST_INFO(r.err);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(s.outbox()[uuid_n(1)]["state"] == "queued");
  BOOST_TEST(s.outbox()[uuid_n(1)]["retry"] == 1);
  BOOST_TEST(s.send().status == 0);
  BOOST_TEST(s.outbox()[uuid_n(1)]["state"] == "applied");
  BOOST_TEST(s.applied_in_moodle() == 1u);
  r = run({"distctl", "post", "retry", uuid_n(1), "--config", s.reg_cfg});
  BOOST_TEST(r.status == exit_status(Errc::not_found));  // applied is done: docs/cli.md
  BOOST_TEST(r.err.find("not refused") != std::string::npos);
}
