// The center's side of the forum channel: the plugin's local socket, the sender, the stick hooks.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "distd/bundle/request.h"
#include "distd/forum/channel.h"
#include "distd/forum/outbox.h"
#include "distd/io/pause.h"
#include "distd/net/http_client.h"
#include "distd/regional/channel_install.h"
#include "distd/regional/sync.h"
#include "manifest/error.h"
#include "manifest/fault.h"
#include "manifest/fs.h"

namespace distd::forum {

using nlohmann::json;

namespace {

int64_t now_s() { return static_cast<int64_t>(::time(nullptr)); }

constexpr size_t kMaxLine = kMaxPostJsonBytes + 4096;

json item_json(const OutboxItem& it) {
  json j = to_json(it.post);
  j["state"] = state_name(it.state);
  if (it.answer.postid) j["postid"] = it.answer.postid;
  if (it.answer.discussion) j["hq_discussion"] = it.answer.discussion;
  if (it.answer.applied) j["answered"] = it.answer.applied;
  if (!it.answer.reason.empty()) j["reason"] = it.answer.reason;
  if (!it.answer.reason_text.empty()) j["reason_text"] = it.answer.reason_text;
  return j;
}

// One request of the local channel: a JSON line in, a JSON line out.
json handle_line(const Config& cfg, const ForumSettings& fs, const std::string& line, SendSignal& signal) {
  json req = json::parse(line, nullptr, false);
  if (req.is_discarded() || !req.is_object() || !req.contains("op") || !req["op"].is_string())
    return {{"ok", false}, {"error", "the request is not a JSON object with an \"op\""}};
  std::string op = req["op"].get<std::string>();
  Outbox ob(fs.outbox);
  if (op == "submit") {
    if (!req.contains("post")) return {{"ok", false}, {"error", "submit needs a \"post\""}};
    Post p = post_from_json(req["post"], true, fs.max_message_bytes);
    SubmitResult r = ob.submit(p, cfg.site, now_s());
    fault_point("forum-submitted");  // durable, not yet acknowledged to the plugin
    if (!r.duplicate) signal.new_post();
    return {{"ok", true},           {"uuid", r.item.post.uuid},        {"state", state_name(r.item.state)},
            {"created", r.item.post.created}, {"duplicate", r.duplicate}};
  }
  if (op == "pending") {
    int64_t user = req.value("userid", int64_t{0}), d = req.value("discussion", int64_t{0}), f = req.value("forum", int64_t{0});
    if (user <= 0 || (d <= 0) == (f <= 0))
      return {{"ok", false}, {"error", "pending needs a userid and one of discussion or forum"}};
    json arr = json::array();
    for (auto& it : ob.pending_for(user, d, f)) arr.push_back(item_json(it));
    return {{"ok", true}, {"site", cfg.site}, {"posts", arr}};
  }
  if (op == "dismiss") {
    int64_t user = req.value("userid", int64_t{0});
    std::string uuid = req.value("uuid", std::string());
    return {{"ok", ob.dismiss(user, uuid)}};
  }
  if (op == "status") return {{"ok", true}, {"site", cfg.site}, {"unanswered", ob.count_unanswered()}};
  return {{"ok", false}, {"error", "unknown op '" + op + "'"}};
}

void serve_connection(int fd, const Config& cfg, const ForumSettings& fs, SendSignal& signal) {
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string line;
  char buf[16384];
  while (line.find('\n') == std::string::npos && line.size() <= kMaxLine) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  json reply;
  if (line.size() > kMaxLine) {
    reply = {{"ok", false}, {"error", "the post is over " + std::to_string(kMaxLine / 1024) + " KiB; shorten it"}};
  } else if (line.find('\n') == std::string::npos) {
    reply = {{"ok", false}, {"error", "the request did not end with a newline"}};
  } else {
    line.resize(line.find('\n'));
    try {
      reply = handle_line(cfg, fs, line, signal);
    } catch (const Error& e) {
      reply = {{"ok", false}, {"error", std::string(e.what()) + (e.hint().empty() ? "" : "; " + e.hint())}};
    } catch (const std::exception& e) {
      reply = {{"ok", false}, {"error", std::string("distd: ") + e.what()}};
    }
  }
  std::string out = reply.dump() + "\n";
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = ::write(fd, out.data() + off, out.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

int listen_unix(const std::string& path, const std::string& group) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    throw Error(Errc::usage, "[forum] socket path '" + path + "' is too long for a Unix socket (107 bytes at most)");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("cannot create the post socket", path, errno);
  // A socket file left by a distd that died is replaced; a live one is not.
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    ::close(fd);
    throw Error(Errc::io, "another distd already listens on the post socket " + path, "stop it first");
  }
  ::close(fd);
  discard_file(path);
  fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  mode_t old = ::umask(0117);
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0 || ::listen(fd, 16) != 0) {
    int e = errno;
    ::close(fd);
    throw_errno("cannot listen on the post socket", path, e);
  }
  if (!group.empty()) {
    struct group* g = ::getgrnam(group.c_str());
    if (!g || ::chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
      int e = errno;
      ::close(fd);
      throw Error(Errc::usage, "cannot give the post socket " + path + " to group '" + group + "'" + (g ? std::string(": ") + std::strerror(e) : ": no such group"),
                  "set [forum] socket_group to the web server's group (www-data) and run distd in that group");
    }
  }
  ::chmod(path.c_str(), 0660);
  return fd;
}

}  // namespace

void SendSignal::new_post() {
  {
    std::lock_guard<std::mutex> g(mu);
    post_pending = true;
  }
  cv.notify_all();
}

void SendSignal::link_up() {
  {
    std::lock_guard<std::mutex> g(mu);
    link_pending = true;
  }
  cv.notify_all();
}

SendSignal::Wake SendSignal::wait(double seconds, const std::atomic<bool>& stop, bool ignore_posts) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  std::unique_lock<std::mutex> lk(mu);
  for (;;) {
    if (stop.load()) return stopping;
    if (link_pending) {
      link_pending = post_pending = false;
      return link;
    }
    if (post_pending && !ignore_posts) {
      post_pending = false;
      return post;
    }
    if (std::chrono::steady_clock::now() >= until) return timeout;
    cv.wait_for(lk, std::chrono::milliseconds(200));
  }
}

void serve_post_socket(const Config& cfg, const std::atomic<bool>& stop, SendSignal& signal, const ForumLogFn& log) {
  ForumSettings fs = ForumSettings::from(cfg);
  make_dirs(dir_name(fs.socket), 0755);
  Outbox{fs.outbox};  // created (or checked) before the first post arrives
  int lfd = listen_unix(fs.socket, fs.socket_group);
  log("forum: taking posts on " + fs.socket);
  while (!stop.load()) {
    pollfd p{lfd, POLLIN, 0};
    int rc = ::poll(&p, 1, 200);
    if (rc <= 0) continue;
    int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    serve_connection(c, cfg, fs, signal);
    ::close(c);
  }
  ::close(lfd);
  discard_file(fs.socket);
}

SendReport send_posts(const Config& cfg, const std::atomic<bool>* stop) {
  ForumSettings fs = ForumSettings::from(cfg);
  RegionalSettings rs = RegionalSettings::from(cfg);
  KeyPair kp = bundle::load_or_create_site_key(cfg);
  Outbox ob(fs.outbox);
  std::vector<Post> all = ob.unanswered(kMaxPostsPerStick);
  SendReport rep;
  if (all.empty()) return rep;
  HttpClient http(rs.hq_url, rs.link_options(stop));
  for (size_t i = 0; i < all.size(); i += kMaxPostsPerRequest) {
    std::vector<Post> chunk(all.begin() + static_cast<long>(i),
                            all.begin() + static_cast<long>(std::min(all.size(), i + kMaxPostsPerRequest)));
    std::string env = signed_envelope("posts", cfg.site, posts_body(cfg.site, now_s(), chunk), kp.sec);
    HttpAnswer a = http.post("/posts", env, 16 << 20);
    if (a.status == 403 || a.status == 400)
      throw Error(a.status == 403 ? Errc::bad_signature : Errc::corrupt,
                  "HQ refused this center's posts (HTTP " + std::to_string(a.status) + "): " + a.body.substr(0, 400),
                  "the posts stay queued; check that HQ enrolled this site's key ('distctl bundle request' shows its id)");
    if (a.status != 200)
      throw Error(Errc::network, "HQ answered HTTP " + std::to_string(a.status) + " to the posts: " + a.body.substr(0, 200),
                  "the posts stay queued and are sent again");
    Unsealed u = parse_envelope(a.body, "answers");
    if (!verify_unsealed(u, rs.hq_key))
      throw Error(Errc::bad_signature, "the answer to the posts is not signed by HQ's pinned key",
                  "the posts stay queued; something between this center and HQ altered the answer");
    AnswersBody ab = parse_answers_body(u.body);
    std::vector<std::string> uuids;
    for (auto& p : chunk) uuids.push_back(p.uuid);
    fault_point("forum-answered");  // HQ has answered, the outbox does not know yet
    ob.mark_sent(uuids, now_s());
    ob.apply_answers(ab.answers);
    rep.sent += chunk.size();
    for (auto& an : ab.answers) {
      if (an.state == PostState::applied) ++rep.applied;
      else if (an.state == PostState::refused) ++rep.refused;
      else ++rep.waiting;
    }
  }
  rep.bytes_sent = http.bytes_sent();
  rep.bytes_received = http.bytes_received();
  return rep;
}

void run_post_sender(const Config& cfg, const std::atomic<bool>& stop, SendSignal& signal, const ForumLogFn& log) {
  ForumSettings fs = ForumSettings::from(cfg);
  RegionalSettings rs = RegionalSettings::from(cfg);
  // While HQ is unreachable a try costs one failed connect: the wait grows only to a minute (or the
  // send interval), so posts leave within about a minute of the link coming back.
  const double cap = std::max(60.0, static_cast<double>(fs.send_interval));
  Backoff backoff(std::min(static_cast<double>(rs.probe_min_seconds), cap), cap);
  std::string last_error;
  double next = 0;
  bool failing = false;  // the last try could not reach HQ
  for (;;) {
    SendSignal::Wake why = signal.wait(next, stop, failing);
    if (why == SendSignal::stopping) break;
    if (why == SendSignal::link) backoff.reset();
    next = static_cast<double>(fs.send_interval);
    try {
      if (Outbox(fs.outbox).count_unanswered() == 0) continue;
      SendReport r = send_posts(cfg, &stop);
      backoff.reset();
      failing = false;
      if (!last_error.empty()) log("forum: HQ takes posts again");
      last_error.clear();
      if (r.applied + r.refused > 0)
        log("forum: sent " + std::to_string(r.sent) + " posts: " + std::to_string(r.applied) + " applied, " +
            std::to_string(r.refused) + " refused, " + std::to_string(r.waiting) + " waiting at HQ");
    } catch (const Error& e) {
      std::string w = std::string("forum: posts wait: ") + e.what();
      if (w != last_error) log(w);
      last_error = w;
      failing = true;
      next = backoff.step();
    }
  }
}

void write_sealed_posts(const Config& cfg, const ForumLogFn& log) {
  ForumSettings fs = ForumSettings::from(cfg);
  std::string dir = cfg.state_dir + "/outbound";
  std::string file = dir + "/" + kSealedPostsFile;
  struct stat st {};
  if (::stat(fs.outbox.c_str(), &st) != 0) return;  // no post was ever written here
  Outbox ob(fs.outbox);
  std::vector<Post> posts = ob.unanswered(kMaxPostsPerStick);
  if (posts.empty()) {
    discard_file(file);
    return;
  }
  KeyPair kp = bundle::load_or_create_site_key(cfg);
  PublicKey hq = regional_hq_key(cfg);
  make_dirs(dir, 0750);
  write_file_atomic(file, seal_file("posts", cfg.site, posts_body(cfg.site, now_s(), posts), kp.sec, hq), 0640);
  log("forum: " + std::to_string(posts.size()) + " posts sealed to HQ's key go along");
}

std::vector<std::string> read_sealed_answers(const Config& cfg, const std::string& dir, const ForumLogFn& log) {
  std::string file = dir + "/" + sealed_answers_name(cfg.site);
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return {};
  ForumSettings fs = ForumSettings::from(cfg);
  KeyPair kp = bundle::load_or_create_site_key(cfg);
  PublicKey hq = regional_hq_key(cfg);
  Unsealed u = open_sealed(read_file(file, 64 << 20, "sealed answers"), "answers", kp.sec);
  if (!verify_unsealed(u, hq))
    throw Error(Errc::bad_signature, "forum: the answers on the stick are not signed by HQ's pinned key", "they are ignored");
  AnswersBody ab = parse_answers_body(u.body);
  size_t changed = Outbox(fs.outbox).apply_answers(ab.answers);
  std::string line = "forum: HQ answered " + std::to_string(ab.answers.size()) + " posts on this stick; " +
                     std::to_string(changed) + " changed here";
  log(line);
  return {line};
}

}  // namespace distd::forum
