#!/usr/bin/python3
"""Benchmark: the forum-post channel (docs/formats/post.md) with a real Moodle 4.5 at HQ and at a center.

To reproduce (one World per run; run one benchmark at a time):
    bench/bench_forum.sh                       # N = 1000 posts
    POSTS=200 bench/bench_forum.sh --json      # smaller; the table on stderr, one JSON object on stdout
    /usr/bin/python3 bench/bench_forum.py --build build [--json]

One World (tests/support/moodle_fixture.py: HQ's Moodle on a MariaDB primary, the center's on its
replica) and DistdLink (tests/support/distd_link.py: distd at both ends, the flaky-link proxy
between, the fixture's [forum] send_interval = 1 s). Only one center exists in the fixture.

  1. Throughput. POSTS posts are queued at the center with the link down, through the post socket
     as local_distd does ({"op":"submit"}: a fresh UUID each, student1/student2 alternating, 4 of 5
     replies to the fixture discussion's first post, 1 of 5 new discussions in its forum, a subject
     and 200-600 bytes of editor-like HTML). Link up; the clock runs until every outbox row is
     `applied` (the outbox SQLite file, read-only, every 0.1 s). posts/s from link-up, and from the
     moment HQ's inbox (read-only too) holds the first post: the time before that is the center's
     sender waiting out its backoff (it tried, and failed, at every submit while the link was down).
     The FLOOR: the same posts applied at HQ by bench/forum_floor.php, one PHP process calling
     Moodle's forum API directly as the adapter does, without distd, the idempotency row or JSON
     lines. It runs on the same World after distd's run, replying to the same discussion (so it
     starts with POSTS more posts in that forum than distd did). Ratio distd/floor: target >= 0.5.
     Then the adapter alone (apply.php, the same posts with fresh UUIDs on its stdin, one process),
     which tells distd's share from the adapter's. One untimed post through distd first warms HQ's
     Moodle caches (the fixture's template ships none) and the adapter's path.
  2. Bytes per post: on the wire (the proxy's bytes_up + bytes_down from link-up to the last answer,
     and the same less the link's background traffic, measured idle for IDLE_SECONDS after) and on a
     stick (`distctl bundle request`: distd-outbound/forum-posts.sealed with the POSTS posts queued),
     each against gzip -6 of the posts' text (subject + message of every post concatenated, gzipped
     once) / POSTS.
  3. Latency: one post queued with the link down for DOWN_SECONDS, link up, until the post is in the
     center's database through replication (mdl_forum_posts joined with mdl_local_distd_posts on the
     uuid; HQ polled every 20 ms, then the replica and the outbox every 2 ms); that row is also what
     makes the plugin's pending marker go away (local_distd\\center: record_exists('local_distd_posts',
     site, uuid)), so the two times are one. With the fixture's send_interval = 1 s and with distd's
     default (20 s: the line removed from the center's distd.toml, the center's distd restarted).
     Also with the link up all along: submit until visible at the center.

Environment: POSTS (1000), IDLE_SECONDS (10), DOWN_SECONDS (30), LATENCY_TRIALS (2), BUILD (build).
This is a benchmark, not a test: it never fails on slowness (exit 1 only when the world cannot be
started or the posts do not all arrive).
"""

import argparse
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.dont_write_bytecode = True  # leave no __pycache__ in the checkout
sys.path.insert(0, str(REPO / "tests" / "support"))
sys.path.insert(0, str(REPO / "bench"))

import moodle_fixture as mf  # noqa: E402
from distd_link import DistdLink, CENTER_SITE  # noqa: E402
from bench_replica_logins import SqlPipe, loadavg  # noqa: E402

OUT = sys.stdout  # the human-readable output (stderr with --json)
FLOOR_PHP = REPO / "bench" / "forum_floor.php"


def say(msg=""):
    print(msg, file=OUT, flush=True)


def env_num(name, default, cast=int):
    v = os.environ.get(name)
    return cast(v) if v not in (None, "") else default


# --- the posts ------------------------------------------------------------------------------------

WORDS = ("wave node antinode frequency amplitude string tension lab report measurement error bar "
         "oscilloscope resonance harmonic pendulum period damping spring constant energy momentum "
         "vector field charge current voltage resistor circuit graph slope intercept units SI "
         "question answer deadline exercise chapter lecture notes derivation assumption friction "
         "velocity acceleration gravity mass kilogram metre second newton joule watt").split()
OPENERS = ["Thanks for the explanation in the lecture.", "I have a question about the last exercise.",
           "Could someone check my reasoning here?", "Following up on what was said above:",
           "Our group measured this twice and got different results.", "Quick note for everyone:"]


def sentence(rng):
    n = rng.randint(6, 16)
    s = " ".join(rng.choice(WORDS) for _ in range(n))
    return s[0].upper() + s[1:] + rng.choice([".", ".", ".", "?", "!"])


def message_html(rng):
    """Editor-like HTML of 200 to 600 bytes: paragraphs, now and then emphasis, a list or a link."""
    target = rng.randint(200, 600)
    parts = [f"<p>{rng.choice(OPENERS)} {sentence(rng)}</p>"]
    size = len(parts[0].encode())
    while size < target:
        r = rng.random()
        if r < 0.15:
            part = "<ul>" + "".join(f"<li>{sentence(rng)}</li>" for _ in range(rng.randint(2, 3))) + "</ul>"
        elif r < 0.25:
            part = (f'<p>See <a href="https://example.org/phy101/notes/{rng.randint(1, 40)}">the notes, '
                    f"section {rng.randint(1, 12)}</a>.</p>")
        elif r < 0.4:
            part = f"<p><strong>{sentence(rng)}</strong> {sentence(rng)}</p>"
        else:
            part = f"<p>{sentence(rng)} {sentence(rng)}</p>"
        if size + len(part.encode()) > 600:
            part = f"<p>{sentence(rng)}</p>"  # at most ~190 bytes
            if size + len(part.encode()) > 600:
                break
        parts.append(part)
        size += len(part.encode())
    return "".join(parts)


def make_posts(n, facts, seed=20261202):
    rng = random.Random(seed)
    users = [facts["users"]["student1"]["id"], facts["users"]["student2"]["id"]]
    d, fo = facts["discussion"], facts["forum"]
    posts = []
    for i in range(n):
        p = {"uuid": str(uuidlib.UUID(int=rng.getrandbits(128), version=4)), "userid": users[i % 2],
             "format": 1, "message": message_html(rng)}
        if i % 5 == 4:
            p.update(kind="discussion", parent=0, discussion=0, forum=fo["id"], groupid=-1,
                     subject=f"Lab question {i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))))
        else:
            p.update(kind="reply", parent=d["firstpost"], discussion=d["id"], forum=fo["id"], groupid=0,
                     subject="Re: " + d["name"])
        posts.append(p)
    return posts


def submit(link, post):
    r = link.socket_request({"op": "submit", "post": post}, timeout=30)
    if not r.get("ok") or r.get("state") != "queued":
        raise mf.FixtureError(f"the post socket did not queue {post['uuid']}: {r}")
    return r


# --- looking at the outbox, the proxy, the databases ----------------------------------------------

class OutboxReader:
    """The center's outbox (SQLite, WAL), read-only: what `distctl post list` shows, without a process."""

    def __init__(self, path):
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)

    def states(self):
        return dict(self.db.execute("SELECT state, COUNT(*) FROM posts GROUP BY state").fetchall())

    def state_of(self, uuid):
        r = self.db.execute("SELECT state FROM posts WHERE uuid = ?", (uuid,)).fetchone()
        return r[0] if r else None

    def close(self):
        self.db.close()


def wire_bytes(stats):
    return stats["bytes_up"] + stats["bytes_down"]


def ratio(a, b):
    return a / b if a is not None and b else None


def gzip6_size(data):
    r = subprocess.run(["gzip", "-6", "-c"], input=data, capture_output=True, check=True)
    return len(r.stdout)


def log_lines(text, pattern):
    return [ln for ln in text.splitlines() if re.search(pattern, ln)]


# --- the phases -----------------------------------------------------------------------------------

def throughput(w, link, posts, idle_s, res):
    n = len(posts)
    link.down()
    t = time.perf_counter()
    for p in posts:
        submit(link, p)
    res["submit_seconds"] = time.perf_counter() - t
    say(f"[bench] {n} posts queued through the post socket in {res['submit_seconds']:.1f} s")

    # 2b. the stick, with the same posts queued
    stick = Path(tempfile.mkdtemp(prefix="stick-", dir=w.tmp))
    t = time.perf_counter()
    link._distctl("bundle", "request", "--to", stick, "--config", link.center_config)
    res["stick_request_seconds"] = time.perf_counter() - t
    sealed = stick / "distd-outbound" / "forum-posts.sealed"
    if not sealed.exists():
        found = sorted(str(p.relative_to(stick)) for p in stick.rglob("*"))
        raise mf.FixtureError(f"distctl bundle request wrote no {sealed.relative_to(stick)}; the stick holds {found}")
    res["stick_bytes"] = sealed.stat().st_size

    # 2c. the text itself
    text = "".join(p["subject"] + p["message"] for p in posts).encode()
    res["text_bytes"] = len(text)
    res["text_gzip6_bytes"] = gzip6_size(text)
    res["json_bytes"] = sum(len(json.dumps(p, separators=(",", ":")).encode()) for p in posts)

    # 1. link up until every post is applied
    ob = OutboxReader(link.state / "forum-outbox.db")
    inbox_path = link.hq_dir / "state" / "forum-inbox.db"
    hq0 = int(w.hq.db.scalar(f"SELECT COUNT(*) FROM {mf.DB_NAME}.mdl_forum_posts"))
    base = ob.states()  # the warm-up post
    base_done = base.get("applied", 0) + base.get("refused", 0)
    ib = OutboxReader(inbox_path) if inbox_path.exists() else None
    hs = ib.states() if ib is not None else {}
    base_hq, base_hq_applied = sum(hs.values()), hs.get("applied", 0)
    s0 = link.proxy_stats()
    link.up()
    t0 = time.perf_counter()
    first_at_hq = first_applied = None
    states = {}
    timeline = []  # (s from link-up, applied at the center, in HQ's inbox, applied in HQ's inbox)
    deadline = t0 + max(600.0, n * 1.0)
    while True:
        st = ob.states()
        now = time.perf_counter()
        done = st.get("applied", 0) + st.get("refused", 0) - base_done
        if first_applied is None and st.get("applied", 0) > base.get("applied", 0):
            first_applied = now - t0
        if first_at_hq is None:
            # HQ's inbox records a request's posts before it runs the adapter on them.
            if ib is None and inbox_path.exists():
                ib = OutboxReader(inbox_path)
            if ib is not None and sum(ib.states().values()) > base_hq:
                first_at_hq = now - t0
        hs = ib.states() if ib is not None else {}
        sample = (round(now - t0, 2), st.get("applied", 0) - base.get("applied", 0), sum(hs.values()) - base_hq,
                  hs.get("applied", 0) - base_hq_applied)
        if not timeline or sample[1:] != timeline[-1][1:]:
            timeline.append(sample)
        if done >= n:
            states = st
            break
        if now > deadline:
            raise mf.FixtureError(f"after {now - t0:.0f} s the outbox holds {st}, not {n} answered posts\n"
                                  f"center log:\n{link.center_log()[-3000:]}\nHQ log:\n{link.hq_log()[-3000:]}")
        time.sleep(0.1)
    t_done = time.perf_counter() - t0
    s1 = link.proxy_stats()
    ob.close()
    if ib is not None:
        ib.close()
    first_at_hq = first_at_hq if first_at_hq is not None else t_done
    # The link's background: the center's sync of its channel talks to HQ too.
    time.sleep(idle_s)
    s2 = link.proxy_stats()
    bg_rate = (wire_bytes(s2) - wire_bytes(s1)) / idle_s
    hq1 = int(w.hq.db.scalar(f"SELECT COUNT(*) FROM {mf.DB_NAME}.mdl_forum_posts"))
    idem = int(w.hq.db.scalar(f"SELECT COUNT(*) FROM {mf.DB_NAME}.mdl_local_distd_posts"))
    res["distd"] = {
        "seconds_from_link_up": t_done, "first_at_hq_s": first_at_hq, "first_applied_s": first_applied,
        "seconds_from_first_at_hq": t_done - first_at_hq,
        "posts_per_s": n / t_done, "posts_per_s_from_first_at_hq": n / max(1e-3, t_done - first_at_hq),
        "states": states, "hq_posts_added": hq1 - hq0, "hq_idempotency_rows": idem,
        "bytes_up": s1["bytes_up"] - s0["bytes_up"], "bytes_down": s1["bytes_down"] - s0["bytes_down"],
        "connections": s1["connections"] - s0["connections"],
        "background_bytes_per_s": bg_rate, "timeline": timeline,
    }
    d = res["distd"]
    d["wire_bytes"] = d["bytes_up"] + d["bytes_down"]
    # Each request: from its posts landing in HQ's inbox until HQ's inbox holds their answers (the
    # adapter's run: PHP bootstrap + the posts), at the 0.1 s resolution of the polls.
    arrive = [t for (t, _, r, _), prev in zip(timeline[1:], timeline) if r > prev[2]]
    answered = [t for (t, _, _, h), prev in zip(timeline[1:], timeline) if h > prev[3]]
    d["requests_s"] = [round(b - a, 2) for a, b in zip(arrive, answered)]
    d["wire_bytes_less_background"] = max(0.0, d["wire_bytes"] - bg_rate * t_done)
    # What the daemons said (the HQ adapter runs once per request of 200 posts).
    d["center_log"] = log_lines(link.center_log(), r"forum: (sent|posts wait|HQ takes)")[-12:]
    d["hq_log"] = log_lines(link.hq_log(), r"forum: ")[-12:]
    say(f"[bench] distd: {n} posts applied {t_done:.1f} s after link-up (the first in HQ's inbox at {first_at_hq:.1f} s), "
        f"HQ +{hq1 - hq0} posts")


def floor(w, posts, res):
    n = len(posts)
    created = int(time.time())
    f = w.tmp / "floor-posts.jsonl"
    f.write_text("".join(json.dumps({**p, "site": CENTER_SITE, "created": created}) + "\n" for p in posts))
    hq0 = int(w.hq.db.scalar(f"SELECT COUNT(*) FROM {mf.DB_NAME}.mdl_forum_posts"))
    t = time.perf_counter()
    r = mf.php([FLOOR_PHP, w.hq.www / "config.php", f], check=False, timeout=3600)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise mf.FixtureError(f"bench/forum_floor.php exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    hq1 = int(w.hq.db.scalar(f"SELECT COUNT(*) FROM {mf.DB_NAME}.mdl_forum_posts"))
    res["floor"] = {**out, "wall_s": wall, "posts_per_s": n / out["loop_s"], "posts_per_s_wall": n / wall,
                    "hq_posts_added": hq1 - hq0, "stderr_lines": len(r.stderr.splitlines())}
    say(f"[bench] floor: {out['applied']}/{n} posts in {out['loop_s']:.1f} s (process {wall:.1f} s)")


def adapter_alone(w, posts, res):
    """The plugin's adapter without distd: the same posts (fresh UUIDs) on its stdin, one process."""
    n = len(posts)
    created = int(time.time())
    f = w.tmp / "adapter-posts.jsonl"
    f.write_text("".join(json.dumps({**p, "uuid": str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, p["uuid"])),
                                     "site": CENTER_SITE, "created": created}) + "\n" for p in posts))
    t = time.perf_counter()
    with open(f) as stdin:
        r = subprocess.run(["php", *mf.PHP_INI, w.hq.www / "local/distd/cli/apply.php"], stdin=stdin,
                           capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t
    answers = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    applied = sum(a.get("state") == "applied" for a in answers)
    res["adapter_alone"] = {"wall_s": wall, "posts_per_s": n / wall, "applied": applied, "status": r.returncode,
                            "others": [a for a in answers if a.get("state") != "applied"][:3]}
    say(f"[bench] the adapter alone: {applied}/{n} posts in {wall:.1f} s (exit {r.returncode})")


def warm_up(w, link, facts):
    """One post through distd with the link up (untimed): HQ's Moodle caches (the template ships none),
    the adapter's path and both daemons' databases are warm before anything is measured."""
    post = make_posts(1, facts, seed=1)[0]
    t = time.perf_counter()
    submit(link, post)
    link.wait_outbox(post["uuid"], ["applied"], 120)
    return time.perf_counter() - t


def set_send_interval(link, seconds):
    """Rewrites the center's [forum] send_interval (None: the line removed, distd's default) and
    restarts the center's distd."""
    text = link.center_config.read_text()
    text = re.sub(r"(?m)^send_interval = \d+\n", "", text)
    if seconds is not None:
        text = text.replace("\n[forum]\n", f"\n[forum]\nsend_interval = {seconds}\n", 1)
    link.center_config.write_text(text)
    link.kill("center", signal.SIGTERM)
    link.start_center()


def latency_trial(w, link, facts, rng, down_s, cpipe, hpipe, ob):
    """One post: queued with the link down for down_s (down_s None: the link stays up), then the
    times from link-up (or from the submit) to: at HQ, applied in the outbox, in the center's database."""
    post = make_posts(1, facts, seed=rng.getrandbits(32))[0]
    q = (f"SELECT COUNT(*) FROM {mf.DB_NAME}.mdl_forum_posts p JOIN {mf.DB_NAME}.mdl_local_distd_posts x "
         f"ON x.postid = p.id WHERE x.site = '{CENTER_SITE}' AND x.uuid = '{post['uuid']}'")
    if down_s is not None:
        link.down()
        submit(link, post)
        time.sleep(down_s)
        link.up()
        t0 = time.perf_counter()
    else:
        t0 = time.perf_counter()
        submit(link, post)
    got = {}
    deadline = t0 + 300
    # HQ every 20 ms until the post is there; then the outbox and the replica every 2 ms (what
    # follows HQ's commit takes milliseconds).
    while len(got) < 3:
        if "hq" not in got:
            if hpipe.query(q)[0][0] != "0":
                got["hq"] = time.perf_counter() - t0
        if "hq" in got or cpipe.query(q)[0][0] != "0":
            if "applied" not in got and ob.state_of(post["uuid"]) == "applied":
                got["applied"] = time.perf_counter() - t0
            if "center" not in got and cpipe.query(q)[0][0] != "0":
                got["center"] = time.perf_counter() - t0
                got.setdefault("hq", got["center"])
        if time.perf_counter() > deadline:
            raise mf.FixtureError(f"post {post['uuid']} not at the center 300 s after link-up: {got}")
        time.sleep(0.02 if "hq" not in got else 0.002)
    return got


def latency(w, link, facts, trials, down_s, res):
    rng = random.Random(7)
    cpipe, hpipe = SqlPipe(w.center.db.socket), SqlPipe(w.hq.db.socket)
    res["latency"] = []
    try:
        for label, interval in (("fixture send_interval = 1 s", 1), ("distd default send_interval", None)):
            set_send_interval(link, interval)
            ob = OutboxReader(link.state / "forum-outbox.db")
            try:
                runs = [latency_trial(w, link, facts, rng, down_s, cpipe, hpipe, ob) for _ in range(trials)]
                online = latency_trial(w, link, facts, rng, None, cpipe, hpipe, ob)
            finally:
                ob.close()
            row = {"setting": label, "send_interval": interval, "down_seconds": down_s, "trials": runs,
                   "online": online}
            for k in ("hq", "applied", "center"):
                row[f"{k}_median"] = statistics.median(r[k] for r in runs)
                row[f"{k}_max"] = max(r[k] for r in runs)
            res["latency"].append(row)
            times = ", ".join(f"{r['center']:.1f}" for r in runs)
            say(f"[bench] latency, {label}: at the center {times} s after link-up; link up all along: "
                f"{online['center']:.2f} s after the submit")
    finally:
        cpipe.close()
        hpipe.close()


# --- the report -----------------------------------------------------------------------------------

def fmt(v, spec=".1f", none="-"):
    return none if v is None else format(v, spec)


def print_report(res):
    n = res["posts"]
    d, fl = res.get("distd"), res.get("floor")
    say("")
    say(f"== Forum posts, center -> HQ -> back by replication (Moodle {res.get('moodle', '?')}; {n} posts, "
        f"4/5 replies to one discussion + 1/5 new discussions, student1/student2 alternating; "
        f"ONE center: the fixture has only one)")
    say(f"load average before {res['load_before']}, after {res.get('load_after', '?')} (2 cores shared with "
        f"other engineers' suites: figures taken under that load)")
    if d:
        say("")
        say("1. Throughput (the link down while queuing, then up; until every outbox row is 'applied')")
        hdr = f"{'peer':<44} {'seconds':>8} {'posts/s':>9} {'ratio':>7}"
        say(hdr)
        say("-" * len(hdr))
        say(f"{'distd, from link-up':<44} {d['seconds_from_link_up']:>8.1f} {d['posts_per_s']:>9.1f} "
            f"{fmt(res['ratios']['distd_vs_floor'], '.2f'):>7}")
        say(f"{'distd, from the first post in HQ inbox':<44} {d['seconds_from_first_at_hq']:>8.1f} "
            f"{d['posts_per_s_from_first_at_hq']:>9.1f} {fmt(res['ratios']['distd_from_hq_inbox_vs_floor'], '.2f'):>7}")
        if fl:
            say(f"{'floor: forum_floor.php, Moodle API loop':<44} {fl['loop_s']:>8.1f} {fl['posts_per_s']:>9.1f} "
                f"{'1.00':>7}")
            say(f"{'floor, whole PHP process (with bootstrap)':<44} {fl['wall_s']:>8.1f} {fl['posts_per_s_wall']:>9.1f} "
                f"{fmt(ratio(fl['posts_per_s_wall'], fl['posts_per_s']), '.2f'):>7}")
        aa = res.get("adapter_alone")
        if aa:
            say(f"{'the adapter alone: apply.php < N posts, 1 run':<44} {aa['wall_s']:>8.1f} {aa['posts_per_s']:>9.1f} "
                f"{fmt(res['ratios']['adapter_alone_vs_floor'], '.2f'):>7}")
        say(f"(ratio: posts/s over the floor's loop; target distd/floor >= 0.5)")
        say(f"distd per request of up to 200 posts, HQ inbox to answers (the adapter's run): "
            f"{', '.join(f'{x:.1f}' for x in d['requests_s'])} s")
        say(f"distd: the first post reached HQ's inbox {d['first_at_hq_s']:.1f} s after link-up (the daemon's "
            f"probe, or the sender's next try, finds HQ again), the first 'applied' "
            f"at the center {fmt(d['first_applied_s'])} s; "
            f"outbox {d['states']}; HQ +{d['hq_posts_added']} posts, {d['hq_idempotency_rows']} idempotency rows; "
            f"{d['connections']} connections")
        if fl:
            say(f"floor: {fl['applied']} applied, {fl['refused']} refused {fl['refusals'] or ''}; bootstrap "
                f"{fl['bootstrap_s']:.2f} s; HQ +{fl['hq_posts_added']} posts; run after distd's, on the same World "
                f"and discussion")
        if aa and (aa["status"] != 0 or aa["applied"] != n):
            say(f"the adapter alone: exit {aa['status']}, {aa['applied']} applied; other answers {aa['others']}")
        tl = d["timeline"]
        step = max(1, len(tl) // 12)
        say("timeline (s after link-up: applied at the center / in HQ's inbox / applied at HQ): " +
            ", ".join(f"{t:.1f}: {a}/{r}/{h}" for t, a, r, h in tl[::step] + ([tl[-1]] if (len(tl) - 1) % step else [])))
        say(f"queuing {n} posts through the post socket (one connection each, SQLite synchronous=FULL): "
            f"{res['submit_seconds']:.1f} s = {n / res['submit_seconds']:.0f} posts/s")
        say("")
        say("2. Bytes per post")
        g = res["text_gzip6_bytes"] / n
        hdr = f"{'what':<52} {'bytes/post':>11} {'vs gzip -6 text':>16}"
        say(hdr)
        say("-" * len(hdr))
        rows = [("the posts' text (subject + message), raw", res["text_bytes"] / n),
                ("the posts' text, gzip -6 (once, all posts)", g),
                ("the posts as the plugin's JSON (no site, no created)", res["json_bytes"] / n),
                ("on the wire: proxy bytes up + down during the send", d["wire_bytes"] / n),
                ("on the wire, less the link's background", d["wire_bytes_less_background"] / n),
                ("  of which up (posts)", d["bytes_up"] / n),
                ("  of which down (answers)", d["bytes_down"] / n),
                ("on a stick: distd-outbound/forum-posts.sealed", res["stick_bytes"] / n)]
        for name, v in rows:
            say(f"{name:<52} {v:>11.1f} {v / g:>15.2f}x")
        say(f"(background: {d['background_bytes_per_s']:.0f} B/s on the link idle for {res['idle_seconds']} s "
            f"after the send: the center's channel sync)")
    if res.get("latency"):
        say("")
        say(f"3. Latency of one post (the link down {res['down_seconds']} s with it queued, then up; seconds "
            f"from link-up; {res['latency_trials']} trials, median / max)")
        hdr = (f"{'setting':<30} {'at HQ':>13} {'applied (outbox)':>17} {'at the center':>14} "
               f"{'link up all along':>18}")
        say(hdr)
        say("-" * len(hdr))
        for r in res["latency"]:
            say(f"{r['setting']:<30} {r['hq_median']:>5.2f} / {r['hq_max']:>5.2f} {r['applied_median']:>8.2f} / "
                f"{r['applied_max']:>5.2f} {r['center_median']:>5.2f} / {r['center_max']:>5.2f} "
                f"{r['online']['center']:>17.2f}")
        say("'at the center' = the post and its mdl_local_distd_posts row on the replica: the moment the "
            "plugin's pending marker gives way to the real post. 'link up all along': from the submit.")
    say("")
    say(f"total {res.get('total_seconds', '?')} s (world start {res.get('world_start_seconds', '?')} s)")


def bench(args):
    n = env_num("POSTS", 1000)
    idle_s = env_num("IDLE_SECONDS", 10.0, float)
    down_s = env_num("DOWN_SECONDS", 30.0, float)
    trials = env_num("LATENCY_TRIALS", 2)
    os.environ.setdefault("DISTD_BIN", str(Path(args.build).resolve()))
    res = {"posts": n, "idle_seconds": idle_s, "down_seconds": down_s, "latency_trials": trials,
           "load_before": loadavg(), "only_one_center": True}
    t_start = time.time()
    w = None
    try:
        w = mf.World(args.build, "BenchForum")
        res["world_start_seconds"] = w.start_seconds
        res["moodle"] = re.sub(r"^.*'([^']*)'.*$", r"\1", w.facts["release"])
        link = DistdLink(w)  # before the profile: the center's config.php names its site and socket
        w.apply_center_profile()
        posts = make_posts(n, w.facts)
        sizes = [len(p["message"].encode()) for p in posts]
        res["message_bytes"] = {"min": min(sizes), "median": statistics.median(sizes), "max": max(sizes)}
        res["warm_up_seconds"] = warm_up(w, link, w.facts)
        say(f"[bench] warm-up: one post through distd in {res['warm_up_seconds']:.1f} s (untimed)")
        throughput(w, link, posts, idle_s, res)
        if not w.wait_replicated(120):
            say("[bench] warning: the center had not caught up 120 s after the send")
        floor(w, posts, res)
        adapter_alone(w, posts, res)
        res["ratios"] = {
            "distd_vs_floor": ratio(res["distd"]["posts_per_s"], res["floor"]["posts_per_s"]),
            "adapter_alone_vs_floor": ratio(res["adapter_alone"]["posts_per_s"], res["floor"]["posts_per_s"]),
            "distd_from_hq_inbox_vs_floor": ratio(res["distd"]["posts_per_s_from_first_at_hq"], res["floor"]["posts_per_s"]),
            "wire_vs_gzip6": ratio(res["distd"]["wire_bytes"], res["text_gzip6_bytes"]),
            "wire_less_background_vs_gzip6": ratio(res["distd"]["wire_bytes_less_background"], res["text_gzip6_bytes"]),
            "stick_vs_gzip6": ratio(res["stick_bytes"], res["text_gzip6_bytes"]),
        }
        w.wait_replicated(120)
        if trials > 0:
            latency(w, link, w.facts, trials, down_s, res)
        errs = w.php_errors()
        res["php_fatal"] = errs.count("PHP Fatal")
    finally:
        if w is not None:
            w.stop()
    res["load_after"] = loadavg()
    res["total_seconds"] = round(time.time() - t_start, 1)
    print_report(res)
    return res


def main():
    global OUT
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("BUILD", str(REPO / "build")),
                    help="the build directory (distd, distctl, the Moodle template); default $BUILD or build")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout; the table goes to stderr")
    args = ap.parse_args()
    saved = None
    if args.json:
        OUT = sys.stderr
        saved = os.dup(1)  # the fixture's log lines go to stdout: keep it for the JSON object alone
        os.dup2(2, 1)
    signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        res = bench(args)
    except mf.FixtureError as e:
        print(f"bench_forum: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench_forum: interrupted", file=sys.stderr)
        return 130
    if saved is not None:
        sys.stdout.flush()
        os.dup2(saved, 1)
        print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
