// The parts below the end-to-end tests: the planner (make_plan), HTTP byte ranges and the journal.
#include <SQLiteCpp/SQLiteCpp.h>

#include <boost/test/unit_test.hpp>
#include <map>
#include <ostream>

#include "distd/net/byte_range.h"
#include "distd/regional/journal.h"
#include "distd/regional/planner.h"
#include "manifest/digest.h"
#include "tests/support/test_support.h"

using namespace distd;

namespace {

Entry e(const std::string& path, const std::string& content, uint64_t size = 0, uint32_t mode = 0644) {
  Entry x;
  x.path = path;
  x.digest = digest_bytes(content);
  x.size = size ? size : content.size();
  x.mode = mode;
  return x;
}

std::map<std::string, PlanItem> by_path(const std::vector<PlanItem>& plan) {
  std::map<std::string, PlanItem> m;
  for (auto& p : plan) m[p.path] = p;
  return m;
}

}  // namespace

namespace distd {
std::ostream& operator<<(std::ostream& o, Action a) { return o << action_name(a); }
std::ostream& operator<<(std::ostream& o, ItemState s) { return o << state_name(s); }
}  // namespace distd

BOOST_AUTO_TEST_CASE(plan_unchanged_copy_delta_full_in_order) {
  Manifest target;
  target.channel = "c";
  target.version = 2;
  target.entries = {e("big.bin", "big v2", 1 << 20), e("keep.txt", "same"), e("moved/new-name.txt", "moved content"),
                    e("small.txt", "small v2"), e("two/a.txt", "fresh"), e("two/b.txt", "fresh"),
                    e("urgent/ab12", "needed now", 5000)};
  std::vector<Entry> local = {e("big.bin", "big v1", 1 << 20), e("keep.txt", "same"), e("old-name.txt", "moved content"),
                              e("small.txt", "small v1")};
  PlanInput in;
  in.target = &target;
  in.local = &local;
  in.priority = {"ab12"};
  auto plan = make_plan(in);
  auto m = by_path(plan);
  BOOST_TEST(m.size() == target.entries.size());
  BOOST_TEST(m["keep.txt"].action == Action::unchanged);
  BOOST_TEST(m["keep.txt"].state == ItemState::installed);
  BOOST_TEST(m["moved/new-name.txt"].action == Action::copy);
  BOOST_TEST(m["moved/new-name.txt"].basis_path == "old-name.txt");
  BOOST_TEST(m["big.bin"].action == Action::delta);       // both versions over delta_min_size
  BOOST_TEST(m["big.bin"].basis_path == "big.bin");
  BOOST_TEST(m["small.txt"].action == Action::full);      // under it: the whole object is as cheap
  // Digests: the signed one of each entry; a basis digest for a delta (the old version's) and a
  // copy (the same content), none for a whole download.
  BOOST_TEST(digest_hex(m["small.txt"].digest) == digest_hex(digest_bytes("small v2")));
  BOOST_TEST(!m["small.txt"].basis_digest.has_value());
  BOOST_REQUIRE(m["big.bin"].basis_digest.has_value());
  BOOST_TEST(digest_hex(*m["big.bin"].basis_digest) == digest_hex(digest_bytes("big v1")));
  BOOST_REQUIRE(m["moved/new-name.txt"].basis_digest.has_value());
  BOOST_TEST(digest_hex(*m["moved/new-name.txt"].basis_digest) == digest_hex(digest_bytes("moved content")));
  // The same new content at two paths is fetched once and copied to the other.
  int fetched = (m["two/a.txt"].action == Action::full) + (m["two/b.txt"].action == Action::full);
  BOOST_TEST(fetched == 1);
  const PlanItem& copy = m["two/a.txt"].action == Action::copy ? m["two/a.txt"] : m["two/b.txt"];
  BOOST_TEST(copy.action == Action::copy);
  // Order: unchanged, local copies, then downloads (priority first, then small first), then
  // copies of what was downloaded.
  BOOST_TEST(m["urgent/ab12"].priority);
  BOOST_TEST(m["keep.txt"].ord < m["moved/new-name.txt"].ord);
  BOOST_TEST(m["moved/new-name.txt"].ord < m["urgent/ab12"].ord);
  BOOST_TEST(m["urgent/ab12"].ord < m["small.txt"].ord);  // priority beats size
  BOOST_TEST(m["small.txt"].ord < m["big.bin"].ord);      // smaller first
  BOOST_TEST(copy.ord > m["big.bin"].ord);
}

BOOST_AUTO_TEST_CASE(plan_counts_unchanged_without_planning_them) {
  Manifest target;
  target.entries = {e("a", "1"), e("b", "2")};
  std::vector<Entry> local = {e("a", "1"), e("b", "old")};
  uint64_t unchanged = 0;
  PlanInput in;
  in.target = &target;
  in.local = &local;
  in.unchanged_out = &unchanged;
  auto plan = make_plan(in);
  BOOST_TEST(unchanged == 1u);
  BOOST_REQUIRE(plan.size() == 1u);
  BOOST_TEST(plan[0].path == "b");
}

BOOST_AUTO_TEST_CASE(plan_mode_change_is_not_unchanged) {
  Manifest target;
  target.entries = {e("run.sh", "x", 0, 0755)};
  std::vector<Entry> local = {e("run.sh", "x", 0, 0644)};
  PlanInput in;
  in.target = &target;
  in.local = &local;
  auto plan = make_plan(in);
  BOOST_REQUIRE(plan.size() == 1u);
  BOOST_TEST(plan[0].action != Action::unchanged);
}

BOOST_AUTO_TEST_CASE(byte_ranges) {
  auto r = resolve_range(0, 99, 1000);  // bytes=0-99
  BOOST_REQUIRE(r);
  BOOST_TEST(r->begin == 0u);
  BOOST_TEST(r->length == 100u);
  r = resolve_range(900, -1, 1000);  // bytes=900-
  BOOST_REQUIRE(r);
  BOOST_TEST(r->length == 100u);
  r = resolve_range(990, 5000, 1000);  // past the end: clipped
  BOOST_REQUIRE(r);
  BOOST_TEST(r->length == 10u);
  r = resolve_range(-1, 10, 1000);  // bytes=-10: the last ten
  BOOST_REQUIRE(r);
  BOOST_TEST(r->begin == 990u);
  r = resolve_range(-1, 5000, 1000);  // more than there is: all of it
  BOOST_REQUIRE(r);
  BOOST_TEST(r->begin == 0u);
  BOOST_TEST(r->length == 1000u);
  BOOST_TEST(!resolve_range(1000, -1, 1000));  // starts at the end
  BOOST_TEST(!resolve_range(50, 40, 1000));    // ends before it starts
  BOOST_TEST(!resolve_range(-1, 0, 1000));     // the last 0 bytes
  BOOST_TEST(!resolve_range(0, -1, 0));        // anything of an empty file
  BOOST_TEST(!resolve_range(-1, 5, 0));
}

// The journal: a plan and every change to its items survive closing and reopening (what a kill
// or power cut leaves), and the item in memory always says what the row says.
BOOST_AUTO_TEST_CASE(journal_keeps_the_plan_and_the_items_in_step) {
  distd::test::TempDir d("journal");
  const std::string path = d / "journal.sqlite";
  PlanItem big, small;
  big.ord = 1;
  big.path = "big.bin";
  big.digest = digest_bytes("big");
  big.size = 5'000'000;
  big.action = Action::delta;
  small.ord = 0;
  small.path = "small.txt";
  small.digest = digest_bytes("small");
  small.size = 10;
  {
    Journal j(path);
    RunPlan p;
    p.channel = "c";
    p.target_version = 7;
    p.manifest_digest = digest_bytes("manifest");
    j.start_plan(p, {small, big});
    j.set_delta("c", big, std::string(64, 'a'), 12'345);
    j.set_offset("c", big, 4096);
    j.add_attempt("c", big, "link cut");
    j.set_state("c", small, ItemState::installed);
    BOOST_TEST(big.delta_size == 12'345u);
    BOOST_TEST(big.offset == 4096u);
    BOOST_TEST(big.attempts == 1);
    BOOST_TEST(small.state == ItemState::installed);
  }
  Journal j(path);  // reopened, as after a crash
  auto plan = j.plan("c");
  BOOST_REQUIRE(plan);
  BOOST_TEST(plan->target_version == 7u);
  std::map<std::string, PlanItem> rows;
  for (auto& it : j.items("c")) rows[it.path] = it;
  BOOST_REQUIRE(rows.size() == 2u);
  BOOST_TEST(rows["big.bin"].offset == big.offset);
  BOOST_TEST(rows["big.bin"].delta_id == big.delta_id);
  BOOST_TEST(rows["big.bin"].delta_size == big.delta_size);
  BOOST_TEST(rows["big.bin"].attempts == big.attempts);
  BOOST_TEST(rows["big.bin"].last_error == "link cut");
  BOOST_TEST(rows["small.txt"].state == ItemState::installed);
  auto pending = j.pending("c");
  BOOST_TEST(pending.files == 1u);
  // A delta that fails falls back to the whole object: offset 0, planned, and the reason kept.
  PlanItem& b = rows["big.bin"];
  j.fall_back_to_full("c", b, "the delta does not apply");
  BOOST_TEST(b.action == Action::full);
  BOOST_TEST(b.offset == 0u);
  for (auto& it : j.items("c"))
    if (it.path == "big.bin") {
      BOOST_TEST(it.action == Action::full);
      BOOST_TEST(it.offset == 0u);
      BOOST_TEST(it.state == ItemState::planned);
      BOOST_TEST(it.last_error == "the delta does not apply");
    }
  BOOST_TEST(!j.plan("c")->done);
  j.finish_plan("c");
  BOOST_TEST(j.plan("c")->done);  // kept, marked done: the next run starts a new one
}

// Digests are Digest values in memory and lower-case hex TEXT in the file, '' where an item has
// no basis or nothing is installed: the file format of docs/formats/journal.md, so journals
// written by earlier versions open as they were.
BOOST_AUTO_TEST_CASE(journal_stores_digests_as_hex_text) {
  distd::test::TempDir d("journal");
  const std::string path = d / "journal.sqlite";
  PlanItem full, delta;
  full.path = "full.bin";
  full.digest = digest_bytes("full");
  delta.ord = 1;
  delta.path = "delta.bin";
  delta.digest = digest_bytes("new");
  delta.action = Action::delta;
  delta.basis_path = "delta.bin";
  delta.basis_digest = digest_bytes("old");
  RunPlan p;
  p.channel = "c";
  p.target_version = 3;
  p.manifest_digest = digest_bytes("manifest");
  {
    Journal j(path);
    j.start_plan(p, {full, delta});
    j.set_installed("c", 2, digest_bytes("installed v2"));
    j.record_attempt("other");  // a channel with nothing installed
  }
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    SQLite::Statement q(db, "SELECT digest, basis_digest FROM items WHERE channel='c' ORDER BY ord");
    BOOST_REQUIRE(q.executeStep());
    BOOST_TEST(q.getColumn(0).getString() == digest_hex(full.digest));
    BOOST_TEST(q.getColumn(1).getString() == "");
    BOOST_REQUIRE(q.executeStep());
    BOOST_TEST(q.getColumn(0).getString() == digest_hex(delta.digest));
    BOOST_TEST(q.getColumn(1).getString() == digest_hex(digest_bytes("old")));
    BOOST_TEST(db.execAndGet("SELECT manifest_digest FROM runs WHERE channel='c'").getString() ==
               digest_hex(p.manifest_digest));
    BOOST_TEST(db.execAndGet("SELECT installed_digest FROM channels WHERE channel='c'").getString() ==
               digest_hex(digest_bytes("installed v2")));
    BOOST_TEST(db.execAndGet("SELECT installed_digest FROM channels WHERE channel='other'").getString() == "");
  }
  Journal j(path);
  std::map<std::string, PlanItem> rows;
  for (auto& it : j.items("c")) rows[it.path] = it;
  BOOST_REQUIRE(rows.size() == 2u);
  BOOST_TEST(digest_hex(rows["full.bin"].digest) == digest_hex(full.digest));
  BOOST_TEST(!rows["full.bin"].basis_digest.has_value());
  BOOST_TEST(digest_hex(rows["delta.bin"].digest) == digest_hex(delta.digest));
  BOOST_REQUIRE(rows["delta.bin"].basis_digest.has_value());
  BOOST_TEST(digest_hex(*rows["delta.bin"].basis_digest) == digest_hex(digest_bytes("old")));
  BOOST_TEST(digest_hex(j.plan("c")->manifest_digest) == digest_hex(p.manifest_digest));
  ChannelRecord rec = j.channel_record("c");
  BOOST_REQUIRE(rec.installed_digest.has_value());
  BOOST_TEST(digest_hex(*rec.installed_digest) == digest_hex(digest_bytes("installed v2")));
  BOOST_TEST(!j.channel_record("other").installed_digest.has_value());
}
