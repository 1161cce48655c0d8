"""distd at both ends of a Moodle World: HQ's daemon (HTTP server + forum applier), the center's
daemon (sync, post socket, post sender), and the flaky-link proxy between them.

    w = World(build_dir)            # tests/support/moodle_fixture.py: the two Moodles, replication
    link = DistdLink(w)             # keys, enrolment, configs, proxy, both daemons
    w.apply_center_profile()        # the center's config.php then holds local_distd's center mode
    link.down(); ...; link.up()     # the link drops and comes back (the proxy's control port)
    link.stop()                     # also done by w.stop()

What the operator would do, in the order docs/forum.md gives: HQ makes its key pair, the center
makes its site key, HQ enrolls the center's public key, both daemons run with their configs.
"""
import json
import os
import socket
import subprocess
import time
from pathlib import Path

from moodle_fixture import FixtureError, PHP_INI, distd_bin, free_port, log, popen_logged, run, wait_port

CENTER_SITE = "center-a"


def _toml_list(items):
    return "[" + ", ".join(json.dumps(str(i)) for i in items) + "]"


class DistdLink:
    def __init__(self, world, seed=1, send_interval=1, apply_interval=2, start=True):
        self.w = world
        self.procs = {}
        t = world.tmp
        self.hq_dir = t / "hq/distd"
        self.hq_dir.mkdir(parents=True, exist_ok=True)
        self.center_dir = Path(world.distd_config).parent
        self.hq_port = free_port()
        self.proxy_port = free_port()
        self.control_port = free_port()
        self.seed = seed

        # HQ: its key pair, a small channel (the center's daemon needs one to sync), the forum.
        self.hq_key, self.hq_pub = self.hq_dir / "hq.key", self.hq_dir / "hq.pub"
        self._distctl("keygen", "--secret", self.hq_key, "--public", self.hq_pub)
        notes = self.hq_dir / "notes"
        notes.mkdir(exist_ok=True)
        (notes / "welcome.txt").write_text("distd test channel\n")
        self.sites = self.hq_dir / "sites"
        self.sites.mkdir(exist_ok=True)
        apply = ["php", *PHP_INI, world.hq.www / "local/distd/cli/apply.php"]
        self.plain_apply = [str(a) for a in apply]  # the plugin's adapter, as HQ's config names it
        self.hq_config = self.hq_dir / "distd.toml"
        self.hq_config.write_text(f"""# distd at HQ (test fixture: tests/support/distd_link.py)
role = "hq"
site = "hq"
state_dir = "{self.hq_dir}/state"

[hq]
listen = "127.0.0.1:{self.hq_port}"
secret_key = "{self.hq_key}"
public_key = "{self.hq_pub}"
sites_dir = "{self.sites}"

[[channel]]
name = "notes"
path = "{notes}"

[forum]
moodle_dir = "{world.hq.www}"
apply_command = {_toml_list(apply)}
apply_interval = {apply_interval}
""")
        self._distctl("publish", "--channel", "notes", "--config", self.hq_config, check=True)

        # The center: site id, link to HQ through the proxy, the channel, the forum.
        self.join_center(Path(world.distd_config), CENTER_SITE, self.proxy_port, send_interval)
        self.center_config = Path(world.distd_config)
        self.state = self.center_dir / "state"
        self.state.mkdir(parents=True, exist_ok=True)
        # The center's site key, enrolled at HQ (the operator compares the key id by phone).
        self._distctl("keygen", "--secret", self.state / "site.key", "--public", self.state / "site.pub")
        (self.sites / f"{CENTER_SITE}.pub").write_text((self.state / "site.pub").read_text())
        self.socket = self.state / "post.sock"
        world_stop = world.stop

        def stop_all(*a, **k):  # the World's stop() ends these daemons first
            self.stop()
            return world_stop(*a, **k)
        world.stop = stop_all
        if start:
            self.start()

    def join_center(self, config, site, proxy_port, send_interval=1):
        """Makes a center's distd.toml (the fixture's [replica] part) a center of this HQ: its site id,
        [regional] through the proxy on proxy_port, the small channel, [forum]."""
        text = Path(config).read_text()
        if "\nsite = " not in text:
            text = text.replace('role = "regional"\n', f'role = "regional"\nsite = "{site}"\n', 1)
        text += f"""
[regional]
hq_url = "http://127.0.0.1:{proxy_port}"
hq_public_key = "{self.hq_pub}"
probe_min_seconds = 1
probe_max_seconds = 5
connect_timeout = 3
low_speed_time = 5

[[channel]]
name = "notes"
path = "{Path(config).parent}/notes"

[forum]
send_interval = {send_interval}
"""
        Path(config).write_text(text)

    # --- processes ---
    def _distctl(self, *args, check=True, timeout=300):
        r = run([distd_bin("distctl"), *[str(a) for a in args]], check=False, timeout=timeout)
        if check and r.returncode != 0:
            raise FixtureError(f"distctl {' '.join(str(a) for a in args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        return r

    def start(self):
        self.start_proxy()
        self.start_hq()
        self.start_center()

    def start_proxy(self, *extra):
        self.procs["proxy"] = popen_logged(
            [str(Path(distd_bin("distd")).parent / "tests/flaky_proxy"), "--listen", f"127.0.0.1:{self.proxy_port}", "--upstream",
             f"127.0.0.1:{self.hq_port}", "--seed", self.seed, "--control", self.control_port, *extra],
            self.w.tmp / "proxy.log")
        wait_port("127.0.0.1", self.control_port, 10, self.procs["proxy"], "flaky_proxy")

    def start_hq(self):
        self.procs["hq"] = popen_logged([distd_bin("distd"), "--config", self.hq_config], self.w.tmp / "distd-hq.log")
        wait_port("127.0.0.1", self.hq_port, 20, self.procs["hq"], "distd at HQ")

    def set_apply_command(self, argv=None):
        """Rewrites HQ's `[forum] apply_command` (None: the plugin's own adapter); a running daemon
        reads it at its next start."""
        argv = self.plain_apply if argv is None else [str(a) for a in argv]
        lines = self.hq_config.read_text().splitlines(keepends=True)
        out = [f"apply_command = {_toml_list(argv)}\n" if l.startswith("apply_command = ") else l for l in lines]
        self.hq_config.write_text("".join(out))

    def restart_hq(self, apply_command=None, sig=None):
        """Stops HQ's daemon (SIGTERM, or `sig`; a dead one is left as it is), points its adapter at
        apply_command (None: the plugin's own) and starts it again."""
        p = self.procs.get("hq")
        if p and p.poll() is None:
            if sig is None:
                p.terminate()
            else:
                p.send_signal(sig)
            p.wait(30)
        self.set_apply_command(apply_command)
        self.start_hq()

    def start_center(self, prefix=()):
        """prefix: a command that execs the daemon, e.g. ["env", "LD_PRELOAD=...libfaketime.so.1",
        "FAKETIME=-3h"] (not `faketime`, which forks: a signal to it would not reach distd)."""
        self.procs["center"] = popen_logged([*prefix, distd_bin("distd"), "--config", self.center_config],
                                            self.w.tmp / "distd-center.log")
        deadline = time.time() + 20
        while not self._socket_answers():
            if self.procs["center"].poll() is not None or time.time() > deadline:
                raise FixtureError("the center's distd did not open its post socket:\n" + self.center_log())
            time.sleep(0.1)

    def _socket_answers(self):
        try:
            return self.socket_request({"op": "status"}).get("ok", False)
        except OSError:
            return False

    def kill(self, which, sig=9):
        p = self.procs.get(which)
        if p and p.poll() is None:
            p.send_signal(sig)
            p.wait(30)

    def stop(self):
        for name in ("center", "hq", "proxy"):
            p = self.procs.get(name)
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    # --- the link ---
    def control(self, command):
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=5) as s:
            s.sendall((command + "\n").encode())
            return s.makefile().readline().strip()

    def down(self):
        assert self.control("down") == "ok"

    def up(self):
        assert self.control("up") == "ok"

    def proxy_stats(self):
        return json.loads(self.control("stats"))

    # --- looking at it ---
    def socket_request(self, obj, timeout=10):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.socket))
            s.sendall((json.dumps(obj) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)

    def outbox(self):
        r = self._distctl("post", "list", "--json", "--limit", "100000", "--config", self.center_config)
        return {p["uuid"]: p for p in json.loads(r.stdout)["posts"]}

    def inbox(self):
        r = self._distctl("post", "list", "--json", "--limit", "100000", "--config", self.hq_config)
        return {p["uuid"]: p for p in json.loads(r.stdout)["posts"]}

    def wait_outbox(self, uuid, states, timeout=60):
        deadline = time.time() + timeout
        item = None
        while time.time() < deadline:
            item = self.outbox().get(uuid)
            if item and item["state"] in states:
                return item
            time.sleep(0.3)
        raise AssertionError(f"post {uuid} did not reach {states} within {timeout} s: {item}\n"
                             f"center log:\n{self.center_log()[-3000:]}\nHQ log:\n{self.hq_log()[-3000:]}")

    def center_log(self):
        p = self.w.tmp / "distd-center.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def hq_log(self):
        p = self.w.tmp / "distd-hq.log"
        return p.read_text(errors="replace") if p.exists() else ""
