"""A real Moodle 4.5 for distd's tests: HQ on a MariaDB primary, a regional center on a GTID
replica of it, both served by real nginx + php-fpm on loopback.

Two steps, so that Moodle is installed once per test run and not once per test:

* ``template(build_dir)`` installs Moodle from its source (lookup order below) into a private
  MariaDB with binary logging, fills it with Moodle's own generators (tests/support/moodle/
  generate.php) and keeps the stopped datadir, the moodledata and the facts as a template under
  ``<build_dir>/moodle-fixture/``. A template that matches the source and this file's revision is
  reused as it is.
* ``World(build_dir)`` copies the template into a fresh temp dir and starts HQ (primary, its own
  Moodle code tree, config.php and moodledata) and a center (a replica seeded from the same
  snapshot at its GTID position, replicating; its own code tree and moodledata), php-fpm with one
  pool per site and nginx with one server per site (HQ on 127.0.0.1, the center on 127.0.0.2, so
  the browser keeps their cookies apart). ``World.apply_center_profile()`` then prepares the
  center exactly as docs/replica.md tells an operator, with distctl.

Moodle source lookup order (tests print which one was used): $DISTD_MOODLE_SRC (an unpacked tree
or a tarball), ../shared/moodle/moodle-4.5.6.tar.xz beside the checkout, then the 4.5.6 release
from download.moodle.org, checked by its version.php. When none is found every Moodle suite fails
with a message that says how to get one.

Command line (for people and benchmarks):
  python3 tests/support/moodle_fixture.py template BUILD_DIR
  python3 tests/support/moodle_fixture.py up BUILD_DIR     # start a world and wait (Ctrl-C stops)
"""

import fcntl
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MOODLE_RELEASE = "4.5.6"
MOODLE_VERSION = "2024100706.00"
FIXTURE_REV = "1"  # bump when the template's content changes
DOWNLOAD_URL = "https://download.moodle.org/download.php/direct/stable405/moodle-4.5.6.tgz"

DB_NAME, DB_USER, DB_PASS = "moodle", "moodle", "moodle-pw"
ADMIN_USER, ADMIN_PASS = "admin", "Admin-pw1!"
DISTD_DB_USER, DISTD_DB_PASS = "distd", "distd-db-pw"
REPL_USER, REPL_PASS = "repl", "repl-pw"
PHP_INI = ["-d", "max_input_vars=5000", "-d", "memory_limit=512M"]


class FixtureError(RuntimeError):
    pass


def log(msg):
    print(f"[moodle-fixture] {msg}", flush=True)


def run(argv, check=True, env=None, timeout=600, cwd=None, input=None):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, timeout=timeout,
                       cwd=cwd, input=input)
    if check and r.returncode != 0:
        raise FixtureError(f"{' '.join(map(str, argv))} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host, port, timeout=30, proc=None, what="server"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise FixtureError(f"{what} exited at start-up (status {proc.returncode})")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise FixtureError(f"{what} did not listen on {host}:{port} within {timeout} s")


def popen_logged(argv, log_path):
    """Starts a server with stdout+stderr appended to log_path (the child keeps the file open)."""
    with open(log_path, "ab") as log:
        return subprocess.Popen([str(a) for a in argv], stdout=log, stderr=subprocess.STDOUT)


def distd_bin(name):
    base = Path(os.environ.get("DISTD_BIN", REPO / "build"))
    return str(base / name)


# --- Moodle source --------------------------------------------------------------------------

def _version_of(tree):
    """The $release of a Moodle tree ("4.5.6 (Build: 20250811)"), or None."""
    vp = Path(tree) / "version.php"
    if not vp.is_file():
        return None
    m = re.search(r"^\$release\s*=\s*'([^']*)'", vp.read_text(errors="replace"), re.M)
    return m.group(1) if m else None


def find_moodle_source(shared=None, download_url=DOWNLOAD_URL, cache_dir=None):
    """Returns (path, description). Raises FixtureError with what to do when none is found.
    The arguments replace the shared copy, the release URL and the download cache (for tests)."""
    tried = []
    env = os.environ.get("DISTD_MOODLE_SRC")
    if env:
        p = Path(env)
        if p.is_dir() and _version_of(p):
            return p, f"$DISTD_MOODLE_SRC (tree {p})"
        if p.is_file():
            return p, f"$DISTD_MOODLE_SRC (tarball {p})"
        tried.append(f"$DISTD_MOODLE_SRC={env} (neither a Moodle tree nor a file)")
    shared = Path(shared) if shared else REPO.parent / "shared" / "moodle" / f"moodle-{MOODLE_RELEASE}.tar.xz"
    if shared.is_file():
        return shared, f"the shared copy {shared}"
    tried.append(str(shared) + " (absent)")
    cache = Path(cache_dir or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "distd")
    cache = cache / f"moodle-{MOODLE_RELEASE}.tgz"
    if cache.is_file():
        return cache, f"the downloaded release {cache}"
    cache.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["curl", "-fsSL", "--connect-timeout", "20", "--max-time", "900", "-o", str(cache) + ".part",
                        download_url], capture_output=True, text=True)
    if r.returncode == 0:
        os.replace(str(cache) + ".part", cache)
        return cache, f"the release downloaded from {download_url} (checked by its version.php when unpacked)"
    Path(str(cache) + ".part").unlink(missing_ok=True)
    tried.append(f"{download_url} (curl: {r.stderr.strip() or r.returncode})")
    raise FixtureError(
        "No Moodle 4.5 source for the Moodle tests. Tried:\n  " + "\n  ".join(tried) +
        f"\nGet Moodle {MOODLE_RELEASE} (moodle-{MOODLE_RELEASE}.tgz from download.moodle.org, "
        "or the shared moodle-4.5.6.tar.xz) and run with DISTD_MOODLE_SRC=/path/to/it "
        "(an unpacked tree or the tarball).")


def unpack_source(src, dest):
    """Puts the Moodle tree at dest (dest/version.php) and checks its version."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    if Path(src).is_dir():
        shutil.copytree(src, dest, symlinks=True)
    else:
        tmp = dest.parent / (dest.name + ".unpack")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        run(["tar", "xf", src, "-C", tmp])
        inner = [p for p in tmp.iterdir() if (p / "version.php").is_file()]
        if not inner:
            raise FixtureError(f"{src} holds no Moodle tree (no */version.php)")
        os.replace(inner[0], dest)
        shutil.rmtree(tmp)
    text = (dest / "version.php").read_text(errors="replace")
    if "$version" not in text or "4.5" not in (_version_of(dest) or ""):
        raise FixtureError(f"{src} is not Moodle 4.5 ({_version_of(dest)}); get Moodle {MOODLE_RELEASE}")
    return _version_of(dest)


# --- MariaDB ----------------------------------------------------------------------------------

class MariaDb:
    """A private mariadbd on loopback over an existing or new datadir."""

    def __init__(self, home, datadir, args, name):
        self.home, self.datadir, self.name = Path(home), Path(datadir), name
        self.defaults_file = None  # a my.cnf to read instead of --no-defaults
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "tmp").mkdir(exist_ok=True)
        self.socket = str(self.home / "sock")
        self.port = free_port()
        self.args = args
        self.proc = None

    def install_db(self):
        """A new datadir (its own tmpdir: bootstraps side by side must not share /tmp's temp tables)."""
        run(["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}", f"--tmpdir={self.home}/tmp",
             "--auth-root-authentication-method=normal", "--skip-test-db", "--user=root"], timeout=120)

    def start(self, extra=()):
        first = f"--defaults-file={self.defaults_file}" if self.defaults_file else "--no-defaults"
        argv = ["mariadbd", first, f"--datadir={self.datadir}", f"--tmpdir={self.home}/tmp",
                f"--port={self.port}", f"--socket={self.socket}", f"--pid-file={self.home}/pid",
                f"--log-error={self.home}/error.log", "--bind-address=127.0.0.1", "--skip-name-resolve",
                "--user=root", "--innodb-buffer-pool-size=128M", "--innodb-log-file-size=48M",
                "--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0", "--performance-schema=OFF",
                "--max-connections=100", "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci", *self.args, *extra]
        self.proc = popen_logged(argv, self.home / "stdout.log")
        deadline = time.time() + 60
        while True:
            r = subprocess.run(["mariadb", f"--socket={self.socket}", "-uroot", "-e", "SELECT 1"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                return self
            if self.proc.poll() is not None:
                raise FixtureError(f"{self.name}: mariadbd exited at start-up:\n{self.error_log()}")
            if time.time() > deadline:
                raise FixtureError(f"{self.name}: mariadbd did not start within 60 s:\n{self.error_log()}")
            time.sleep(0.1)

    def error_log(self):
        p = self.home / "error.log"
        return p.read_text(errors="replace")[-4000:] if p.exists() else "(no error log)"

    def sql(self, query, db=None, user="root", password=None, check=True):
        """Runs SQL with the mariadb client; returns rows as lists of strings (tab-separated)."""
        argv = ["mariadb", f"--socket={self.socket}", f"-u{user}", "-N", "-B", "-e", query]
        if password:
            argv.insert(3, f"-p{password}")
        if db:
            argv.append(db)
        r = run(argv, check=check, timeout=120)
        if not check and r.returncode != 0:
            return r
        return [line.split("\t") for line in r.stdout.splitlines()]

    def scalar(self, query, db=None):
        rows = self.sql(query, db)
        return rows[0][0] if rows and rows[0] else None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            subprocess.run(["mariadb-admin", f"--socket={self.socket}", "-uroot", "shutdown"], capture_output=True)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


PRIMARY_ARGS = ["--server-id=1", "--log-bin=primary-bin", "--binlog-format=ROW", "--gtid-strict-mode=1",
                "--gtid-domain-id=0"]
REPLICA_ARGS = ["--server-id=2", "--log-bin=replica-bin", "--binlog-format=ROW", "--gtid-strict-mode=1",
                "--gtid-domain-id=2", "--relay-log=replica-relay", "--skip-slave-start"]


# --- Moodle sites -----------------------------------------------------------------------------

def config_php(site_dir, dataroot, socket_path, wwwroot, extra=""):
    """Writes config.php for one site: its database over the socket, debugging at DEVELOPER level
    with display on (so every database-write error shows on the page), no mail ever sent."""
    text = f"""<?php  // distd test fixture: written by tests/support/moodle_fixture.py
unset($CFG);
global $CFG;
$CFG = new stdClass();
$CFG->dbtype    = 'mariadb';
$CFG->dblibrary = 'native';
$CFG->dbhost    = 'localhost';
$CFG->dbname    = '{DB_NAME}';
$CFG->dbuser    = '{DB_USER}';
$CFG->dbpass    = '{DB_PASS}';
$CFG->prefix    = 'mdl_';
$CFG->dboptions = ['dbpersist' => 0, 'dbsocket' => '{socket_path}', 'dbport' => '',
                   'dbcollation' => 'utf8mb4_unicode_ci'];
$CFG->wwwroot   = '{wwwroot}';
$CFG->dataroot  = '{dataroot}';
$CFG->admin     = 'admin';
$CFG->directorypermissions = 02777;
$CFG->debug = E_ALL;          // DEBUG_DEVELOPER
$CFG->debugdisplay = 1;
$CFG->noemailever = true;
{extra}
require_once(__DIR__ . '/lib/setup.php');
"""
    Path(site_dir, "config.php").write_text(text)


def php(args, cwd=None, timeout=600, check=True):
    return run(["php", *PHP_INI, *args], cwd=cwd, timeout=timeout, check=check)


def _copytree_fast(src, dst, hardlink=False):
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    run(["cp", "-al" if hardlink else "-a", str(src), str(dst)], timeout=600)


PLUGIN_SRC = REPO / "moodle/local_distd"  # installed as <moodle>/local/distd


def _tree_stamp(tree):
    """A digest of a folder's file names, sizes and mtimes: editing the plugin rebuilds the template."""
    import hashlib
    h = hashlib.sha256()
    for p in sorted(Path(tree).rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(tree)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def template(build_dir):
    """Builds (or reuses) the installed-Moodle template. Returns its directory."""
    root = Path(build_dir).resolve() / "moodle-fixture"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        src, how = find_moodle_source()
        stamp = f"rev={FIXTURE_REV} src={src} size={Path(src).stat().st_size if Path(src).is_file() else 'dir'}"
        stamp += f" gen={(REPO / 'tests/support/moodle/generate.php').stat().st_mtime_ns}"
        stamp += f" plugin={_tree_stamp(PLUGIN_SRC)}"
        facts = root / "fixture.json"
        if facts.is_file() and json.loads(facts.read_text()).get("stamp") == stamp:
            log(f"reusing the installed Moodle template in {root} (source: {how})")
            return root
        log(f"Moodle source: {how}")
        t0 = time.time()
        for d in ("code", "db", "moodledata", "work"):
            shutil.rmtree(root / d, ignore_errors=True)
        release = unpack_source(src, root / "code")
        log(f"unpacked {release.strip()} in {time.time() - t0:.1f} s")
        # distd's Moodle plugin, in HQ's code and so in every center's: its table replicates.
        shutil.copytree(PLUGIN_SRC, root / "code/local/distd")
        work = root / "work"
        site = work / "site"
        _copytree_fast(root / "code", site, hardlink=True)
        db = MariaDb(work / "mysql", root / "db", PRIMARY_ARGS, "template")
        db.install_db()
        db.start()
        try:
            db.sql(f"CREATE DATABASE {DB_NAME} DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
                   f"CREATE USER '{DB_USER}'@'localhost' IDENTIFIED BY '{DB_PASS}';"
                   f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'localhost';"
                   f"CREATE USER '{REPL_USER}'@'127.0.0.1' IDENTIFIED BY '{REPL_PASS}';"
                   f"GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'127.0.0.1';")
            dataroot = root / "moodledata"
            dataroot.mkdir()
            t1 = time.time()
            php([site / "admin/cli/install.php", "--non-interactive", "--agree-license", "--lang=en",
                 "--wwwroot=http://127.0.0.1", f"--dataroot={dataroot}", "--dbtype=mariadb", "--dbhost=localhost",
                 f"--dbname={DB_NAME}", f"--dbuser={DB_USER}", f"--dbpass={DB_PASS}", f"--dbsocket={db.socket}",
                 "--prefix=mdl_", "--fullname=distd University", "--shortname=distdU",
                 f"--adminuser={ADMIN_USER}", f"--adminpass={ADMIN_PASS}", "--adminemail=admin@example.org",
                 "--supportemail=support@example.org"], timeout=900)
            install_s = time.time() - t1
            log(f"Moodle installed in {install_s:.1f} s")
            # Our own config.php (debugging on), then Moodle's generators.
            config_php(site, dataroot, db.socket, "http://127.0.0.1")
            gen = php([REPO / "tests/support/moodle/generate.php", f"--moodle={site}"], timeout=300)
            data = json.loads(gen.stdout[gen.stdout.index("{"):])
            data["gtid"] = db.scalar("SELECT @@GLOBAL.gtid_binlog_pos")
            data["stamp"] = stamp
            data["source"] = how
            data["release"] = release.strip()
            data["install_seconds"] = round(install_s, 1)
            data["template_seconds"] = round(time.time() - t0, 1)
        finally:
            db.stop()
        shutil.rmtree(work)
        # Caches made while generating belong to that run, not to every test's sites.
        for d in ("cache", "localcache", "sessions", "temp", "lock"):
            shutil.rmtree(dataroot / d, ignore_errors=True)
        facts.write_text(json.dumps(data, indent=2))
        log(f"template ready in {time.time() - t0:.1f} s: {root}")
        return root


class Site:
    def __init__(self, name, home, host, db):
        self.name, self.home, self.host, self.db = name, Path(home), host, db
        self.www = self.home / "www"
        self.dataroot = self.home / "moodledata"
        self.port = None

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def php_cli(self, script, *args, check=True, timeout=600):
        return php([self.www / script, *args], check=check, timeout=timeout)

    def php_eval(self, code, check=True):
        """Runs PHP code inside this site's Moodle (CLI_SCRIPT, admin as $USER)."""
        f = self.home / f"eval-{time.time_ns()}.php"
        f.write_text("<?php define('CLI_SCRIPT', true); require('" + str(self.www) + "/config.php');\n"
                     "\\core\\session\\manager::set_user(get_admin());\n" + code + "\n")
        try:
            return php([f], check=check).stdout
        finally:
            f.unlink()


def replica_args(n):
    """The n-th center's replica (1, 2, ...): its own server id and GTID domain for its local writes."""
    return [a.replace("--server-id=2", f"--server-id={n + 1}").replace("--gtid-domain-id=2", f"--gtid-domain-id={n + 1}")
            for a in REPLICA_ARGS]


class World:
    """HQ and one center (or more: centers=2), started from the template; stop() (or the context
    manager) ends them. self.center is the first center; self.centers all of them."""

    def __init__(self, build_dir, tag="moodle", centers=1):
        self.n_centers = centers
        self.build_dir = Path(build_dir).resolve()
        self.tpl = template(self.build_dir)
        self.facts = json.loads((self.tpl / "fixture.json").read_text())
        log(f"Moodle: {self.facts['release']} from {self.facts['source']}")
        keep = os.environ.get("DISTD_KEEP_TMP")
        self.tmp = Path(tempfile.mkdtemp(prefix=f"distd-{tag}-"))
        self._keep = bool(keep)
        self.procs = []
        self.artifacts = Path(os.environ.get("DISTD_ARTIFACTS", self.build_dir / "test-artifacts")) / tag
        shutil.rmtree(self.artifacts, ignore_errors=True)  # this run's screenshots only
        self.artifacts.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = round(time.time() - t0, 1)
        log(f"HQ at {self.hq.url}, centers at {', '.join(c.url for c in self.centers)} "
            f"(started in {self.start_seconds} s, in {self.tmp})")

    # --- start-up ---
    def _start(self):
        hqdb = MariaDb(self.tmp / "hq/mysql", self.tmp / "hq/db", PRIMARY_ARGS, "hq")
        self.hq = Site("hq", self.tmp / "hq", "127.0.0.1", hqdb)
        self.centers = []
        for n in range(1, self.n_centers + 1):
            name = "center" if n == 1 else f"center{n}"
            db = MariaDb(self.tmp / f"{name}/mysql", self.tmp / f"{name}/db", replica_args(n), name)
            # 127.0.0.3 is the benchmarks' client address; the second center listens on .4.
            self.centers.append(Site(name, self.tmp / name, "127.0.0.2" if n == 1 else f"127.0.0.{n + 2}", db))
        self.center = self.centers[0]
        for s in (self.hq, *self.centers):
            _copytree_fast(self.tpl / "db", s.home / "db")
            _copytree_fast(self.tpl / "moodledata", s.dataroot)
            _copytree_fast(self.tpl / "code", s.www, hardlink=True)
        # A center's copy is a replica's: none of the primary's binary logs.
        for c in self.centers:
            for p in (c.home / "db").glob("primary-bin*"):
                p.unlink()
        hqdb.start()
        for c in self.centers:
            c.db.start()
            self.start_replication(c)
            c.distd_config = self._write_distd_config(c)
        self.distd_config = self.center.distd_config
        self._start_web()

    def start_replication(self, center=None):
        center = center or self.center
        center.db.sql(
            f"SET GLOBAL gtid_slave_pos = '{self.facts['gtid']}';"
            f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={self.hq.db.port}, MASTER_USER='{REPL_USER}',"
            f" MASTER_PASSWORD='{REPL_PASS}', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;"
            "START SLAVE;")
        if not self.wait_replicated(30, center):
            raise FixtureError("replication did not start:\n" + center.db.error_log())

    def wait_replicated(self, timeout=30, center=None):
        """Waits until the center (default: every center) has applied all of HQ's binary log."""
        pos = self.hq.db.scalar("SELECT @@GLOBAL.gtid_binlog_pos")
        if not pos:
            return True
        for c in ([center] if center else self.centers):
            if c.db.scalar(f"SELECT MASTER_GTID_WAIT('{pos}', {timeout})") != "0":
                return False
        return True

    def slave_status(self, center=None):
        center = center or self.center
        r = run(["mariadb", f"--socket={center.db.socket}", "-uroot", "-e", "SHOW SLAVE STATUS\\G"])
        out = {}
        for line in r.stdout.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                out[k.strip()] = v.strip()
        return out

    def _write_distd_config(self, center):
        """distd's config at a center: only the [replica] section matters to these tests."""
        d = center.home / "distd"
        d.mkdir(parents=True)
        pw = d / "replica.password"
        pw.write_text(DISTD_DB_PASS + "\n")
        pw.chmod(0o600)
        center.db.sql(
            f"CREATE USER '{DISTD_DB_USER}'@'localhost' IDENTIFIED BY '{DISTD_DB_PASS}';"
            f"GRANT SELECT ON mysql.* TO '{DISTD_DB_USER}'@'localhost';"
            f"GRANT SELECT ON {DB_NAME}.* TO '{DISTD_DB_USER}'@'localhost';"
            f"GRANT SLAVE MONITOR ON *.* TO '{DISTD_DB_USER}'@'localhost';"
            # profile --check compares the local-only tables with Moodle's definitions there
            f"GRANT ALL ON distd_scratch.* TO '{DISTD_DB_USER}'@'localhost';")
        cfg = d / "distd.toml"
        cfg.write_text(f"""# distd at the center (test fixture)
role = "regional"
state_dir = "{d}/state"

[replica]
socket = "{center.db.socket}"
user = "{DISTD_DB_USER}"
password_file = "replica.password"
database = "{DB_NAME}"
prefix = "mdl_"
moodle_user = "{DB_USER}"
moodle_host = "localhost"
filedir = "{center.dataroot}/filedir"
moodle_dir = "{center.www}"
""")
        return cfg

    def distctl(self, *args, check=False, timeout=300):
        return run([distd_bin("distctl"), *args], check=check, timeout=timeout)

    def apply_center_profile(self, center=None):
        """What docs/replica.md tells the operator: apply the profile as the database administrator,
        then put `distctl replica moodle-config` into the center's config.php. Without a center
        given: every center."""
        out = ""
        for c in ([center] if center else self.centers):
            r = self.distctl("replica", "profile", "--apply", "--db-user", "root", "--config", c.distd_config)
            if r.returncode != 0:
                raise FixtureError(f"distctl replica profile --apply failed ({r.returncode}):\n{r.stdout}{r.stderr}")
            r = self.distctl("replica", "moodle-config", "--config", c.distd_config)
            if r.returncode != 0:
                raise FixtureError(f"distctl replica moodle-config failed ({r.returncode}):\n{r.stdout}{r.stderr}")
            c.extra_config = r.stdout
            self._write_config(c, c.extra_config)
            out = out or r.stdout
        self.center_extra_config = self.center.extra_config
        return out

    def _write_config(self, site, extra=""):
        config_php(site.www, site.dataroot, site.db.socket, site.url, extra)

    def _start_web(self):
        run_dir = self.tmp / "web"
        run_dir.mkdir()
        pools = ""
        for s in (self.hq, *self.centers):
            s.port = free_port(s.host)
            s.fpm_socket = run_dir / f"{s.name}-fpm.sock"
            pools += f"""
[{s.name}]
listen = {s.fpm_socket}
pm = static
pm.max_children = 3
catch_workers_output = yes
clear_env = no
php_admin_value[max_input_vars] = 5000
php_admin_value[memory_limit] = 256M
php_admin_value[error_log] = {run_dir}/{s.name}-php.log
php_admin_flag[log_errors] = on
"""
            self._write_config(s)
        (run_dir / "php-fpm.conf").write_text(f"""[global]
pid = {run_dir}/php-fpm.pid
error_log = {run_dir}/php-fpm.log
daemonize = no
{pools}""")
        fpm = shutil.which("php-fpm8.2") or "/usr/sbin/php-fpm8.2"
        self.fpm = popen_logged([fpm, "--nodaemonize", "-R", "--fpm-config", run_dir / "php-fpm.conf"],
                                run_dir / "php-fpm.out")
        servers = ""
        for s in (self.hq, *self.centers):
            servers += f"""
  server {{
    listen {s.host}:{s.port};
    root {s.www};
    index index.php;
    client_max_body_size 64m;
    location ~ /\\.(?!well-known) {{ deny all; }}
    location ~ [^/]\\.php(/|$) {{
      fastcgi_split_path_info ^(.+?\\.php)(/.*)$;
      if (!-f $document_root$fastcgi_script_name) {{ return 404; }}
      include /etc/nginx/fastcgi_params;
      fastcgi_param PATH_INFO $fastcgi_path_info;
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_pass unix:{s.fpm_socket};
      fastcgi_read_timeout 300;
    }}
  }}"""
        (run_dir / "nginx.conf").write_text(f"""daemon off;
user root;  # the sites live in a private 0700 temp dir
worker_processes 1;
pid {run_dir}/nginx.pid;
error_log {run_dir}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
  include /etc/nginx/mime.types;
  access_log {run_dir}/nginx-access.log;
  client_body_temp_path {run_dir}/body;
  fastcgi_temp_path {run_dir}/fastcgi;
  proxy_temp_path {run_dir}/proxy;
  uwsgi_temp_path {run_dir}/uwsgi;
  scgi_temp_path {run_dir}/scgi;
  {servers}
}}
""")
        self.nginx = popen_logged(["nginx", "-c", run_dir / "nginx.conf", "-p", run_dir], run_dir / "nginx.out")
        for s in (self.hq, *self.centers):
            wait_port(s.host, s.port, 30, self.nginx, "nginx")
        deadline = time.time() + 30
        while not all(s.fpm_socket.exists() for s in (self.hq, *self.centers)):
            if self.fpm.poll() is not None or time.time() > deadline:
                raise FixtureError("php-fpm did not start:\n" + (run_dir / "php-fpm.log").read_text(errors="replace"))
            time.sleep(0.1)
        self.web_dir = run_dir

    def php_errors(self):
        out = ""
        for s in ["hq"] + [c.name for c in getattr(self, "centers", [])]:
            p = self.web_dir / f"{s}-php.log"
            if p.exists():
                out += p.read_text(errors="replace")
        return out

    def stop(self):
        for name in ("nginx", "fpm"):
            p = getattr(self, name, None)
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        for s in (*getattr(self, "centers", []), getattr(self, "hq", None)):
            if s:
                s.db.stop()
        if self._keep:
            log(f"kept {self.tmp} (DISTD_KEEP_TMP)")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def main(argv):
    if len(argv) < 3 or argv[1] not in ("template", "up"):
        print(__doc__)
        return 2
    try:
        if argv[1] == "template":
            template(argv[2])
            return 0
        w = World(argv[2], "up")
        try:
            w.apply_center_profile()
            print(json.dumps({"hq": w.hq.url, "center": w.center.url, "tmp": str(w.tmp)}), flush=True)
            signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            w.stop()
        return 0
    except FixtureError as e:
        print(f"moodle fixture: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
