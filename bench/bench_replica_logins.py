#!/usr/bin/python3
"""Benchmark: what a regional center's own write load does to replication lag, with a real Moodle 4.5.

A center runs Moodle on a MariaDB GTID replica of HQ's database. Logins there write only into the
center's local-only tables (sessions, the standard log, preferences, cache flags, adhoc tasks; see
distd/replica/profile.cpp), so nothing of it goes back to HQ, but it competes with the replica's SQL
thread for the center's CPU and disk. This measures, in one run against its own peers:

  (a) idle:   no logins, lag probes only (the baseline);
  (b) hq:     USERS logins at HQ (CONCURRENCY clients), whose writes replicate to the center;
  (c) center: the same USERS logins at the center, whose writes stay local.

A login is: GET /login/index.php, POST the form (following Moodle's redirects to the Dashboard),
GET /my/, GET the course page. logins/s = USERS / wall time of the phase.

Lag probe (every PROBE_INTERVAL s, in a background thread, over persistent client connections):
insert a row into distd_bench.heartbeat at HQ with t = time.time(), read HQ's gtid_binlog_pos, then
MASTER_GTID_WAIT(pos) at the center; the lag is the wall time from t until the center has applied
it. `repl` is the same from the moment HQ's INSERT returned (so HQ's own commit time is left out).
Seconds_Behind_Master is sampled beside it (whole seconds, so mostly 0 on loopback).

Usage: bench/bench_replica_logins.sh [--json]       (BUILD=build by default)
       /usr/bin/python3 bench/bench_replica_logins.py --build BUILD [--json]
Environment that scales it: USERS (40), CONCURRENCY (4), IDLE_SECONDS (10), PROBE_INTERVAL (0.5).
With --json the table goes to stderr and stdout carries one JSON object with every number.
This is a benchmark, not a test: it prints ratios and never fails on slowness (it exits 1 only
when the world cannot be started or set up).
"""

import argparse
import concurrent.futures
import functools
import http.client
import http.cookiejar
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.dont_write_bytecode = True  # leave no __pycache__ in the checkout
sys.path.insert(0, str(REPO / "tests" / "support"))

import moodle_fixture as mf  # noqa: E402

LOCAL_TABLES = ["sessions", "logstore_standard_log", "user_preferences", "cache_flags", "task_adhoc"]
# What Moodle shows when a write is refused (DEVELOPER debugging with display on): tests/moodle/browser.py.
DB_ERRORS = ["Error writing to database", "dmlwriteexception", "command denied to user", "Debug info:",
             "Error reading from database", "dml_write_exception", "dml_read_exception"]
BENCH_PW = "Bench-pw1!"
# Where the students' requests come from. Not the same address at both sites: Moodle queues a
# "new login" notification (an adhoc task) only when the login comes from another address than the
# user's last one (complete_user_login() in lib/moodlelib.php), and the center's logins follow the
# same users' logins at HQ. So a center login does the same work as the HQ login before it.
CLIENT_IP = {"hq": "127.0.0.1", "center": "127.0.0.3"}

OUT = sys.stdout  # the human-readable output (stderr with --json)


def say(msg=""):
    print(msg, file=OUT, flush=True)


def env_num(name, default, cast=int):
    v = os.environ.get(name)
    return cast(v) if v not in (None, "") else default


# --- SQL over a persistent client connection ----------------------------------------------------

class SqlPipe:
    """One `mariadb` client process kept open (batch mode, unbuffered), so a probe costs a pipe
    round trip and not a process start. Each query is followed by a sentinel SELECT."""

    END = "--distd-bench-end--"

    def __init__(self, socket_path):
        self.err = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen(["mariadb", f"--socket={socket_path}", "-uroot", "-N", "-B", "--unbuffered"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True,
                                  bufsize=1)

    def query(self, q):
        self.p.stdin.write(q.strip().rstrip(";") + f";\nSELECT '{self.END}';\n")
        self.p.stdin.flush()
        rows = []
        while True:
            line = self.p.stdout.readline()
            if not line:
                self.err.seek(0)
                raise RuntimeError(f"mariadb client ended: {self.err.read().strip()}")
            line = line.rstrip("\n")
            if line == self.END:
                return rows
            rows.append(line.split("\t"))

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
                self.p.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait()
        self.err.close()


# --- lag probes ---------------------------------------------------------------------------------

class LagSampler(threading.Thread):
    """Probes replication lag every `interval` s until stop()."""

    def __init__(self, world, interval):
        super().__init__(daemon=True)
        self.w, self.interval = world, interval
        self.hq = SqlPipe(world.hq.db.socket)
        self.center = SqlPipe(world.center.db.socket)
        self.lock = threading.Lock()
        self.samples = None  # list while a phase records
        self.halt = threading.Event()
        self.error = None

    def probe(self):
        t = time.time()
        pos = self.hq.query(f"INSERT INTO distd_bench.heartbeat (t) VALUES ({t!r});"
                            "SELECT @@GLOBAL.gtid_binlog_pos")[0][0]
        t_hq = time.time()
        r = self.center.query(f"SELECT MASTER_GTID_WAIT('{pos}', 30)")[0][0]
        done = time.time()
        st = self.w.slave_status()
        sbm = st.get("Seconds_Behind_Master")
        return {"lag": done - t, "repl": done - t_hq, "timeout": r != "0",
                "sbm": int(sbm) if sbm and sbm.isdigit() else None}

    def run(self):
        while not self.halt.is_set():
            t0 = time.monotonic()
            try:
                s = self.probe()
            except Exception as e:  # noqa: BLE001 - reported with the phase, never fatal
                self.error = f"{type(e).__name__}: {e}"
                return
            with self.lock:
                if self.samples is not None:
                    self.samples.append(s)
            self.halt.wait(max(0.0, self.interval - (time.monotonic() - t0)))

    def begin(self):
        with self.lock:
            self.samples = []

    def end(self):
        with self.lock:
            s, self.samples = self.samples, None
        return s

    def stop(self):
        self.halt.set()
        if self.is_alive():
            self.join(60)
        self.hq.close()
        self.center.close()


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, -(-len(v) * p // 100) - 1))
    return v[int(k)]


def lag_summary(samples):
    if not samples:
        return {"probes": 0}
    lag = [s["lag"] * 1000 for s in samples]
    repl = [s["repl"] * 1000 for s in samples]
    sbm = [s["sbm"] for s in samples if s["sbm"] is not None]
    return {"probes": len(samples), "timeouts": sum(s["timeout"] for s in samples),
            "lag_ms_median": statistics.median(lag), "lag_ms_p95": pct(lag, 95), "lag_ms_max": max(lag),
            "repl_ms_median": statistics.median(repl), "repl_ms_p95": pct(repl, 95), "repl_ms_max": max(repl),
            "sbm_max": max(sbm) if sbm else None}


# --- logins over HTTP ---------------------------------------------------------------------------

class Problem(Exception):
    pass


def check_loopback(url):
    host = urllib.parse.urlsplit(url).hostname or ""
    if not host.startswith("127.0.0."):
        raise Problem(f"refusing to contact {url}: only loopback (127.0.0.x) is allowed")


def fetch(opener, url, data=None):
    check_loopback(url)
    try:
        with opener.open(url, data=data, timeout=120) as r:
            final = r.geturl()
            check_loopback(final)
            return r.status, final, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        raise Problem(f"HTTP {e.code} from {e.geturl()}") from None


def page_problems(body):
    low = body.lower()
    return [e for e in DB_ERRORS if e.lower() in low]


class SourceHTTPHandler(urllib.request.HTTPHandler):
    """Connects from a given loopback address (a student's machine), not the kernel's choice."""

    def __init__(self, source_ip):
        super().__init__()
        self.source_ip = source_ip

    def http_open(self, req):
        return self.do_open(functools.partial(http.client.HTTPConnection, source_address=(self.source_ip, 0)), req)


def login_visit(base, username, password, firstname, course_id, course_name, client_ip):
    """One user's visit from client_ip: log in, Dashboard, course page. Returns a result dict (never raises)."""
    jar = http.cookiejar.CookieJar()
    # No proxies, whatever the environment says: everything here is on loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), SourceHTTPHandler(client_ip),
                                         urllib.request.HTTPCookieProcessor(jar))
    t0 = time.perf_counter()
    res = {"user": username, "ok": False, "error": None, "problems": []}
    try:
        _, _, body = fetch(opener, base + "/login/index.php")
        m = re.search(r'name="logintoken" value="([^"]*)"', body)
        if not m:
            raise Problem("no logintoken on /login/index.php")
        form = urllib.parse.urlencode({"anchor": "", "logintoken": m.group(1), "username": username,
                                       "password": password}).encode()
        _, url, body = fetch(opener, base + "/login/index.php", form)
        # Moodle shows its redirect page instead of a 303 when debugging output came first.
        for _ in range(3):
            m = re.search(r'<meta http-equiv="refresh" content="\d+; url=([^"]+)"', body)
            if not m or "/login/index.php" not in url:
                break
            res["problems"].append(f"redirect page at {url}")
            _, url, body = fetch(opener, urllib.parse.urljoin(url, m.group(1).replace("&amp;", "&")))
        if "Invalid login" in body:
            raise Problem("Invalid login")
        path = urllib.parse.urlsplit(url).path
        if path.startswith("/login/") or "logout.php" not in body:
            text = re.sub(r"<[^>]+>|\s+", " ", body)
            raise Problem(f"login did not end logged in (at {url}): {text[:300]}")
        res["problems"] += page_problems(body)
        res["login_s"] = time.perf_counter() - t0
        _, url, body = fetch(opener, base + "/my/")
        if firstname not in body or "logout.php" not in body:
            raise Problem(f"/my/ does not show {firstname} logged in (at {url})")
        res["problems"] += page_problems(body)
        _, url, body = fetch(opener, f"{base}/course/view.php?id={course_id}")
        if course_name not in body:
            raise Problem(f"the course page does not show {course_name!r} (at {url})")
        res["problems"] += page_problems(body)
        res["ok"] = True
    except Exception as e:  # noqa: BLE001 - counted and reported
        res["error"] = f"{type(e).__name__}: {e}" if not isinstance(e, Problem) else str(e)
    res["visit_s"] = time.perf_counter() - t0
    return res


def run_logins(base, users, concurrency, course, client_ip):
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as ex:
        results = list(ex.map(lambda u: login_visit(base, u["username"], BENCH_PW, u["firstname"],
                                                     course["id"], course["fullname"], client_ip), users))
    return time.perf_counter() - t0, results


# --- database facts -----------------------------------------------------------------------------

def local_counts(db):
    q = "SELECT " + ", ".join(f"(SELECT COUNT(*) FROM mdl_{t})" for t in LOCAL_TABLES)
    row = db.sql(q, mf.DB_NAME)[0]
    return dict(zip(LOCAL_TABLES, map(int, row)))


def gtid_seq(pos, domain):
    """The sequence number of `domain` in a GTID position string ("0-1-123,100-2-7"), 0 if absent."""
    for g in (pos or "").split(","):
        parts = g.strip().split("-")
        if len(parts) == 3 and parts[0] == str(domain):
            return int(parts[2])
    return 0


def trx_counters(w, center_domain):
    hq = w.hq.db.scalar("SELECT @@GLOBAL.gtid_binlog_pos")
    ce = w.center.db.scalar("SELECT @@GLOBAL.gtid_binlog_pos")
    return {"hq": gtid_seq(hq, 0), "center_local": gtid_seq(ce, center_domain)}


# --- the benchmark ------------------------------------------------------------------------------

def create_users(w, n, course_id):
    code = f"""
require_once($CFG->libdir . '/testing/generator/lib.php');
$gen = new testing_data_generator();
$hash = hash_internal_user_password({json.dumps(BENCH_PW)});  // one SHA-512 crypt hash for all
$out = [];
for ($i = 1; $i <= {n}; $i++) {{
    $name = sprintf('bench%04d', $i);
    $first = sprintf('Bench%04d', $i);
    $u = $gen->create_user(['username' => $name, 'firstname' => $first, 'lastname' => 'Login',
                            'email' => $name . '@example.org']);
    $DB->set_field('user', 'password', $hash, ['id' => $u->id]);
    $gen->enrol_user($u->id, {course_id}, 'student');
    $out[] = ['id' => (int)$u->id, 'username' => $name, 'firstname' => $first];
}}
echo json_encode($out), "\\n";
"""
    out = w.hq.php_eval(code)
    return json.loads(out[out.index("["):])


def phase_row(name, samples, sampler_error, seconds=None, results=None, rows=None, trx=None):
    r = {"phase": name, **lag_summary(samples)}
    if sampler_error:
        r["sampler_error"] = sampler_error
    if seconds is not None:
        r["seconds"] = seconds
    if results is not None:
        ok = [x for x in results if x["ok"]]
        r["logins"] = len(results)
        r["logins_ok"] = len(ok)
        r["logins_per_s"] = len(ok) / seconds if seconds else 0.0
        if ok:
            r["login_s_median"] = statistics.median(x["login_s"] for x in ok)
            r["visit_s_median"] = statistics.median(x["visit_s"] for x in ok)
        r["failures"] = [f"{x['user']}: {x['error']}" for x in results if not x["ok"]]
        r["page_problems"] = [f"{x['user']}: {p}" for x in results for p in x["problems"]]
    if rows is not None:
        r["rows_written"] = rows
    if trx is not None:
        r["transactions"] = trx
    return r


def measure_phase(sampler, name, work):
    """Runs work() (or sleeps) with the sampler recording; returns the samples and work's result."""
    sampler.begin()
    try:
        out = work()
    finally:
        samples = sampler.end()
    return samples, out


def diff(a, b):
    return {k: b[k] - a[k] for k in a}


def fmt(v, spec=".1f", none="-"):
    return none if v is None else format(v, spec)


def ratio(a, b):
    return a / b if a is not None and b else None


def print_report(res):
    say("")
    say(f"== Logins at a regional center vs at HQ, and replication lag (Moodle {res['moodle']}; "
        f"{res['users']} users, {res['concurrency']} clients, probe every {res['probe_interval']} s)")
    say("(lag: HQ INSERT of a heartbeat row until the center's MASTER_GTID_WAIT returns; repl: from the "
        "INSERT's return; SBM: Seconds_Behind_Master)")
    hdr = (f"{'phase':<8} {'logins':>9} {'seconds':>8} {'logins/s':>9} {'lag median':>11} {'lag p95':>8} "
           f"{'lag max':>8} {'repl p95':>9} {'SBM max':>8} {'probes':>7}")
    say(hdr)
    say("-" * len(hdr))
    for p in res["phases"]:
        logins = f"{p['logins_ok']}/{p['logins']}" if "logins" in p else "-"
        say(f"{p['phase']:<8} {logins:>9} {fmt(p.get('seconds')):>8} {fmt(p.get('logins_per_s'), '.2f'):>9} "
            f"{fmt(p.get('lag_ms_median')):>8} ms {fmt(p.get('lag_ms_p95')):>5} ms {fmt(p.get('lag_ms_max')):>5} ms "
            f"{fmt(p.get('repl_ms_p95')):>6} ms {fmt(p.get('sbm_max'), 'd'):>6} s {p['probes']:>7}")
    say("")
    for p in res["phases"]:
        if "logins" in p and p.get("logins_ok"):
            say(f"{p['phase']}: median login {p['login_s_median'] * 1000:.0f} ms, whole visit (login + "
                f"Dashboard + course) {p['visit_s_median'] * 1000:.0f} ms")
    r = res["ratios"]
    say("")
    say(f"center logins/s / HQ logins/s:          {fmt(r['center_vs_hq_logins_per_s'], '.2f')}")
    say(f"lag p95, center logins / idle:           {fmt(r['center_vs_idle_lag_p95'], '.2f')}")
    say(f"lag p95, HQ logins / idle (the peer):    {fmt(r['hq_vs_idle_lag_p95'], '.2f')}")
    say(f"lag p95, center logins / HQ logins:      {fmt(r['center_vs_hq_lag_p95'], '.2f')}")
    say("")
    for p in res["phases"]:
        if "rows_written" in p:
            site = "center" if p["phase"] == "center" else "HQ"
            rows = ", ".join(f"mdl_{k} +{v}" for k, v in p["rows_written"].items())
            say(f"rows written at {site} during {p['phase']}: {rows}")
        if "transactions" in p:
            t = p["transactions"]
            say(f"  transactions during {p['phase']}: HQ binlog +{t['hq']} (replicated to the center, heartbeats "
                f"included), center's own binlog (domain {res['center_gtid_domain']}) +{t['center_local']}")
    for p in res["phases"]:
        if p.get("failures"):
            say(f"LOGIN FAILURES in {p['phase']}: {len(p['failures'])}; first: {p['failures'][0]}")
        if p.get("page_problems"):
            say(f"PAGE PROBLEMS in {p['phase']}: {len(p['page_problems'])}; first: {p['page_problems'][0]}")
        if p.get("timeouts"):
            say(f"LAG PROBE TIMEOUTS in {p['phase']}: {p['timeouts']} (MASTER_GTID_WAIT gave up after 30 s)")
        if p.get("sampler_error"):
            say(f"LAG SAMPLER STOPPED in {p['phase']}: {p['sampler_error']}")
    e = res["end"]
    say("")
    say(f"replication at the end: caught up {'yes' if e['caught_up'] else 'NO'}, Slave_IO_Running "
        f"{e['Slave_IO_Running']}, Slave_SQL_Running {e['Slave_SQL_Running']}, Last_SQL_Errno {e['Last_SQL_Errno']}"
        + (f" ({e['Last_SQL_Error']})" if e["Last_SQL_Errno"] not in ("0", None) else "")
        + f", Seconds_Behind_Master {e['Seconds_Behind_Master']}")
    say(f"heartbeat rows: HQ {e['heartbeat_hq']}, center {e['heartbeat_center']}"
        f"{'' if e['heartbeat_hq'] == e['heartbeat_center'] else '  MISMATCH'}")
    say(f"database errors in the sites' PHP logs: {e['php_log_db_errors']}")
    say(f"clients connected from {CLIENT_IP['hq']} to HQ and from {CLIENT_IP['center']} to the center")
    say(f"load: before {res['load_before']}, after {res['load_after']}")


def loadavg():
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def bench(args):
    users_n = env_num("USERS", 40)
    conc = env_num("CONCURRENCY", 4)
    idle_s = env_num("IDLE_SECONDS", 10.0, float)
    interval = env_num("PROBE_INTERVAL", 0.5, float)
    os.environ.setdefault("DISTD_BIN", str(Path(args.build).resolve()))
    res = {"users": users_n, "concurrency": conc, "probe_interval": interval, "load_before": loadavg(), "phases": []}
    t_start = time.time()
    w = None
    sampler = None
    try:
        w = mf.World(args.build, "BenchReplicaLogins")
        res["moodle"] = re.sub(r"^.*'([^']*)'.*$", r"\1", w.facts["release"])
        for s in (w.hq, w.center):
            check_loopback(s.url)
        w.apply_center_profile()
        domain = w.center.db.scalar("SELECT @@GLOBAL.gtid_domain_id")
        res["center_gtid_domain"] = int(domain)
        course = w.facts["course"]
        t = time.time()
        users = create_users(w, users_n, course["id"])
        w.hq.db.sql("CREATE DATABASE distd_bench;"
                    "CREATE TABLE distd_bench.heartbeat (id INT PRIMARY KEY AUTO_INCREMENT, t DOUBLE)")
        if not w.wait_replicated(60):
            raise mf.FixtureError("the center did not catch up after the users were created")
        say(f"[bench] {len(users)} users created at HQ and replicated in {time.time() - t:.1f} s")
        # Warm-up (untimed): one visit per site, so PHP's opcache and Moodle's caches are filled in
        # both and neither phase pays for a cold start.
        warm = {"username": "student2", "firstname": "Grace"}
        for s in (w.hq, w.center):
            r = login_visit(s.url, warm["username"], w.facts["password"], warm["firstname"], course["id"],
                            course["fullname"], CLIENT_IP[s.name])
            if not r["ok"]:
                say(f"[bench] warm-up visit at {s.name} failed: {r['error']}")
        w.wait_replicated(60)

        sampler = LagSampler(w, interval)
        sampler.start()
        time.sleep(1.0)  # the first probes open the connections: not part of any phase

        # (a) idle
        samples, _ = measure_phase(sampler, "idle", lambda: time.sleep(idle_s))
        res["phases"].append(phase_row("idle", samples, sampler.error))
        say(f"[bench] idle: {len(samples)} probes")

        # (b) logins at HQ, (c) the same logins at the center
        for name, site in (("hq", w.hq), ("center", w.center)):
            w.wait_replicated(60)
            before, trx0 = local_counts(site.db), trx_counters(w, res["center_gtid_domain"])
            visits = functools.partial(run_logins, site.url, users, conc, course, CLIENT_IP[name])
            samples, (secs, results) = measure_phase(sampler, name, visits)
            w.wait_replicated(60)
            after, trx1 = local_counts(site.db), trx_counters(w, res["center_gtid_domain"])
            res["phases"].append(phase_row(name, samples, sampler.error, secs, results, diff(before, after),
                                           diff(trx0, trx1)))
            ok = sum(x["ok"] for x in results)
            say(f"[bench] {name}: {ok}/{len(results)} logins in {secs:.1f} s, {len(samples)} probes")

        sampler.stop()
        sampler = None
        caught_up = w.wait_replicated(30)
        st = w.slave_status()
        errs = w.php_errors()
        res["end"] = {"caught_up": caught_up,
                      **{k: st.get(k) for k in ("Slave_IO_Running", "Slave_SQL_Running", "Last_SQL_Errno",
                                                "Last_SQL_Error", "Seconds_Behind_Master")},
                      "heartbeat_hq": int(w.hq.db.scalar("SELECT COUNT(*) FROM distd_bench.heartbeat")),
                      "heartbeat_center": int(w.center.db.scalar("SELECT COUNT(*) FROM distd_bench.heartbeat")),
                      "php_log_db_errors": sum(errs.count(e) for e in ("command denied", "Error writing to database",
                                                                       "dml_write_exception"))}
        ph = {p["phase"]: p for p in res["phases"]}
        res["ratios"] = {
            "center_vs_hq_logins_per_s": ratio(ph["center"].get("logins_per_s"), ph["hq"].get("logins_per_s")),
            "center_vs_idle_lag_p95": ratio(ph["center"].get("lag_ms_p95"), ph["idle"].get("lag_ms_p95")),
            "hq_vs_idle_lag_p95": ratio(ph["hq"].get("lag_ms_p95"), ph["idle"].get("lag_ms_p95")),
            "center_vs_hq_lag_p95": ratio(ph["center"].get("lag_ms_p95"), ph["hq"].get("lag_ms_p95")),
        }
    finally:
        if sampler is not None:
            sampler.stop()
        if w is not None:
            w.stop()
    res["load_after"] = loadavg()
    res["total_seconds"] = round(time.time() - t_start, 1)
    print_report(res)
    say(f"total {res['total_seconds']} s (world start {w.start_seconds} s)")
    return res


def main():
    global OUT
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("BUILD", str(REPO / "build")),
                    help="the build directory (distctl, the Moodle template); default $BUILD or build")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout; the table goes to stderr")
    args = ap.parse_args()
    if args.json:
        OUT = sys.stderr
        # the fixture's log lines go to stdout: keep stdout for the JSON object alone
        saved = os.dup(1)
        os.dup2(2, 1)
    # SIGTERM stops the world like Ctrl-C does (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        res = bench(args)
    except mf.FixtureError as e:
        print(f"bench_replica_logins: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench_replica_logins: interrupted", file=sys.stderr)
        return 130
    if args.json:
        sys.stdout.flush()
        os.dup2(saved, 1)
        print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
