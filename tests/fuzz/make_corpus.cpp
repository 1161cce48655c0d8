// Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/seed-*) from distd's
// own writers: render_request_body, render_index_body, record_to_json, signature_of_bytes,
// delta_of_bytes, posts_body, answers_body, signed_envelope. Files already in a corpus directory
// (regression inputs, crash-*) are left alone. Rebuild when a format changes:
//   ninja -C BUILD fuzz_make_corpus && BUILD/tests/fuzz_make_corpus tests/fuzz/corpus
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "distd/bundle/format.h"
#include "distd/course/course_record.h"
#include "distd/delta/rsync.h"
#include "distd/forum/post.h"
#include "distd/hq/delta_service.h"
#include "manifest/digest.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/fuzz_inputs.h"

namespace {

std::string g_root;

void put(const std::string& target, const std::string& name, const std::string& bytes) {
  std::string dir = g_root + "/" + target;
  ::mkdir(dir.c_str(), 0755);
  std::ofstream(dir + "/seed-" + name, std::ios::binary) << bytes;
}

distd::Digest dg(const std::string& s) { return distd::digest_bytes(s); }

void requests() {
  using namespace distd::bundle;
  Request r;
  r.site = "center-07";
  r.created = 1764000000;
  put("request", "empty", sign_text(render_request_body(r), distd::fuzz::fixed_keypair().sec));
  RequestChannel c;
  c.name = "moodledata";
  c.installed_version = 12;
  c.installed_digest = distd::digest_hex(dg("installed"));
  for (int i = 0; i < 3; ++i) {
    std::array<uint8_t, kHeldPrefixBytes> h{};
    distd::Digest d = dg("held" + std::to_string(i));
    std::copy_n(d.begin(), h.size(), h.begin());
    c.held.push_back(h);
  }
  std::sort(c.held.begin(), c.held.end());
  r.channels.push_back(c);
  RequestChannel c2;
  c2.name = "courses";
  r.channels.push_back(c2);
  r.priority = {"filedir/ab/abcdef", "course dir/with space.txt"};
  r.outbound.push_back({"posts-center-07.sealed", 1234, dg("sealed")});
  put("request", "full", sign_text(render_request_body(r), distd::fuzz::fixed_keypair().sec));
}

void bundle_index() {
  using namespace distd::bundle;
  Index ix;
  ix.bundle_id = std::string(32, 'c');
  ix.created = 1764000000;
  ix.volume_size = kMinVolumeSize * 4;
  ix.channels.push_back({"moodledata", 3, 5});
  uint64_t used = 512 + 512 + kTarEndBytes;
  auto add = [&](Item it) {
    for (size_t k = 0; k < it.pieces.size(); ++k) {
      it.pieces[k].member = Index::member_name(it, k);
      used += tar_member_bytes(it.pieces[k].size);
    }
    ix.items.push_back(std::move(it));
  };
  Item m;
  m.kind = ItemKind::manifest;
  m.channel = "moodledata";
  m.version = 5;
  m.size = 300;
  m.digest = dg("manifest");
  m.pieces.push_back({1, 0, 300, m.digest, ""});
  add(m);
  Item o;
  o.size = 5000;
  o.digest = dg("object");
  o.pieces.push_back({1, 0, 3000, dg("p1"), ""});
  o.pieces.push_back({1, 3000, 2000, dg("p2"), ""});
  add(o);
  Item d;
  d.kind = ItemKind::delta;
  d.delta_id = std::string(64, 'd');
  d.basis = dg("basis");
  d.target = dg("target");
  d.target_size = 9000;
  d.size = 700;
  d.digest = dg("delta");
  d.pieces.push_back({1, 0, 700, d.digest, ""});
  add(d);
  ix.volume_bytes.push_back(used);
  ix.omitted.push_back({"moodledata", "filedir/big file.bin", 1 << 30, dg("big")});
  put("bundle_index", "three-items", render_index_body(ix));
  put("bundle_index", "three-items-signed",
      sign_text(render_index_body(ix), distd::fuzz::fixed_keypair().sec));
  Index empty;
  empty.bundle_id = std::string(32, '0');
  empty.volume_size = kMinVolumeSize;
  put("bundle_index", "empty", render_index_body(empty));
}

void course_record() {
  using namespace distd::course;
  CourseRecord r;
  r.info.name = "backup-moodle2-course-42-bio101-20261101-1200.mbz";
  r.info.moodle_version = "2024100705";
  r.info.moodle_release = "4.5.5 (Build: 20250609)";
  r.info.backup_version = "2024100700";
  r.info.backup_release = "4.5";
  r.info.backup_date = 1730000060;
  r.info.original_wwwroot = "https://moodle.hq.example.org";
  r.info.course_id = 42;
  r.info.shortname = "BIO101";
  r.info.fullname = "Introduction to Biology";
  r.info.course_format = "topics";
  r.info.course_contextid = 142;
  r.archive_size = 123456;
  r.archive_name = "bio101.mbz";
  r.published = 1764000000;
  Member dir;
  dir.h.path = "course";
  dir.h.dir = true;
  dir.h.mode = 0755;
  r.members.push_back(dir);
  for (const char* p : {".ARCHIVE_INDEX", "moodle_backup.xml", "course/course.xml", "files/ab/ab12cd"}) {
    Member m;
    m.h.path = p;
    m.h.mode = 0644;
    m.h.mtime = 1730000000;
    m.h.size = 100 + std::string(p).size();
    m.digest = distd::digest_hex(dg(p));
    r.members.push_back(m);
  }
  put("course_record", "bio101", record_to_json(r));
}

void moodle_backup() {
  put("moodle_backup", "course", R"(<?xml version="1.0" encoding="UTF-8"?>
<moodle_backup>
  <information>
    <name>backup-moodle2-course-42-bio101.mbz</name>
    <moodle_version>2024100705</moodle_version>
    <moodle_release>4.5.5 (Build: 20250609)</moodle_release>
    <backup_version>2024100700</backup_version>
    <backup_release>4.5</backup_release>
    <backup_date>1730000060</backup_date>
    <include_files>1</include_files>
    <original_wwwroot>https://moodle.hq.example.org</original_wwwroot>
    <original_course_id>42</original_course_id>
    <original_course_format>topics</original_course_format>
    <original_course_fullname>Introduction to Biology &amp; more</original_course_fullname>
    <original_course_shortname>BIO101</original_course_shortname>
    <original_course_contextid>142</original_course_contextid>
    <details>
      <detail backup_id="0f4e1c">
        <type>course</type>
        <format>moodle2</format>
      </detail>
    </details>
  </information>
</moodle_backup>
)");
  put("moodle_backup", "activity", R"(<?xml version="1.0"?><moodle_backup><information><original_course_id>7</original_course_id><backup_date>1</backup_date><original_course_shortname>X</original_course_shortname><details><detail><type>activity</type></detail></details></information></moodle_backup>)");
}

void configs() {
  put("config", "hq", R"(role = "hq"
state_dir = "/var/lib/distd"

[hq]
secret_key = "/etc/distd/hq.key"
public_key = "/etc/distd/hq.pub"
keep_versions = 5

[[channel]]
name = "moodledata"
path = "/var/moodledata"
preset = "moodledata"

[[channel]]
name = "courses"
path = "/srv/course-backups"
exclude = ["incoming/"]
link = true
)");
  put("config", "regional", R"(role = "regional"
site = "center-07"
state_dir = "state"

[regional]
hq_url = "http://hq.example.org:8750"
hq_public_key = "/etc/distd/hq.pub"
bandwidth_limit = 40000          # 320 kbit/s
big_files_window = "22:00-06:00"
expiry_slack_days = 30

[forum]
max_message_bytes = 65536

[[channel]]
name = "moodledata"
path = "/var/moodledata"
preset = "moodledata"
)");
}

void rsync() {
  std::string basis = distd::fuzz::rsync_basis(), target = distd::fuzz::rsync_target();
  std::string sig = distd::signature_of_bytes(basis);
  put("rsync_signature", "basis", sig);
  put("rsync_signature", "target", distd::signature_of_bytes(target));
  put("rsync_signature", "small", distd::signature_of_bytes("a small manifest\n"));
  put("rsync_patch", "basis-to-target", distd::hq::delta_of_bytes(sig, target));
  put("rsync_patch", "basis-to-basis", distd::hq::delta_of_bytes(sig, basis));
  put("rsync_patch", "basis-to-new", distd::hq::delta_of_bytes(sig, "nothing in common with the basis\n"));
}

void headers() {
  put("range_header", "open", "Host: hq.example.org:8750\r\nRange: bytes=100-\r\nUser-Agent: distd/0.1\r\n\r\n");
  put("range_header", "closed", "Range: bytes=0-1023\r\nAccept-Encoding: gzip\r\nContent-Length: 0\r\n\r\n");
  put("range_header", "suffix", "Range: bytes=-500\r\n\r\n");
  put("range_header", "multi", "Range: bytes=0-99, 200-299, -5\r\nConnection: close\r\n\r\n");
}

std::vector<distd::forum::Post> posts() {
  distd::forum::Post p;
  p.uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
  p.site = "center-07";
  p.userid = 5;
  p.kind = "reply";
  p.parent = 17;
  p.discussion = 3;
  p.forum = 2;
  p.subject = "Re: Photosynthesis";
  p.message = "<p>Light reactions happen in the thylakoid — <b>not</b> the stroma.</p>";
  p.created = 1764000000;
  distd::forum::Post q = p;
  q.uuid = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
  q.kind = "discussion";
  q.parent = 0;
  q.subject = "Question about week 3";
  q.retry = 1;
  return {p, q};
}

void forum() {
  using namespace distd::forum;
  const auto& kp = distd::fuzz::fixed_keypair();
  std::string body = posts_body("center-07", 1764000100, posts());
  put("forum_posts", "body", body);
  put("forum_posts", "envelope", signed_envelope("posts", "center-07", body, kp.sec));
  Answer a;
  a.uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
  a.state = PostState::applied;
  a.postid = 99;
  a.discussion = 3;
  a.applied = 1764000200;
  Answer b;
  b.uuid = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
  b.state = PostState::refused;
  b.reason = "forum_closed";
  b.reason_text = "the forum no longer takes posts";
  std::string ab = answers_body(1764000300, {a, b});
  put("forum_answers", "body", ab);
  put("forum_answers", "envelope", signed_envelope("answers", "center-07", ab, kp.sec));
  put("forum_answers", "plugin-post", to_json(posts()[0]).dump());
}

void http_answers() {
  std::string ticket = R"({"id":")" + std::string(64, 'e') + R"(","size":4000,"target_size":100000})";
  put("http_answer", "ticket",
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(ticket.size()) +
          "\r\n\r\n" + ticket);
  put("http_answer", "partial",
      "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-19/20\r\nContent-Length: 10\r\n\r\nabcdefghij");
  put("http_answer", "chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  put("http_answer", "not-found", "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
  put("http_answer", "no-length", "HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n{\"id\":\"x\",\"size\":-1}");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_ROOT (tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  requests();
  bundle_index();
  course_record();
  moodle_backup();
  configs();
  rsync();
  headers();
  forum();
  http_answers();
  return 0;
}
