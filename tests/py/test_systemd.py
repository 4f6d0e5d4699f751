#!/usr/bin/python3
"""corod under systemd, without systemd: socket activation through systemd-socket-activate
(Debian's systemd package), the notify protocol on a socket of our own (READY, STATUS,
WATCHDOG, STOPPING), and the log — "<N>" lines on a pipe, structured entries on a fake
journal socket when JOURNAL_STREAM names our stderr.

usage: test_systemd.py COROD_BINARY [unittest args]
"""
import os
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_protocol as tp  # noqa: E402
from test_protocol import Client, read_all, wait_for  # noqa: E402

SLOW = float(os.environ.get("COROD_SLOW", "1"))
ACTIVATE = shutil.which("systemd-socket-activate")


class Box:
    """A corod (or whatever runs it) on a private directory, with the environment given."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="corod-sd-")
        self.sock = os.path.join(self.dir, "corod.sock")
        self.state = os.path.join(self.dir, "state")
        self.proc = None

    def start(self, argv, env=None, stderr=None, wait=True):
        wrapper = shlex.split(os.environ.get("COROD_WRAPPER", ""))
        full = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID"):
            full.pop(k, None)
        full.update(env or {})
        self.proc = subprocess.Popen([*wrapper, *argv] if argv[0] == tp.COROD else argv, env=full,
                                     stderr=stderr if stderr is not None else subprocess.PIPE)
        if wait:
            wait_for(self.answers, 10 * SLOW * (6 if wrapper else 1), "corod to answer")
        return self

    def answers(self):
        if self.proc.poll() is not None:
            raise AssertionError("corod exited with %d" % self.proc.returncode)
        try:
            with Client(self.sock) as c:
                return c.call("hello")
        except OSError:
            return None

    def exited(self):
        """The exit status and what it said, of a corod expected to stop by itself."""
        rc = self.proc.wait(timeout=30 * SLOW)
        err = self.proc.stderr.read().decode(errors="replace")
        self.proc.stderr.close()
        return rc, err

    def corod(self, *extra):
        return [tp.COROD, "--socket", self.sock, "--state-dir", self.state, *extra]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        err = self.proc.communicate(timeout=120)[1]
        return self.proc.returncode, (err or b"").decode(errors="replace")

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


@unittest.skipUnless(ACTIVATE, "systemd-socket-activate is not installed (Debian package systemd)")
class Activation(unittest.TestCase):
    def setUp(self):
        self.box = Box()

    def tearDown(self):
        self.box.close()

    def test_serves_on_the_socket_systemd_passed_and_leaves_it(self):
        b = self.box
        # --socket names another path: the passed socket is served, nothing is bound there.
        other = os.path.join(b.dir, "unused.sock")
        b.start([ACTIVATE, "-l", b.sock, tp.COROD, "--socket", other, "--state-dir", b.state])
        with Client(b.sock) as c:
            i = c.call("submit", {"kind": "sleep", "args": {"seconds": 0, "result": "on the passed socket"}})["id"]
            self.assertEqual(c.call("wait", {"ids": [i]})["done"][0]["result"], "on the passed socket")
            self.assertEqual(c.call("hello")["server"], "corod")
        self.assertFalse(os.path.exists(other))
        rc, err = b.stop()
        self.assertEqual(rc, 0, err)
        self.assertIn("socket activation: 1 socket from systemd", err)
        # The unit's socket stays: connections queue there until the next start.
        self.assertTrue(os.path.exists(b.sock))

    def test_several_sockets_and_the_bound_on_them(self):
        b = self.box
        socks = [os.path.join(b.dir, f"s{i}.sock") for i in range(9)]
        b.start([ACTIVATE, "-l", socks[0], "-l", socks[1], *b.corod()], wait=False)
        def hello(path):
            with Client(path) as c:
                c.call("hello")

        def knock(path):
            with socket.socket(socket.AF_UNIX) as k:
                k.connect(path)

        wait_for(lambda: self.poked(lambda: hello(socks[0])), 10 * SLOW, "the first socket")
        for s in socks[:2]:  # both served, the same daemon behind each
            with Client(s) as c:
                self.assertEqual(c.call("hello")["pid"], b.proc.pid)
        rc, err = b.stop()
        self.assertEqual(rc, 0, err)
        self.assertIn("socket activation: 2 sockets from systemd", err)
        # SY_LISTEN_MAX is 8: a ninth is refused, saying so.
        args = [a for s in socks for a in ("-l", s)]
        b.start([ACTIVATE, *args, *b.corod()], wait=False)
        wait_for(lambda: self.poked(lambda: knock(socks[0])), 10 * SLOW, "the sockets")
        rc, err = b.exited()
        self.assertEqual(rc, 2, err)
        self.assertIn("systemd passed 9 sockets; corod takes at most 8", err)

    @staticmethod
    def poked(poke):
        try:
            poke()
            return True
        except OSError:
            return False

    def test_a_socket_of_another_kind_is_refused(self):
        b = self.box
        tcp = socket.socket()
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        tcp.close()
        def poke_tcp():
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass

        def poke_dgram():
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as d:
                d.sendto(b"hi", b.sock)

        # systemd-socket-activate starts its program at the first connection or datagram.
        for how, poke in ((["-l", f"127.0.0.1:{port}"], poke_tcp), (["--datagram", "-l", b.sock], poke_dgram)):
            b.start([ACTIVATE, *how, *b.corod()], wait=False)
            wait_for(lambda: self.poked(poke), 10 * SLOW, "the socket to be there")
            rc, err = b.exited()
            self.assertEqual(rc, 2, err)
            self.assertIn("is not a listening Unix stream socket", err)
            if os.path.exists(b.sock):
                os.unlink(b.sock)


class Notify(unittest.TestCase):
    """A service manager of our own: a datagram socket at NOTIFY_SOCKET."""

    def setUp(self):
        self.box = Box()
        self.ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.ns_path = os.path.join(self.box.dir, "notify")
        self.ns.bind(self.ns_path)
        self.ns.settimeout(10 * SLOW)
        self.got = []

    def tearDown(self):
        self.ns.close()
        self.box.close()

    def read_until(self, pred, what):
        deadline = time.time() + 10 * SLOW
        while time.time() < deadline:
            try:
                m = self.ns.recv(4096).decode()
            except socket.timeout:
                break
            self.got.append((time.monotonic(), m))
            if pred(m):
                return m
        raise AssertionError(f"no {what} among {[m for _, m in self.got][-20:]}")

    def test_ready_status_watchdog_and_stopping(self):
        b = self.box
        b.start(b.corod(), env={"NOTIFY_SOCKET": self.ns_path, "WATCHDOG_USEC": "400000"})
        self.read_until(lambda m: m == "READY=1", "READY=1")
        self.read_until(lambda m: m.startswith("STATUS=0 running, 0 pending"), "an idle status")
        with Client(b.sock) as c:
            c.call("submit", {"kind": "sleep", "args": {"seconds": 60}})
            c.call("set_group", {"name": "held", "paused": True})
            c.call("submit", {"kind": "sleep", "args": {"seconds": 0}, "group": "held"})
            self.read_until(lambda m: m.startswith("STATUS=1 running, 1 pending, 1 group paused, 1 client"),
                            "a status with the new tasks")
            # Pings at about half the interval (200 ms): five in two seconds at the least,
            # whatever the machine's load; at most a few dozen.
            t0 = time.monotonic()
            while time.monotonic() - t0 < 2:
                self.read_until(lambda m: m == "WATCHDOG=1", "WATCHDOG=1")
        pings = [t for t, m in self.got if m == "WATCHDOG=1" and t >= t0]
        self.assertGreaterEqual(len(pings), 5)
        self.assertLessEqual(len(pings), 40)
        rc, err = b.stop()
        self.assertEqual(rc, 0, err)
        self.read_until(lambda m: m == "STOPPING=1", "STOPPING=1")

    def test_an_abstract_socket_and_jobs_inherit_nothing_of_it(self):
        b = self.box
        name = "corod-test-%d" % os.getpid()
        ab = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ab.bind("\0" + name)
        ab.settimeout(10 * SLOW)
        try:
            b.start(b.corod(), env={"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "60000000"})
            self.assertEqual(ab.recv(4096), b"READY=1")
            with Client(b.sock) as c:
                i = c.call("submit", {"kind": "exec", "args": {
                    "argv": ["sh", "-c", "echo \"[$NOTIFY_SOCKET][$WATCHDOG_USEC][$LISTEN_FDS]\""]}})["id"]
                c.call("wait", {"ids": [i]})
                self.assertEqual(c.call("output", {"id": i})["data"], b"[][][]\n")
        finally:
            ab.close()

    def test_a_bad_notify_socket_is_said_and_ignored(self):
        b = self.box
        b.start(b.corod(), env={"NOTIFY_SOCKET": "relative/path"})
        rc, err = b.stop()
        self.assertEqual(rc, 0, err)
        self.assertIn("NOTIFY_SOCKET is not a socket corod can use", err)


class Config(unittest.TestCase):
    """The configuration file: every option by its name, predefined groups, a reload on
    SIGHUP that applies what may change at run time, and a bad file that changes nothing."""

    def setUp(self):
        self.box = Box()
        self.conf = os.path.join(self.box.dir, "corod.conf")
        self.ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.ns_path = os.path.join(self.box.dir, "notify")
        self.ns.bind(self.ns_path)
        self.ns.settimeout(10 * SLOW)

    def tearDown(self):
        self.ns.close()
        self.box.close()

    def write(self, text):
        with open(self.conf + ".new", "w") as f:
            f.write(text)
        os.rename(self.conf + ".new", self.conf)

    def sleeps(self, c, n, **spec):
        out = []
        for _ in range(n):
            try:
                out.append(c.call("submit", {"kind": "sleep", "args": {"seconds": 60}, **spec})["id"])
            except tp.RemoteError as e:
                out.append(e.code)
        return out

    def notes_until(self, want):
        got = []
        while want not in got:
            got.append(self.ns.recv(4096).decode())
        return got

    def reload(self):
        self.box.proc.send_signal(signal.SIGHUP)
        got = self.notes_until("READY=1")
        reloading = [m for m in got if m.startswith("RELOADING=1\nMONOTONIC_USEC=")]
        self.assertEqual(len(reloading), 1, got)
        return got

    def test_a_file_at_start_and_at_each_reload(self):
        b = self.box
        self.write("# corod.conf\n[corod]\nmax-active = 2\nsync = full\n"
                   "[group \"builds\"]\nparallel = 1\npaused = yes\npriority = 5\nusers = root\n")
        b.start(b.corod("--config", self.conf), env={"NOTIFY_SOCKET": self.ns_path})
        self.notes_until("READY=1")
        with Client(b.sock) as c:
            g = {x["name"]: x for x in c.call("groups")["groups"]}["builds"]
            self.assertEqual((g["parallel"], g["paused"], g["priority"], g["users"], g["configured"]),
                             (1, True, 5, [0], True))
            self.assertEqual(self.sleeps(c, 3, group="builds")[2], "quota_exceeded")  # max-active = 2
            # Live bounds and groups change; sync cannot until a start: said, and kept.
            self.write("max-active = 4\nsync = normal\n[group \"builds\"]\npaused = no\n"
                       "[group \"later\"]\nparallel = 7\n")
            self.reload()
            groups = {x["name"]: x for x in c.call("groups")["groups"]}
            self.assertEqual((groups["builds"]["paused"], groups["builds"]["priority"]), (False, 5))
            self.assertEqual(groups["later"]["parallel"], 7)
            got = self.sleeps(c, 3)  # 2 running of 4 now
            self.assertEqual([type(x) for x in got], [int, int, str], got)
            self.assertEqual(got[2], "quota_exceeded")
            # A bad file: refused with its line and why, and nothing of it is applied.
            self.write("[corod]\nmax-active = 100\nretain = lots\n")
            self.reload()
            self.assertEqual(self.sleeps(c, 1), ["quota_exceeded"])  # still 4
        rc, err = b.stop()
        self.assertEqual(rc, 0, err)
        self.assertIn("<4>corod: reload: sync changed; it takes effect at the next start", err)
        self.assertIn(f"<6>corod: reloaded {self.conf}", err)
        self.assertIn(f"<3>corod: reload refused, the running settings stay: {self.conf}:3: retain must be a "
                      "whole number from 1 to 100000000, not \"lots\"", err)

    def test_a_groups_limits_are_its_jobs_defaults(self):
        b = self.box
        self.write("[group \"tight\"]\nrlimit-nofile = 64:128\numask = 077\n")
        b.start(b.corod("--config", self.conf))
        script = ["sh", "-c", "ulimit -Sn; ulimit -Hn; umask"]
        with Client(b.sock) as c:
            def run(**spec):
                args = spec.pop("args", {})
                i = c.call("submit", {"kind": "exec", "args": {"argv": script, **args}, **spec})["id"]
                c.call("wait", {"ids": [i]})
                return c.call("output", {"id": i})["data"].decode().split()
            self.assertEqual(run(group="tight"), ["64", "128", "0077"])
            self.assertEqual(run(group="tight", args={"umask": 0o022, "rlimits": {"nofile": 50}}),
                             ["50", "50", "0022"])  # a job's own win
            self.assertEqual(run()[2], "0022")  # another group's jobs: the defaults
            cg = c.call("hello")["cgroups"]
        self.assertEqual(b.stop()[0], 0)
        if "memory" not in cg["controllers"]:
            # A default that needs a controller the jobs lack stops the start, saying so.
            self.write("[group \"big\"]\nmemory-max = 1073741824\n")
            b.start(b.corod("--config", self.conf), wait=False)
            rc, err = b.exited()
            self.assertNotEqual(rc, 0)
            self.assertIn("group \"big\": memory-max needs the memory controller", err)

    def test_the_command_line_wins_and_a_bad_file_stops_the_start(self):
        b = self.box
        self.write("max-active = 1\n")
        b.start(b.corod("--config", self.conf, "--max-active", "2"))
        with Client(b.sock) as c:
            got = self.sleeps(c, 3)
            self.assertEqual(([type(x) for x in got], got[2]), ([int, int, str], "quota_exceeded"))
        self.assertEqual(b.stop()[0], 0)
        self.write("max-active = 1\n[group \"x\"]\nslots = 3\n")
        b.start(b.corod("--config", self.conf), wait=False)
        rc, err = b.exited()
        self.assertEqual(rc, 2)
        self.assertIn(f"{self.conf}:3: unknown setting \"slots\" in a group", err)
        b.start(b.corod("--config", os.path.join(b.dir, "missing.conf")), wait=False)
        rc, err = b.exited()
        self.assertEqual(rc, 2)
        self.assertIn("missing.conf: No such file or directory", err)


def journal_entries(data):
    """The fields of one native-protocol datagram."""
    out, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            v = data[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        out[k.decode()] = v.decode(errors="replace")
    return out


class Logging(unittest.TestCase):
    def setUp(self):
        self.box = Box()

    def tearDown(self):
        self.box.close()

    def test_lines_carry_priorities_and_jobs_leave_an_audit_trail(self):
        b = self.box
        b.start(b.corod())
        with Client(b.sock) as c:
            ok = c.call("submit", {"kind": "exec", "args": {"argv": ["true"]}, "group": "g1"})["id"]
            bad = c.call("submit", {"kind": "exec", "args": {"argv": ["sh", "-c", "exit 3"]}})["id"]
            # A command that tries to forge a line of its own.
            forged = c.call("submit", {"kind": "exec", "args": {"argv": ["echo", "x\n<0>corod: forged"]}})["id"]
            c.call("wait", {"ids": [ok, bad, forged]})
        rc, err = b.stop()
        self.assertEqual(rc, 0, err)
        lines = [x for x in err.splitlines() if not x.startswith(("--", "=="))]  # a wrapper's (valgrind)
        self.assertTrue(all(line.startswith("<") for line in lines), lines)
        self.assertTrue(any(line.startswith("<6>corod: serving ") for line in lines), lines)
        self.assertIn(f"<6>corod: task {ok} started (uid {os.geteuid()}, group g1, attempt 1): true", lines)
        self.assertIn(f"<6>corod: task {ok} succeeded (uid {os.geteuid()}, group g1): true", lines)
        self.assertTrue(any(line.startswith(f"<6>corod: task {bad} failed (uid {os.geteuid()}, group default), "
                                            "exit_status: exited with status 3") for line in lines), lines)
        self.assertTrue(any(f"task {forged} started" in line and "\\x0a<0>corod: forged" in line
                            for line in lines), lines)
        self.assertFalse(any(line.startswith("<0>") for line in lines))
        self.assertIn("<5>corod: Terminated: shutting down", lines)

    def test_a_full_pipe_drops_lines_and_does_not_stop_the_daemon(self):
        b = self.box
        r, w = os.pipe()
        try:
            b.start(b.corod(), stderr=w)  # nobody reads r until the end
            os.close(w)
            w = None
            with Client(b.sock) as c:
                ids = [c.call("submit", {"kind": "exec", "args": {"argv": ["true"]}})["id"] for _ in range(600)]
                done = c.call("wait", {"ids": ids, "timeout": 120 * SLOW})["done"]
                self.assertEqual(len(done), 600)  # 1,200 lines of ~60 bytes: past a 64 KiB pipe
                self.assertIsNotNone(c.call("hello"))
                # Read what fit; the next line that fits says how many did not.
                os.set_blocking(r, False)
                got = b""
                try:
                    while True:
                        got += os.read(r, 65536)
                except BlockingIOError:
                    pass
                self.assertIn(b"task 1 started", got)
                last = c.call("submit", {"kind": "exec", "args": {"argv": ["true"]}})["id"]
                c.call("wait", {"ids": [last]})
            b.proc.send_signal(signal.SIGTERM)
            os.set_blocking(r, True)
            got = read_all(r)
            self.assertEqual(b.proc.wait(timeout=60), 0)
            self.assertIn(b"log lines were dropped: nobody read them", got)
        finally:
            os.close(r)
            if w is not None:
                os.close(w)

    def test_journal_entries_have_fields(self):
        b = self.box
        j = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        jpath = os.path.join(b.dir, "journal")
        j.bind(jpath)
        j.settimeout(10 * SLOW)
        r, w = os.pipe()
        st = os.fstat(w)
        try:
            b.start(b.corod(), stderr=w,
                    env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}", "COROD_JOURNAL_SOCKET": jpath})
            with Client(b.sock) as c:
                i = c.call("submit", {"kind": "exec", "args": {"argv": ["sh", "-c", "exit 5"]}, "group": "nightly"})["id"]
                c.call("wait", {"ids": [i]})
            entries = []
            deadline = time.time() + 10 * SLOW
            while time.time() < deadline and not any(e.get("COROD_CODE") for e in entries):
                entries.append(journal_entries(j.recv(65536)))
            serving = [e for e in entries if e["MESSAGE"].startswith("serving ")]
            self.assertEqual(serving[0]["PRIORITY"], "6")
            self.assertEqual(serving[0]["SYSLOG_IDENTIFIER"], "corod")
            end = [e for e in entries if e.get("COROD_CODE")][0]
            self.assertEqual(end["COROD_TASK"], str(i))
            self.assertEqual(end["COROD_UID"], str(os.geteuid()))
            self.assertEqual(end["COROD_GROUP"], "nightly")
            self.assertEqual(end["COROD_CODE"], "exit_status")
            self.assertEqual(end["PRIORITY"], "6")
            rc, _ = b.stop()
            self.assertEqual(rc, 0)
            os.close(w)
            w = None
            os.set_blocking(r, False)
            try:
                said = [x for x in os.read(r, 65536).split(b"\n") if x and not x.startswith((b"--", b"=="))]
                self.assertEqual(said, [])  # nothing went to stderr
            except BlockingIOError:
                pass
        finally:
            j.close()
            os.close(r)
            if w is not None:
                os.close(w)


if __name__ == "__main__":
    tp.COROD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
