#!/usr/bin/python3
"""Cross-language and hostile-input tests of corod's wire protocol.

Written from proto/PROTOCOL.md alone, with Debian's python3 and python3-msgpack: it
starts a real corod on a private socket, speaks MessagePack-RPC to it directly, and
checks pipelining with a deferred `wait` in front, notifications, and that random bytes,
truncated and oversize messages, wrong shapes, a client that never reads while thousands
of tasks finish, and a client that vanishes mid-wait all leave the daemon serving a
fresh client.

usage: test_protocol.py COROD_BINARY
With COROD_WRAPPER set (e.g. "valgrind -q --error-exitcode=99 --leak-check=full"), every
corod runs under it, and its exit status must still be 0.
"""
import os
import random
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import msgpack

COROD = None


class Daemon:
    """A corod on a private socket and state directory. user: a pwd entry to run it as
    (from root); capture_stderr: keep what it says, in self.stderr after stop(); rlimits:
    {resource.RLIMIT_*: value} set as both its soft and hard limits before it starts (or
    {...: (soft, hard)})."""

    def __init__(self, *extra, user=None, capture_stderr=False, rlimits=None, dir=None):
        self.dir = dir or tempfile.mkdtemp(prefix="corod-py-")  # dir: a killed one's, to restart it
        self.sock = os.path.join(self.dir, "corod.sock")
        self.stderr = None
        wrapper = shlex.split(os.environ.get("COROD_WRAPPER", ""))
        if user:
            os.chown(self.dir, user.pw_uid, user.pw_gid)

        def prepare():
            for which, value in (rlimits or {}).items():
                resource.setrlimit(which, value if isinstance(value, tuple) else (value, value))
            if user:
                os.setgroups([])
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)
        self.proc = subprocess.Popen(
            [*wrapper, COROD, "--socket", self.sock, "--state-dir", os.path.join(self.dir, "state"), *extra],
            preexec_fn=prepare if user or rlimits else None, text=capture_stderr,
            stderr=subprocess.PIPE if capture_stderr else None if wrapper else subprocess.DEVNULL)
        deadline = time.time() + (60 if wrapper else 5)
        while time.time() < deadline:
            try:
                with Client(self.sock) as c:
                    c.call("hello")
                return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("corod did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        if self.proc.stderr:
            self.stderr = self.proc.communicate(timeout=120)[1]
        rc = self.proc.wait(timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


class RemoteError(Exception):
    def __init__(self, err):
        super().__init__(f"{err['code']}: {err['message']}")
        self.code = err["code"]
        self.message = err["message"]


class Client:
    """The whole client: a socket, a msgid counter and an unpacker."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(20)
        try:
            self.s.connect(path)
        except OSError:
            self.s.close()
            raise
        self.u = msgpack.Unpacker(raw=False)
        self.msgid = 0
        self.notes = []
        self.answers = {}

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.s.close()

    def send(self, method, params=None):
        self.msgid += 1
        self.answers.pop(self.msgid, None)  # one a raw request with this msgid left
        self.s.sendall(msgpack.packb([0, self.msgid, method, [] if params is None else [params]]))
        return self.msgid

    def read(self):
        """The next message, response or notification."""
        while True:
            for m in self.u:
                return m
            data = self.s.recv(1 << 16)
            if not data:
                raise ConnectionResetError("daemon closed the connection")
            self.u.feed(data)

    def response(self, msgid):
        # Answers may come out of order (PROTOCOL.md): one for another request is kept.
        while msgid not in self.answers:
            m = self.read()
            if m[0] == 2:
                self.notes.append(m)
                continue
            assert m[0] == 1, m
            self.answers[m[1]] = m
        m = self.answers.pop(msgid)
        if m[2] is not None:
            raise RemoteError(m[2])
        return m[3]

    def call(self, method, params=None):
        return self.response(self.send(method, params))


def wait_for(pred, timeout, what):
    """pred()'s first true value within timeout seconds, else a failure naming what."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def as_nobody(fn):
    """fn() run in a child that has dropped to nobody (no supplementary groups): what it
    returned (a repr-able value), or an AssertionError saying what it raised."""
    import pwd
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            nb = pwd.getpwnam("nobody")
            os.setgroups([])
            os.setgid(nb.pw_gid)
            os.setuid(nb.pw_uid)
            os.write(w, repr(fn()).encode())
            os._exit(0)
        except BaseException as e:  # noqa: BLE001
            os.write(w, ("ERR " + repr(e)).encode())
            os._exit(1)
    os.close(w)
    data = read_all(r)
    os.close(r)
    _, st = os.waitpid(pid, 0)
    if st != 0:
        raise AssertionError(data.decode(errors="replace"))
    return eval(data.decode())  # noqa: S307 -- our own child's repr


def read_all(fd):
    """Everything fd gives until end of file."""
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return data
        data += chunk


def native_allocator():
    """Whether corod frees memory through glibc's malloc: not under valgrind, nor when
    built with ASan, whose quarantine holds freed memory back."""
    if os.environ.get("COROD_WRAPPER"):
        return False
    with open(COROD, "rb") as f:
        return b"__asan_init" not in f.read()


def fill(c, n=10):
    """Submit n finished tasks, so that `list` answers are not trivially small."""
    ids = [c.call("submit", {"kind": "sleep", "args": {"seconds": 0, "result": "r" * 100}})["id"] for _ in range(n)]
    c.call("wait", {"ids": ids})
    return ids


class Protocol(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon("--max-output", "65536")

    @classmethod
    def tearDownClass(cls):
        assert cls.d.stop() == 0

    def client(self):
        return Client(self.d.sock)

    def assert_serving(self):
        with self.client() as c:
            self.assertEqual(c.call("hello", {"client": "py"})["protocol"], 1)

    # ---- the contract, as a client in another language uses it ----

    def test_submit_gather_wait(self):
        with self.client() as c:
            a = c.call("submit", {"kind": "sleep", "args": {"seconds": 0.05, "result": {"x": [1, 2]}}})["id"]
            b = c.call("submit", {"kind": "sleep", "args": {"seconds": 0.02, "result": "b"}})["id"]
            g = c.call("submit", {"kind": "gather", "args": {"ids": [a, b]}, "name": "py"})["id"]
            r = c.call("wait", {"ids": [g]})
            self.assertEqual(r["pending"], [])
            rec = r["done"][0]
            self.assertEqual(rec["state"], "succeeded")
            self.assertEqual(rec["result"], [{"x": [1, 2]}, "b"])
            for k in ("id", "kind", "name", "group", "state", "owner_uid", "created_at",
                      "started_at", "finished_at", "attempts"):
                self.assertIn(k, rec)
            self.assertEqual(c.call("get", {"id": g})["name"], "py")

    def test_pipelined_with_deferred_wait_in_front(self):
        with self.client() as c:
            slow = c.call("submit", {"kind": "sleep", "args": {"seconds": 0.3}})["id"]
            # One write: a wait that cannot be answered yet, then three quick requests.
            msgs = [[0, 100, "wait", [{"ids": [slow]}]], [0, 101, "get", [{"id": slow}]],
                    [0, 102, "hello", []], [0, 103, "list", [{"limit": 1}]]]
            c.s.sendall(b"".join(msgpack.packb(m) for m in msgs))
            order = [c.read()[1] for _ in range(4)]
            self.assertEqual(order, [101, 102, 103, 100])

    def test_notification_for_task_already_done(self):
        with self.client() as c:
            t = c.call("submit", {"kind": "sleep", "args": {"seconds": 0}})["id"]
            c.call("wait", {"ids": [t]})
            mid = c.send("subscribe", {"ids": [t]})
            first = c.read()
            self.assertEqual(first[:3], [1, mid, None])  # the response comes first...
            sub = first[3]["sub"]
            note = c.read()                               # ...then the notification
            self.assertEqual(note[0:2], [2, "task.done"])
            self.assertEqual(note[2][0]["sub"], sub)
            self.assertEqual(note[2][0]["task"]["id"], t)

    def test_an_id_named_twice_is_notified_once(self):
        with self.client() as c:
            t = c.call("submit", {"kind": "sleep", "args": {"seconds": 0}})["id"]
            u = c.call("submit", {"kind": "sleep", "args": {"seconds": 0.05}})["id"]
            self.assertEqual(len(c.call("wait", {"ids": [t, u, t, t]})["done"]), 2)
            sub = c.call("subscribe", {"ids": [t, t, u, t, u]})["sub"]
            c.call("hello")  # after the notifications of tasks already done
            notes = [n for n in c.notes if n[2][0]["sub"] == sub]
            self.assertEqual(sorted(n[2][0]["task"]["id"] for n in notes), [t, u])
            c.call("unsubscribe", {"sub": sub})

    def test_all_subscription_and_cancel(self):
        with self.client() as c:
            sub = c.call("subscribe", {"all": True})["sub"]
            t = c.call("submit", {"kind": "sleep", "args": {"seconds": 30}})["id"]
            self.assertEqual(c.call("cancel", {"id": t, "message": "bye"}), {"cancelled": True})
            while not c.notes:
                c.notes.append(c.read())
            note = c.notes[0][2][0]
            self.assertEqual((note["sub"], note["task"]["id"], note["task"]["state"]), (sub, t, "cancelled"))
            self.assertEqual(note["task"]["error"]["message"], "bye")
            self.assertEqual(c.call("unsubscribe", {"sub": sub}), {})

    def test_group_counters_follow_every_stage(self):
        def counts(c):
            g = [g for g in c.call("groups")["groups"] if g["name"] == "gc"][0]
            return g["pending"], g["running"]
        with self.client() as c:
            run = c.call("submit", {"kind": "sleep", "args": {"seconds": 30}, "group": "gc"})["id"]
            later = c.call("submit", {"kind": "sleep", "args": {"seconds": 1}, "group": "gc", "delay": 30})["id"]
            dep = c.call("submit", {"kind": "sleep", "args": {"seconds": 1}, "group": "gc", "after": [run]})["id"]
            self.assertEqual(counts(c), (2, 1))
            self.assertEqual(c.call("get", {"id": later})["state"], "pending")
            c.call("cancel", {"id": later})
            self.assertEqual(counts(c), (1, 1))
            c.call("cancel", {"id": run})       # its dependant ends failed, dependency_failed
            c.call("wait", {"ids": [run, dep]})
            self.assertEqual(counts(c), (0, 0))
            self.assertEqual(c.call("get", {"id": dep})["error"]["code"], "dependency_failed")
            # set_group changes the settings a group reports
            c.call("set_group", {"name": "gc", "parallel": 3, "paused": True})
            g = [g for g in c.call("groups")["groups"] if g["name"] == "gc"][0]
            self.assertEqual((g["parallel"], g["paused"]), (3, True))
            # create: false changes a group that exists, and makes none.
            c.call("set_group", {"name": "gc", "paused": False, "create": False})
            self.assertFalse([g for g in c.call("groups")["groups"] if g["name"] == "gc"][0]["paused"])
            with self.assertRaises(RemoteError) as e:
                c.call("set_group", {"name": "gc-typo", "paused": True, "create": False})
            self.assertEqual(e.exception.code, "not_found")
            self.assertNotIn("gc-typo", [g["name"] for g in c.call("groups")["groups"]])

    def test_list_explains_at_most_1024_pending_tasks_a_page(self):
        d = Daemon()  # pages of the default size (this class's daemon has a small --max-output)
        self.addCleanup(d.stop)
        with Client(d.sock) as c:
            spec = {"kind": "sleep", "args": {"seconds": 0}, "group": "many-waiting", "delay": 600}
            ms = [c.send("submit", spec) for _ in range(1030)]
            ids = [c.response(m)["id"] for m in ms]
            page = c.call("list", {"group": "many-waiting", "limit": 2000})
            self.assertEqual(len(page["tasks"]), 1030)
            self.assertEqual([w["id"] for w in page["waiting"]], ids[:1024])  # the first 1,024
            ms = [c.send("cancel", {"id": i}) for i in ids]
            for m in ms:
                c.response(m)

    def test_remove_group(self):
        names = lambda c: {g["name"]: g for g in c.call("groups")["groups"]}  # noqa: E731
        with self.client() as c:
            c.call("set_group", {"name": "gone-soon", "parallel": 3, "paused": True})
            t = c.call("submit", {"kind": "sleep", "group": "gone-soon", "args": {"seconds": 0}})["id"]
            for params, code in (({"name": "gone-soon"}, "invalid_state"),  # a task pending in it
                                 ({"name": "default"}, "invalid_state"), ({"name": "never-was"}, "not_found"),
                                 ({}, "bad_request")):
                with self.assertRaises(RemoteError) as e:
                    c.call("remove_group", params)
                self.assertEqual(e.exception.code, code, params)
            c.call("set_group", {"name": "gone-soon", "paused": False})
            c.call("wait", {"ids": [t]})
            self.assertEqual(c.call("remove_group", {"name": "gone-soon"}), {})
            # its ended task keeps it listed, as a group a submit named, with the default's settings
            g = names(c)["gone-soon"]
            self.assertEqual((g["configured"], g["paused"]), (False, False))
            with self.assertRaises(RemoteError) as e:
                c.call("remove_group", {"name": "gone-soon"})
            self.assertEqual(e.exception.code, "not_found")
            c.call("set_group", {"name": "empty"})
            c.call("remove_group", {"name": "empty"})
            self.assertNotIn("empty", names(c))
        sock = self.d.sock
        os.chmod(self.d.dir, 0o755)  # nobody must reach the socket inside it

        def nobody():
            with Client(sock) as c:
                try:
                    c.call("remove_group", {"name": "default"})
                except RemoteError as e:
                    return e.code
        self.assertEqual(as_nobody(nobody), "permission_denied")

    def test_field_errors_name_the_field(self):
        with self.client() as c:
            cases = [
                ({"kind": "sleep", "args": {"seconds": float("nan")}}, "args.seconds"),
                ({"kind": "sleep", "args": {"seconds": -3}}, "args.seconds"),
                ({"kind": "sleep", "args": {"seconds": 1e300}}, "args.seconds"),
                ({"kind": "sleep", "args": {"seconds": "1"}}, "args.seconds"),
                ({"kind": "sleep", "args": {"seconds": 1}, "delay": -1}, "delay"),
                ({"kind": "sleep", "args": {"seconds": 1}, "after": [0]}, "after[0]"),
                ({"kind": "sleep", "args": {"seconds": 1}, "after": [2 ** 64 - 1]}, "after[0]"),
                ({"kind": "sleep", "args": {"seconds": 1}, "name": 5}, "name"),
                ({"kind": "gather", "args": {"ids": ["1"]}}, "args.ids[0]"),
                ({"kind": 7}, "kind"),
                ({}, "kind"),
            ]
            sleep1 = {"kind": "sleep", "args": {"seconds": 1}}
            cases += [  # every length and range limit, crossed by one
                ({**sleep1, "name": "n" * 257}, "name is 257 bytes"),
                ({**sleep1, "group": "g" * 65}, "group"),
                ({"kind": "k" * 33}, "kind is 33 bytes"),
                ({**sleep1, "after": [1] * 1025}, "after has 1025 ids"),
                ({**sleep1, "retries": 1001}, "retries must be between 0 and 1000"),
                ({**sleep1, "priority": 1000001}, "priority must be between"),
                ({**sleep1, "priority": -1000001}, "priority must be between"),
                ({**sleep1, "timeout": 0}, "timeout must be more than 0"),
                ({"kind": "gather", "args": {"ids": [1] * 65537}}, "args.ids has 65537 ids"),
            ]
            for params, field in cases:
                with self.assertRaises(RemoteError) as e:
                    c.call("submit", params)
                self.assertEqual(e.exception.code, "bad_request", params if len(str(params)) < 200 else field)
                self.assertIn(field, e.exception.message, field)
            for method, params, field in (("wait", {"ids": [1] * 65537}, "ids has 65537 ids"),
                                          ("subscribe", {"ids": [1] * 65537}, "ids has 65537 ids"),
                                          ("list", {"limit": 100001}, "limit must be between 1 and 100000"),
                                          ("set_group", {"name": "x", "parallel": 65537}, "parallel")):
                with self.assertRaises(RemoteError) as e:
                    c.call(method, params)
                self.assertEqual(e.exception.code, "bad_request", method)
                self.assertIn(field, e.exception.message, method)
            with self.assertRaises(RemoteError) as e:
                c.call("get", {"id": -1})
            self.assertEqual(e.exception.code, "bad_request")

    # ---- hostile input: after each, a fresh client is still served ----

    def test_wrong_shapes_keep_the_connection(self):
        with self.client() as c:
            for bad in ([1, 2, 3], [0, 5, "get"], [0, 6, "get", {"id": 1}], "hello", [0, 7, 8, []], {"a": 1}):
                c.s.sendall(msgpack.packb(bad))
                m = c.read()
                self.assertEqual(m[0], 1)
                self.assertEqual(m[2]["code"], "bad_request", bad)
            self.assertEqual(c.call("hello")["protocol"], 1)  # same connection, still usable
        self.assert_serving()

    def test_not_messagepack_closes_with_bad_request(self):
        with self.client() as c:
            c.s.sendall(b"\xc1garbage")
            m = c.read()
            self.assertEqual((m[0], m[1], m[2]["code"]), (1, None, "bad_request"))
            with self.assertRaises((ConnectionResetError, OSError)):
                c.read()
        self.assert_serving()

    def test_random_bytes(self):
        rng = random.Random(42)
        for _ in range(20):
            with self.client() as c:
                c.s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096))))
                c.s.shutdown(socket.SHUT_WR)
                try:
                    while c.s.recv(65536):
                        pass
                except OSError:
                    pass
        self.assert_serving()

    def test_truncated_message_then_close(self):
        whole = msgpack.packb([0, 1, "submit", [{"kind": "sleep", "args": {"seconds": 1}}]])
        for cut in range(1, len(whole)):
            with self.client() as c:
                c.s.sendall(whole[:cut])
        self.assert_serving()

    def test_oversize_message(self):
        with self.client() as c:
            # A str32 header claiming 17 MiB: refused before it is read or allocated.
            c.s.sendall(b"\x94\x00\x01\xa5hello\x91\xdb" + (17 << 20).to_bytes(4, "big"))
            m = c.read()
            self.assertEqual((m[0], m[1], m[2]["code"]), (1, None, "too_large"))
        with self.client() as c:
            # An array32 claiming four billion elements.
            c.s.sendall(b"\xdd\xff\xff\xff\xff")
            self.assertEqual(c.read()[2]["code"], "too_large")
        self.assert_serving()

    def test_message_limit_holds_for_a_message_that_arrives_whole(self):
        # The daemon decodes a message that arrived in one piece without the framer; the
        # limit must hold there too: just under --max-message is served, just over is
        # too_large, though every byte of it is already in the daemon's buffer.
        d = Daemon("--max-message", "1024")
        try:
            for size, ok in ((1024, True), (1025, False)):
                with Client(d.sock) as c:
                    head = msgpack.packb([0, 1, "hello", [{"pad": ""}]])
                    pad = size - len(head) - 2  # a str16 header: two bytes more than fixstr
                    whole = msgpack.packb([0, 1, "hello", [{"pad": "x" * pad}]])  # fields it does not know are ignored
                    self.assertEqual(len(whole), size)
                    c.s.sendall(whole + msgpack.packb([0, 2, "hello", []]))
                    m = c.read()
                    if ok:
                        self.assertEqual((m[1], m[2]), (1, None))
                    else:
                        self.assertEqual(m[2]["code"], "too_large")
            with Client(d.sock) as c:
                self.assertEqual(c.call("hello")["protocol"], 1)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_deep_nesting(self):
        with self.client() as c:
            c.s.sendall(b"\x91" * 100 + b"\xc0")
            self.assertEqual(c.read()[2]["code"], "bad_request")
        self.assert_serving()

    def test_client_that_never_reads_is_dropped(self):
        lazy = self.client()
        lazy.call("subscribe", {"all": True})
        # Thousands of tasks end; their notifications pile up unread past --max-output.
        with self.client() as c:
            for start in range(0, 4000, 500):
                for i in range(500):
                    c.send("submit", {"kind": "sleep", "args": {"seconds": 0, "result": "x" * 200}})
                last = None
                for _ in range(500):
                    last = c.read()
                c.call("wait", {"ids": [last[3]["id"]]})
        # The lazy client was disconnected: draining its socket ends in EOF.
        lazy.s.settimeout(5)
        got = 0
        try:
            while True:
                data = lazy.s.recv(1 << 20)
                if not data:
                    break
                got += len(data)
        except OSError:
            pass
        self.assertLess(got, 4000 * 300)  # it never received them all: it was cut off
        lazy.s.close()
        self.assert_serving()

    def test_pipelining_without_reading_is_paced_not_dropped(self):
        # 20,000 requests in one write, answers read only afterwards: the daemon stops
        # taking requests while the answers back up (here past 32 KiB of its 64 KiB
        # bound) instead of building them all in memory, and nothing is lost.
        with self.client() as c:
            five = fill(c)[:5]  # each answer below then carries five records (~1.5 KB)
            n = 20000
            c.s.sendall(b"".join(msgpack.packb([0, i, "wait", [{"ids": five}]]) for i in range(n)))
            time.sleep(0.5)
            got = [c.read()[1] for _ in range(n)]
            self.assertEqual(got, list(range(n)))
        self.assert_serving()

    def test_input_buffer_full_stops_reading_until_answers_drain(self):
        # A daemon with the smallest input buffer: a pipeline bigger than it, from a
        # writer that does not wait, while the answers are read slowly. Reading stops
        # when the buffer is full and resumes as answers drain; nothing is lost.
        import threading
        d = Daemon("--max-message", "1024", "--max-output", "65536")
        try:
            with Client(d.sock) as c:
                five = fill(c)[:5]
                n = 20000
                payload = b"".join(msgpack.packb([0, i, "wait", [{"ids": five}]]) for i in range(n))
                writer = threading.Thread(target=c.s.sendall, args=(payload,))
                writer.start()
                time.sleep(0.3)  # let the daemon's input buffer fill up first
                got = [c.read()[1] for _ in range(n)]
                writer.join()
                self.assertEqual(got, list(range(n)))
        finally:
            self.assertEqual(d.stop(), 0)

    def test_burst_output_buffer_is_returned_once_drained(self):
        # A subscriber that stops reading while 6,000 tasks with 1,000-byte results end:
        # ~7 MB of notifications wait in its output buffer, far past SRV_OUT_KEEP (1 MiB)
        # and under --max-output. Once it has read them all, the daemon frees that buffer
        # instead of keeping a burst's memory for the connection's lifetime.
        d = Daemon("--max-output", str(64 << 20))
        try:
            def rss_kib():
                with open(f"/proc/{d.proc.pid}/status") as f:
                    return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
            with Client(d.sock) as lazy, Client(d.sock) as c:
                lazy.call("subscribe", {"all": True})
                n = 6000
                for _ in range(n // 500):
                    ids = [c.call("submit", {"kind": "sleep", "args": {"seconds": 0, "result": "x" * 1000}})["id"]
                           for _ in range(500)]
                    c.call("wait", {"ids": ids})
                peak = rss_kib()
                got = 0
                while len(lazy.notes) < n:
                    m = lazy.read()
                    got += len(msgpack.packb(m))
                    lazy.notes.append(m)
                self.assertTrue(all(m[1] == "task.done" for m in lazy.notes))
                lazy.call("hello")  # its buffer drained before this answer was written
                after = rss_kib()
                self.assertGreater(got, 6 << 20)
                if native_allocator():
                    self.assertGreater(peak - after, got // 1024 // 2,
                                       f"RSS {peak} KiB at the burst, {after} KiB after it drained")
        finally:
            self.assertEqual(d.stop(), 0)

    def test_waits_in_flight_are_bounded(self):
        with self.client() as c:
            t = c.call("submit", {"kind": "sleep", "args": {"seconds": 30}})["id"]
            for i in range(1024):  # the per-connection limit, all deferred
                c.send("wait", {"ids": [t]})
            with self.assertRaises(RemoteError) as e:
                c.call("wait", {"ids": [t]})
            self.assertEqual(e.exception.code, "quota_exceeded")
            c.call("cancel", {"id": t})  # answers all 1024
            answered = 0
            while answered < 1024:
                m = c.read()
                answered += m[0] == 1

    def test_active_tasks_per_uid_are_bounded(self):
        d = Daemon("--max-active", "5")
        try:
            with Client(d.sock) as c:
                ids = [c.call("submit", {"kind": "sleep", "args": {"seconds": 30}})["id"] for _ in range(5)]
                with self.assertRaises(RemoteError) as e:
                    c.call("submit", {"kind": "sleep", "args": {"seconds": 30}})
                self.assertEqual(e.exception.code, "quota_exceeded")
                c.call("cancel", {"id": ids[0]})  # an ended task frees its place
                c.call("wait", {"ids": [ids[0]]})
                c.call("submit", {"kind": "sleep", "args": {"seconds": 0}})
        finally:
            self.assertEqual(d.stop(), 0)

    def test_all_subscriptions_are_bounded(self):
        with self.client() as c:
            subs = [c.call("subscribe", {"all": True})["sub"] for _ in range(8)]
            with self.assertRaises(RemoteError) as e:
                c.call("subscribe", {"all": True})
            self.assertEqual(e.exception.code, "quota_exceeded")
            c.call("unsubscribe", {"sub": subs[0]})  # one place freed
            c.call("subscribe", {"all": True})

    def test_watched_ids_are_bounded(self):
        with self.client() as c:
            # 65,536 distinct tasks (an id named twice counts once), pipelined in batches
            # this connection's small output bound (--max-output 65536) takes.
            def batch(method, params):
                first = c.msgid + 1
                c.s.sendall(b"".join(msgpack.packb([0, first + i, method, [p]]) for i, p in enumerate(params)))
                c.msgid += len(params)
                return [c.response(first + i) for i in range(len(params))]
            ids = []
            for _ in range(16):
                ids += [r["id"] for r in batch("submit", [{"kind": "sleep", "args": {"seconds": 60}}] * 4096)]
            subs = [c.call("subscribe", {"ids": ids})["sub"] for _ in range(4)]  # 4 x 65,536: the cap
            with self.assertRaises(RemoteError) as e:
                c.call("wait", {"ids": ids[:1], "timeout": 0})
            self.assertEqual(e.exception.code, "quota_exceeded")
            for sub in subs:  # before the cancels, or their notifications pass the output bound
                c.call("unsubscribe", {"sub": sub})
            for k in range(0, 65536, 4096):
                batch("cancel", [{"id": t} for t in ids[k:k + 4096]])

    def test_many_clients_at_once_are_all_served(self):
        # 150 connections queued while the daemon is stopped: more than it accepts per
        # wake-up of the listener (64), so some wait for later turns; none is lost.
        self.d.proc.send_signal(signal.SIGSTOP)
        try:
            clients = [self.client() for _ in range(150)]
        finally:
            self.d.proc.send_signal(signal.SIGCONT)
        try:
            msgids = [c.send("hello", {"client": f"py{i}"}) for i, c in enumerate(clients)]
            for c, m in zip(clients, msgids):
                self.assertEqual(c.response(m)["protocol"], 1)
        finally:
            for c in clients:
                c.s.close()

    def test_client_vanishes_while_waiting(self):
        c = self.client()
        t = c.call("submit", {"kind": "sleep", "args": {"seconds": 0.2}})["id"]
        c.send("wait", {"ids": [t]})
        c.s.close()
        time.sleep(0.4)  # the task ends with nobody left to tell
        with self.client() as c2:
            self.assertEqual(c2.call("get", {"id": t})["state"], "succeeded")


class Accepting(unittest.TestCase):
    def test_out_of_descriptors_pauses_accepting_without_spinning(self):
        """More clients than the daemon has file descriptors: those it cannot accept wait
        in the listen queue; it says so once, does not spin on the socket that stays
        readable, keeps serving the clients it has, and takes the others once
        descriptors are free again."""
        # 36: the daemon itself holds ~16 descriptors (the store's database, its WAL and
        # shared memory, and a reading connection among them); valgrind keeps some of the
        # rest for itself.
        d = Daemon(capture_stderr=True, rlimits={resource.RLIMIT_NOFILE: 36})
        try:
            first = Client(d.sock)
            first.call("hello")
            held = []
            for _ in range(60):  # past the limit, within the listen backlog
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(d.sock)
                held.append(s)
            time.sleep(0.5)
            cpu = cpu_seconds(d.proc.pid)
            time.sleep(1.0)
            # A daemon polling the listener while accept fails would use the whole second.
            self.assertLess(cpu_seconds(d.proc.pid) - cpu, 0.5)
            first.call("hello")  # the connections it has are served meanwhile
            for s in held:
                s.close()
            first.s.close()
            # Queued behind the closed ones, taken on a retry. Under valgrind, a connection
            # the kernel hands out on a descriptor valgrind keeps for itself is closed by
            # valgrind (the daemon sees EMFILE): that client is reset, and connects again.
            for attempt in range(3 if "valgrind" in os.environ.get("COROD_WRAPPER", "") else 1):
                try:
                    with Client(d.sock) as c:
                        self.assertEqual(c.call("hello")["protocol"], 1)
                    break
                except ConnectionResetError:
                    if attempt == 2 or "valgrind" not in os.environ.get("COROD_WRAPPER", ""):
                        raise
        finally:
            self.assertEqual(d.stop(), 0)
        # Said once, not at each retry (some fifteen while the clients were held, more
        # while the queue drained), and once more when the queue was caught up with.
        self.assertEqual(d.stderr.count("cannot accept connections: Too many open files; trying again every 100 ms"),
                         1, d.stderr)
        self.assertEqual(d.stderr.count("accepting connections again"), 1, d.stderr)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class Document(unittest.TestCase):
    """PROTOCOL.md's byte-exact example is what a daemon sends, byte for byte."""

    def example(self):
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto", "PROTOCOL.md")
        with open(path) as f:
            text = f.read()
        block = text.split("The same exchange byte for byte")[1].split("```")[1]
        msgs = []
        for line in block.strip().splitlines():
            if line.startswith(("→", "←")):
                direction, label, *hexes = line.split()
                msgs.append([direction, label, bytes.fromhex("".join(hexes))])
            else:
                msgs[-1][2] += bytes.fromhex("".join(line.split()))
        return msgs

    def test_the_hex_example_is_what_a_daemon_sends(self):
        msgs = self.example()
        self.assertEqual([(d, lbl) for d, lbl, _ in msgs], [("→", "submit"), ("←", "answer"), ("→", "subscribe"),
                                                              ("←", "answer"), ("←", "task.done")])
        self.assertEqual(msgpack.unpackb(msgs[0][2]),
                         [0, 1, "submit", [{"kind": "sleep", "args": {"seconds": 0.5, "result": "hi"}}]])
        note = msgpack.unpackb(msgs[4][2])
        self.assertEqual(note[:2], [2, "task.done"])
        d = Daemon("--no-store")  # ids from 1, as in the example
        try:
            with Client(d.sock) as c:
                c.s.sendall(msgs[0][2])
                self.assertEqual(c.s.recv(4096), msgs[1][2])  # the answer, byte for byte
                c.s.sendall(msgs[2][2])
                got = b""
                while len(got) < len(msgs[3][2]) + len(msgs[4][2]):
                    got += c.s.recv(4096)
            self.assertEqual(got[:len(msgs[3][2])], msgs[3][2])
            real = msgpack.unpackb(got[len(msgs[3][2]):])
            # the same record, key for key in the same order, but for when it happened
            want, have = note[2][0]["task"], real[2][0]["task"]
            self.assertEqual(list(have), list(want))
            for k in ("created_at", "started_at", "finished_at"):
                self.assertIsInstance(have.pop(k), float)
                want.pop(k)
            self.assertEqual(have, want)
        finally:
            d.stop()


class Index(unittest.TestCase):
    def test_ids_that_collide_in_the_index_and_evictions_across_them(self):
        """The id index starts with 1,024 slots and stays that small for 50 records, so
        6,000 ids lap it six times, colliding with three tasks that stay alive at each
        lap, while evictions shift entries across them: every retained id and the long
        tasks must still be found, evicted ones not (without a store: with one, they are
        read back from it)."""
        d = Daemon("--retain", "50", "--no-store")
        try:
            with Client(d.sock) as c:
                longs = [c.call("submit", {"kind": "sleep", "args": {"seconds": 600}})["id"] for _ in range(3)]
                done = []
                for lap in range(150):
                    msgids = [c.send("submit", {"kind": "sleep", "args": {"seconds": 0}}) for _ in range(40)]
                    ids = [c.response(m)["id"] for m in msgids]
                    c.call("wait", {"ids": ids})
                    done += ids
                    for i in longs:
                        self.assertEqual(c.call("get", {"id": i})["state"], "running")
                    for i in done[-50:]:
                        self.assertEqual(c.call("get", {"id": i})["state"], "succeeded")
                    for i in done[-60:-50]:
                        with self.assertRaises(RemoteError) as e:
                            c.call("get", {"id": i})
                        self.assertEqual(e.exception.code, "not_found")
                self.assertGreater(done[-1] - longs[0], 5 * 1024)
                for i in longs:
                    self.assertTrue(c.call("cancel", {"id": i})["cancelled"])
                c.call("wait", {"ids": longs})
                self.assertEqual(len(c.call("list", {"limit": 1000})["tasks"]), 50)
        finally:
            self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    COROD = sys.argv.pop(1)
    unittest.main(verbosity=2)
