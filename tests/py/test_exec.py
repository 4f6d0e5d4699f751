#!/usr/bin/python3
"""exec tasks, groups, priorities, pause, retries and output, against a real corod.

usage: test_exec.py COROD_BINARY
Runs as root for the ownership tests (they fork and drop to `nobody`); skipped otherwise.
With COROD_WRAPPER set (valgrind...), every corod runs under it.
"""
import grp
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_protocol as tp  # noqa: E402
from test_protocol import Client, Daemon, RemoteError, as_nobody, read_all  # noqa: E402

SLOW = 4 if os.environ.get("COROD_WRAPPER") else 1  # timing bounds under valgrind


def run(c, argv, args=None, **spec):
    """Submit an exec and wait for its record."""
    a = {"argv": argv}
    a.update(args or {})
    i = c.call("submit", {"kind": "exec", "args": a, **spec})["id"]
    return c.call("wait", {"ids": [i]})["done"][0]


def output(c, i, stream="stdout"):
    """The whole output of a finished task, read in pieces by offset."""
    data, off = b"", 0
    while True:
        r = c.call("output", {"id": i, "stream": stream, "offset": off, "max": 1 << 20})
        data += r["data"]
        assert r["next"] == off + len(r["data"])
        off = r["next"]
        if r["eof"]:
            return data


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(pred, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


class Exec(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon("--grace", "5")
        cls.tmp = tempfile.mkdtemp(prefix="corod-exec-")
        os.chmod(cls.tmp, 0o755)

    @classmethod
    def tearDownClass(cls):
        assert cls.d.stop() == 0
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def client(self):
        return Client(self.d.sock)

    # ---- outcomes ----

    def test_exit_status_signal_spawn_failed(self):
        with self.client() as c:
            r = run(c, ["true"])
            self.assertEqual(r["state"], "succeeded")
            self.assertEqual(r["result"]["exit_code"], 0)
            self.assertEqual(r["command"], "true")
            for k in ("pid", "duration", "user_time", "system_time", "max_rss_kib", "stdout_bytes"):
                self.assertIn(k, r["result"])
            r = run(c, ["sh", "-c", "exit 3"])
            self.assertEqual((r["state"], r["error"]["code"], r["error"]["exit_code"]), ("failed", "exit_status", 3))
            r = run(c, ["sh", "-c", "kill -9 $$"])
            self.assertEqual((r["state"], r["error"]["code"], r["error"]["signal"]), ("failed", "signal", 9))
            r = run(c, ["no-such-program-corod"])
            self.assertEqual((r["state"], r["error"]["code"]), ("failed", "spawn_failed"))
            self.assertIn("not found in PATH", r["error"]["message"])
            r = run(c, ["/nonexistent/prog"])
            self.assertEqual(r["error"]["code"], "spawn_failed")
            r = run(c, ["true"], {"cwd": "/nonexistent-dir"})
            self.assertEqual(r["error"]["code"], "spawn_failed")
            self.assertIn("/nonexistent-dir", r["error"]["message"])
            # PATH is the task's own: with an env whose PATH lacks /bin, `true` is not found.
            r = run(c, ["true"], {"env": {"PATH": "/nonexistent"}})
            self.assertEqual(r["error"]["code"], "spawn_failed")

    def test_stdin_fed(self):
        data = bytes(range(256)) * 4096  # 1 MiB, more than a pipe holds
        with self.client() as c:
            r = run(c, ["cat"], {"stdin": data})
            self.assertEqual(r["state"], "succeeded")
            self.assertEqual(output(c, r["id"]), data)
            r = run(c, ["sh", "-c", "read x; echo got:$x"], {"stdin": "a line\n"})
            self.assertEqual(output(c, r["id"]), b"got:a line\n")
            # Without stdin the job reads /dev/null.
            r = run(c, ["cat"])
            self.assertEqual((r["state"], output(c, r["id"])), ("succeeded", b""))
            # A job that never reads its (large) stdin still ends.
            r = run(c, ["true"], {"stdin": data * 4})
            self.assertEqual(r["state"], "succeeded")

    def test_env_and_cwd(self):
        with self.client() as c:
            r = run(c, ["/usr/bin/env"], {"env": {"A": "1", "B": "two words"}})
            self.assertEqual(sorted(output(c, r["id"]).decode().split("\n")[:-1]), ["A=1", "B=two words"])
            r = run(c, ["/usr/bin/env"])
            keys = sorted(line.split("=", 1)[0] for line in output(c, r["id"]).decode().split("\n")[:-1])
            self.assertEqual(keys, ["HOME", "LOGNAME", "PATH", "SHELL", "USER"])
            r = run(c, ["pwd"], {"cwd": self.tmp})
            self.assertEqual(output(c, r["id"]).decode().strip(), self.tmp)
            home = pwd.getpwuid(os.getuid()).pw_dir
            r = run(c, ["pwd"])
            self.assertEqual(os.path.realpath(output(c, r["id"]).decode().strip()), os.path.realpath(home))

    def test_large_output_read_back_exactly(self):
        script = ("import sys\nfor i in range(6000):\n"
                  "    sys.stdout.buffer.write(i.to_bytes(4, 'big') * 256)\n"
                  "    if i % 1000 == 0: sys.stderr.write('e%d\\n' % i)\n")
        with self.client() as c:
            r = run(c, ["/usr/bin/python3", "-c", script])
            self.assertEqual(r["state"], "succeeded", r)
            want = b"".join(i.to_bytes(4, "big") * 256 for i in range(6000))  # 6,144,000 bytes
            got = output(c, r["id"])
            self.assertEqual(len(got), len(want))
            self.assertTrue(got == want)
            self.assertEqual(r["result"]["stdout_bytes"], len(want))
            self.assertEqual(output(c, r["id"], "stderr"), b"".join(b"e%d\n" % i for i in range(0, 6000, 1000)))
            # Offsets past the end: nothing, eof.
            r2 = c.call("output", {"id": r["id"], "offset": len(want) + 10})
            self.assertEqual((r2["data"], r2["next"], r2["eof"]), (b"", len(want) + 10, True))

    def test_output_limit_marker(self):
        with self.client() as c:
            r = run(c, ["head", "-c", "1000000", "/dev/zero"], {"output_limit": 1000})
            self.assertEqual(r["state"], "succeeded")  # the job is not stopped by the cap
            self.assertTrue(r["result"]["output_truncated"])
            self.assertEqual(r["result"]["stdout_bytes"], 1000000)
            out = output(c, r["id"])
            self.assertEqual(out[:1000], b"\0" * 1000)
            self.assertIn(b"[corod: output limit of 1000 bytes reached", out[1000:])
            self.assertLess(len(out), 1200)

    def test_output_method_errors(self):
        with self.client() as c:
            s = c.call("submit", {"kind": "sleep", "args": {"seconds": 0}})["id"]
            with self.assertRaises(RemoteError) as e:
                c.call("output", {"id": s})
            self.assertEqual(e.exception.code, "invalid_state")
            r = run(c, ["true"])
            for bad in ({"stream": "stdin"}, {"max": (4 << 20) + 1}, {"offset": -1}, {"max": "x"}):
                with self.assertRaises(RemoteError) as e:
                    c.call("output", {"id": r["id"], **bad})
                self.assertEqual(e.exception.code, "bad_request", bad)
            with self.assertRaises(RemoteError) as e:
                c.call("output", {"id": 10 ** 12})
            self.assertEqual(e.exception.code, "not_found")

    def test_output_file_that_cannot_be_read_is_internal(self):
        """A job's output file the daemon cannot read (a damaged or tampered state
        directory) is the `internal` error, saying which file and why; a symlink planted
        in its place is not followed; the daemon goes on serving."""
        out = os.path.join(self.d.dir, "state", "output")
        with self.client() as c:
            linked = run(c, ["echo", "mine"])["id"]
            made_dir = run(c, ["echo", "mine too"])["id"]
            path = os.path.join(out, f"{linked}.out")
            os.unlink(path)
            os.symlink("/etc/passwd", path)
            with self.assertRaises(RemoteError) as e:
                c.call("output", {"id": linked})
            self.assertEqual(e.exception.code, "internal")
            self.assertIn(f"{linked}.out", e.exception.message)
            self.assertIn("symbolic links", e.exception.message)
            dpath = os.path.join(out, f"{made_dir}.out")
            os.unlink(dpath)
            os.mkdir(dpath)
            with self.assertRaises(RemoteError) as e:
                c.call("output", {"id": made_dir})
            self.assertEqual(e.exception.code, "internal")
            self.assertIn("Is a directory", e.exception.message)
            # The connection and the daemon go on: the other stream still reads.
            self.assertEqual(c.call("output", {"id": made_dir, "stream": "stderr"})["data"], b"")
        with self.client() as c:
            self.assertEqual(c.call("hello")["protocol"], 1)

    def test_bad_args(self):
        cases = [
            ({}, "args.argv"), ({"argv": []}, "args.argv"), ({"argv": "ls"}, "args.argv"),
            ({"argv": ["ls", 3]}, "args.argv[1]"), ({"argv": ["ls", "a\0b"]}, "NUL"),
            ({"argv": [""]}, "args.argv[0]"), ({"argv": ["ls", "x" * 140000]}, "args.argv[1]"),
            ({"argv": ["ls"], "env": {"A=B": "1"}}, "args.env"), ({"argv": ["ls"], "env": ["A"]}, "args.env"),
            ({"argv": ["ls"], "env": {"A": 1}}, "args.env"), ({"argv": ["ls"], "cwd": "relative"}, "args.cwd"),
            ({"argv": ["ls"], "stdin": 5}, "args.stdin"), ({"argv": ["ls"], "grace": -1}, "args.grace"),
            ({"argv": ["ls"], "output_limit": -5}, "args.output_limit"),
            ({"argv": ["ls"] + ["y" * 100000] * 25}, "2097152"),
        ]
        with self.client() as c:
            for args, word in cases:
                with self.assertRaises(RemoteError) as e:
                    c.call("submit", {"kind": "exec", "args": args})
                self.assertEqual(e.exception.code, "bad_request", args)
                self.assertIn(word, e.exception.message, args)
            c.call("hello")

    # ---- stopping ----

    def test_cancel_kills_the_process_group(self):
        pidfile = os.path.join(self.tmp, "grandchild.pid")
        with self.client() as c:
            i = c.call("submit", {"kind": "exec", "args": {
                "argv": ["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"]}})["id"]
            self.assertTrue(wait_until(lambda: os.path.exists(pidfile) and os.path.getsize(pidfile) > 0, 5 * SLOW))
            with open(pidfile) as f:
                gc = int(f.read())
            self.assertTrue(alive(gc))
            self.assertEqual(c.call("get", {"id": i})["state"], "running")
            self.assertTrue(c.call("cancel", {"id": i})["cancelled"])
            r = c.call("wait", {"ids": [i]})["done"][0]
            self.assertEqual(r["state"], "cancelled")
            self.assertTrue(wait_until(lambda: not alive(gc), 2), "the grandchild outlived its job")

    def test_a_job_leaves_no_processes_behind(self):
        pidfile = os.path.join(self.tmp, "bg.pid")
        with self.client() as c:
            r = run(c, ["sh", "-c", f"sleep 300 & echo $! > {pidfile}"])
            self.assertEqual(r["state"], "succeeded")
            with open(pidfile) as f:
                bg = int(f.read())
            self.assertTrue(wait_until(lambda: not alive(bg), 2), "a background child outlived its job")

    def test_sigterm_ignored_then_sigkill_after_grace(self):
        with self.client() as c:
            marker = os.path.join(self.tmp, "trap-ready")
            i = c.call("submit", {"kind": "exec", "args": {
                "argv": ["sh", "-c", f"trap '' TERM; touch {marker}; while :; do sleep 0.05; done"],
                "grace": 0.6}})["id"]
            self.assertTrue(wait_until(lambda: os.path.exists(marker), 5 * SLOW))
            t = time.time()
            c.call("cancel", {"id": i})
            r = c.call("wait", {"ids": [i]})["done"][0]
            took = time.time() - t
            self.assertEqual(r["state"], "cancelled")
            self.assertGreaterEqual(took, 0.55)
            self.assertLess(took, 4 * SLOW)
            # A job that honours SIGTERM ends at once.
            i = c.call("submit", {"kind": "exec", "args": {"argv": ["sleep", "300"], "grace": 30}})["id"]
            self.assertTrue(wait_until(lambda: c.call("get", {"id": i})["state"] == "running", 5))
            time.sleep(0.1)
            t = time.time()
            c.call("cancel", {"id": i})
            c.call("wait", {"ids": [i]})
            self.assertLess(time.time() - t, 3 * SLOW)

    def test_timeout_each_attempt_and_retries(self):
        with self.client() as c:
            r = run(c, ["sh", "-c", "exit 1"], retries=2)
            self.assertEqual((r["state"], r["attempts"]), ("failed", 3))
            r = run(c, ["sleep", "30"], {"grace": 0.2}, timeout=0.3, retries=1)
            self.assertEqual((r["state"], r["error"]["code"], r["attempts"]), ("failed", "timeout", 2))
            counter = os.path.join(self.tmp, "count")
            t = time.time()
            r = run(c, ["sh", "-c", f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter};"
                                    f" echo attempt $n; [ $n -ge 3 ]"], retries=5, retry_delay=0.2)
            self.assertEqual((r["state"], r["attempts"]), ("succeeded", 3))
            self.assertGreaterEqual(time.time() - t, 0.4)
            # Output accumulates over attempts.
            self.assertEqual(output(c, r["id"]), b"attempt 1\nattempt 2\nattempt 3\n")
            # A cancel is not retried.
            i = c.call("submit", {"kind": "exec", "args": {"argv": ["sleep", "30"]}, "retries": 5})["id"]
            self.assertTrue(wait_until(lambda: c.call("get", {"id": i})["state"] == "running", 5))
            c.call("cancel", {"id": i})
            r = c.call("wait", {"ids": [i]})["done"][0]
            self.assertEqual((r["state"], r["attempts"]), ("cancelled", 1))
            # Cancelled while waiting for its retry_delay.
            i = c.call("submit", {"kind": "exec", "args": {"argv": ["false"]}, "retries": 5, "retry_delay": 30})["id"]
            self.assertTrue(wait_until(lambda: c.call("get", {"id": i})["attempts"] == 1 and
                                       c.call("get", {"id": i})["state"] == "pending", 5))
            c.call("cancel", {"id": i})
            self.assertEqual(c.call("wait", {"ids": [i]})["done"][0]["state"], "cancelled")

    # ---- scheduling ----

    def test_two_slots_run_four_half_second_jobs_in_about_a_second(self):
        with self.client() as c:
            c.call("set_group", {"name": "two", "parallel": 2})
            t = time.time()
            ids = [c.call("submit", {"kind": "exec", "group": "two", "args": {"argv": ["sleep", "0.5"]}})["id"]
                   for _ in range(4)]
            done = c.call("wait", {"ids": ids})["done"]
            took = time.time() - t
            self.assertTrue(all(r["state"] == "succeeded" for r in done))
            self.assertGreaterEqual(took, 0.95)
            self.assertLess(took, 1.6 * SLOW)
            # Never more than two at once.
            events = sorted([(r["started_at"], 1) for r in done] + [(r["finished_at"], -1) for r in done])
            running = peak = 0
            for _, d in events:
                running += d
                peak = max(peak, running)
            self.assertEqual(peak, 2)
            g = [g for g in c.call("groups")["groups"] if g["name"] == "two"][0]
            self.assertEqual((g["parallel"], g["running"], g["pending"], g["slots_used"]), (2, 0, 0, 0))

    def test_paused_group_holds_then_starts_higher_priority_first(self):
        with self.client() as c:
            c.call("set_group", {"name": "held", "parallel": 1, "paused": True})
            spec = {"kind": "exec", "group": "held", "args": {"argv": ["sleep", "0.1"]}}
            low = c.call("submit", {**spec, "priority": -1})["id"]
            mid = c.call("submit", spec)["id"]
            high = c.call("submit", {**spec, "priority": 10})["id"]
            also_high = c.call("submit", {**spec, "priority": 10})["id"]
            # Waits are held too while paused.
            nap = c.call("submit", {"kind": "sleep", "group": "held", "args": {"seconds": 0}})["id"]
            time.sleep(0.4)
            for i in (low, mid, high, also_high, nap):
                self.assertEqual(c.call("get", {"id": i})["state"], "pending")
            g = [g for g in c.call("groups")["groups"] if g["name"] == "held"][0]
            self.assertEqual((g["paused"], g["pending"], g["running"]), (True, 5, 0))
            # A pending exec has no output yet.
            r = c.call("output", {"id": low})
            self.assertEqual((r["data"], r["eof"]), (b"", False))
            c.call("set_group", {"name": "held", "paused": False})
            done = c.call("wait", {"ids": [low, mid, high, also_high, nap]})["done"]
            order = [r["id"] for r in sorted(done, key=lambda r: r["started_at"]) if r["kind"] == "exec"]
            self.assertEqual(order, [high, also_high, mid, low])

    def test_output_long_poll_answers_as_bytes_land_and_at_the_end(self):
        with self.client() as c:
            job = c.call("submit", {"kind": "exec", "args": {"argv": [
                "sh", "-c", "sleep 0.4; echo a; sleep 0.4; printf b >&2; sleep 0.4; echo c"]}})["id"]
            t0 = time.monotonic()
            r = c.call("output", {"id": job, "wait": 20})
            self.assertEqual((r["data"], r["next"], r["eof"]), (b"a\n", 2, False))
            self.assertLess(time.monotonic() - t0, 10)  # answered when it wrote, not at the wait's end
            r = c.call("output", {"id": job, "stream": "stderr", "wait": 20})
            self.assertEqual(r["data"], b"b")
            r = c.call("output", {"id": job, "offset": 2, "wait": 20})
            self.assertEqual(r["data"], b"c\n")
            r = c.call("output", {"id": job, "offset": 4, "wait": 20})  # nothing more: the end answers
            self.assertEqual((r["data"], r["eof"]), (b"", True))
            self.assertLess(time.monotonic() - t0, 10)
            # a quiet job: empty, not at the end, once the wait is over
            quiet = c.call("submit", {"kind": "exec", "args": {"argv": ["sleep", "30"]}})["id"]
            t1 = time.monotonic()
            r = c.call("output", {"id": quiet, "wait": 0.3})
            self.assertEqual((r["data"], r["eof"]), (b"", False))
            self.assertGreaterEqual(time.monotonic() - t1, 0.29)
            # parked polls cost the daemon nothing while the job is quiet, and answer on a cancel
            polls = [c.send("output", {"id": quiet, "wait": 60}) for _ in range(3)]
            time.sleep(0.2)
            cpu = tp.cpu_seconds(self.d.proc.pid)
            time.sleep(1)
            self.assertLess(tp.cpu_seconds(self.d.proc.pid) - cpu, 0.1)
            with self.client() as other:  # (c.call would pass over the polls' answers)
                other.call("cancel", {"id": quiet})
            for m in polls:
                self.assertEqual(c.response(m)["eof"], True)
            # a job not yet started: the poll waits for it to start and write
            c.call("set_group", {"name": "lp", "paused": True})
            later = c.call("submit", {"kind": "exec", "group": "lp", "args": {"argv": ["echo", "late"]}})["id"]
            m = c.send("output", {"id": later, "wait": 20})
            time.sleep(0.2)
            with self.client() as other:
                other.call("set_group", {"name": "lp", "paused": False})
            self.assertEqual(c.response(m)["data"], b"late\n")
            for bad in (-1, 61, "x", float("nan")):
                with self.assertRaises(RemoteError) as e:
                    c.call("output", {"id": later, "wait": bad})
                self.assertEqual(e.exception.code, "bad_request")
        # a client that goes while its polls are parked leaves the daemon serving
        c = self.client()
        busy = c.call("submit", {"kind": "exec", "args": {"argv": ["sleep", "30"]}})["id"]
        for _ in range(4):
            c.send("output", {"id": busy, "wait": 60})
        time.sleep(0.1)
        c.s.close()
        with self.client() as c:
            c.call("cancel", {"id": busy})
            self.assertEqual(c.call("wait", {"ids": [busy]})["done"][0]["state"], "cancelled")

    def test_edit_a_task_that_has_not_started(self):
        with self.client() as c:
            c.call("set_group", {"name": "ed", "paused": True, "parallel": 1})
            c.call("set_group", {"name": "ed-open", "parallel": 4})
            job = {"kind": "exec", "group": "ed", "args": {"argv": ["sleep", "0.1"]}}
            low, mid = (c.call("submit", {**job, "priority": p})["id"] for p in (-5, 0))
            rec = c.call("edit", {"id": low, "priority": 3, "name": "now-first"})
            self.assertEqual(rec["name"], "now-first")
            c.call("set_group", {"name": "ed", "paused": False})
            done = c.call("wait", {"ids": [low, mid]})["done"]
            self.assertEqual([r["id"] for r in sorted(done, key=lambda r: r["started_at"])], [low, mid])
            # out of a paused group into an open one: it starts at once
            c.call("set_group", {"name": "ed", "paused": True})
            held = c.call("submit", job)["id"]
            self.assertEqual(c.call("edit", {"id": held, "group": "ed-open"})["group"], "ed-open")
            self.assertEqual(c.call("wait", {"ids": [held], "timeout": 10})["done"][0]["state"], "succeeded")
            # a delay set, then taken back: it starts
            later = c.call("submit", {**job, "group": "ed-open", "delay": 3600})["id"]
            self.assertEqual(c.call("get", {"id": later})["waiting"]["reason"], "delay")
            c.call("edit", {"id": later, "delay": 0})
            self.assertEqual(c.call("wait", {"ids": [later], "timeout": 10})["done"][0]["state"], "succeeded")
            # a queued one given a delay waits for it
            queued = c.call("submit", job)["id"]
            self.assertEqual(c.call("edit", {"id": queued, "delay": 600})["waiting"]["reason"], "delay")
            # refusals
            run = c.call("submit", {**job, "group": "ed-open", "args": {"argv": ["sleep", "30"]}})["id"]
            self.assertTrue(wait_until(lambda: c.call("get", {"id": run})["state"] == "running", 10))
            for params, code, words in (
                    ({"id": run, "priority": 1}, "invalid_state", "has started"),
                    ({"id": low, "priority": 1}, "invalid_state", "has ended"),
                    ({"id": queued}, "bad_request", "none was given"),
                    ({"id": queued, "group": "no spaces"}, "bad_request", "group must be"),
                    ({"id": queued, "priority": 10 ** 7}, "bad_request", "priority"),
                    ({"id": queued, "delay": -1}, "bad_request", "delay"),
                    ({"id": queued, "name": "x" * 257}, "bad_request", "name"),
                    ({"id": 10 ** 12, "name": "x"}, "not_found", "not found")):
                with self.assertRaises(RemoteError) as e:
                    c.call("edit", params)
                self.assertEqual(e.exception.code, code, params)
                self.assertIn(words, e.exception.message, params)
            for t in (queued, run):
                c.call("cancel", {"id": t})

    def test_send_writes_to_a_stdin_pipe_job(self):
        with self.client() as c:
            spec = {"kind": "exec", "group": "snd",
                    "args": {"argv": ["sh", "-c", "while read l; do echo got:$l; done; echo end"], "stdin_pipe": True}}
            # not started yet (its group is paused): refused
            c.call("set_group", {"name": "snd", "paused": True})
            held = c.call("submit", spec)["id"]
            with self.assertRaises(RemoteError) as e:
                c.call("send", {"id": held, "data": "x"})
            self.assertEqual((e.exception.code, e.exception.message), ("invalid_state", "the task is not running"))
            c.call("cancel", {"id": held})
            c.call("set_group", {"name": "snd", "paused": False})
            # sent at once after the submit's answer, as its program starts: the bytes wait
            # for the program if it has not exec'd yet
            job = c.call("submit", spec)["id"]
            self.assertEqual(c.call("send", {"id": job, "data": b"one\n"}), {"written": 4})
            self.assertEqual(c.call("send", {"id": job, "data": "two\nthree\n"}), {"written": 10})
            r = c.call("output", {"id": job, "wait": 10})
            self.assertTrue(r["data"].startswith(b"got:one\n"), r)
            self.assertEqual(c.call("send", {"id": job, "eof": True}), {"written": 0})  # its stdin ends
            rec = c.call("wait", {"ids": [job]})["done"][0]
            self.assertEqual(rec["state"], "succeeded")
            self.assertEqual(output(c, job), b"got:one\ngot:two\ngot:three\nend\n")
            with self.assertRaises(RemoteError) as e:
                c.call("send", {"id": job, "data": "late"})
            self.assertEqual(e.exception.code, "invalid_state")
            # a job that stops reading holds its sender back (the answer waits), not the daemon
            stuck = c.call("submit", {"kind": "exec", "args": {"argv": ["sleep", "30"], "stdin_pipe": True}})["id"]
            self.assertTrue(wait_until(lambda: c.call("get", {"id": stuck})["state"] == "running", 10))
            chunk = b"x" * 65536
            while True:  # fills the pipe: the kernel keeps 64 KiB
                m = c.send("send", {"id": stuck, "data": chunk})
                c.s.settimeout(1)
                try:
                    c.response(m)
                except socket.timeout:
                    break
                finally:
                    c.s.settimeout(20)
            with self.client() as other:
                with self.assertRaises(RemoteError) as e:  # one in flight per job
                    other.call("send", {"id": stuck, "data": b"y"})
                self.assertIn("in flight", e.exception.message)
                other.call("cancel", {"id": stuck})
            with self.assertRaises(RemoteError) as e:  # the waiting send ends with the job
                c.response(m)
            self.assertEqual(e.exception.code, "invalid_state")
            # refusals
            plain = c.call("submit", {"kind": "exec", "args": {"argv": ["sleep", "30"]}})["id"]
            nap = c.call("submit", {"kind": "sleep", "args": {"seconds": 30}})["id"]
            for params, code in (({"id": plain, "data": "x"}, "invalid_state"),
                                 ({"id": nap, "data": "x"}, "invalid_state"),
                                 ({"id": plain, "data": b"x" * 65537}, "too_large"),
                                 ({"id": plain, "data": 5}, "bad_request"),
                                 ({"id": plain}, "bad_request")):
                with self.assertRaises(RemoteError) as e:
                    c.call("send", params)
                self.assertEqual(e.exception.code, code, params)
            with self.assertRaises(RemoteError) as e:
                c.call("submit", {"kind": "exec", "args": {"argv": ["cat"], "stdin": "x", "stdin_pipe": True}})
            self.assertEqual(e.exception.code, "bad_request")
            for t in (plain, nap):
                c.call("cancel", {"id": t})

    def test_signal_reaches_the_process_group_and_leaves_the_task(self):
        with self.client() as c:
            marker = os.path.join(self.tmp, "usr1")
            job = c.call("submit", {"kind": "exec", "args": {"argv": ["sh", "-c", (
                f"trap 'touch {marker}' USR1; sleep 30 & wait; sleep 30 & wait")]}})["id"]
            self.assertTrue(wait_until(lambda: c.call("get", {"id": job})["state"] == "running", 10))
            time.sleep(0.2)
            self.assertEqual(c.call("signal", {"id": job, "signal": "SIGUSR1"}), {})
            self.assertTrue(wait_until(lambda: os.path.exists(marker), 10))
            self.assertEqual(c.call("get", {"id": job})["state"], "running")
            for bad in ({"signal": 0}, {"signal": 65}, {"signal": "NOPE"}, {"signal": -1}, {"signal": "SIGRTMIN"},
                        {"signal": 1.5}, {}):
                with self.assertRaises(RemoteError) as e:
                    c.call("signal", {"id": job, **bad})
                self.assertEqual(e.exception.code, "bad_request", bad)
            c.call("signal", {"id": job, "signal": 15})
            rec = c.call("wait", {"ids": [job]})["done"][0]
            self.assertEqual((rec["state"], rec["error"]["code"], rec["error"]["signal"]), ("failed", "signal", 15))
            for target, why in ((job, "is not running"),
                                (c.call("submit", {"kind": "sleep", "args": {"seconds": 5}})["id"], "runs no process")):
                with self.assertRaises(RemoteError) as e:
                    c.call("signal", {"id": target, "signal": "HUP"})
                self.assertEqual(e.exception.code, "invalid_state")
                self.assertIn(why, e.exception.message)
            with self.assertRaises(RemoteError) as e:
                c.call("signal", {"id": 10 ** 12, "signal": "HUP"})
            self.assertEqual(e.exception.code, "not_found")

    def test_a_pending_task_says_why_it_waits(self):
        with self.client() as c:
            c.call("set_group", {"name": "why", "parallel": 1})
            job = {"kind": "exec", "group": "why", "args": {"argv": ["sleep", "30"]}}
            run = c.call("submit", job)["id"]
            full = c.call("submit", job)["id"]
            dep = c.call("submit", {**job, "after": [run, full]})["id"]
            t0 = time.time()
            later = c.call("submit", {**job, "delay": 100})["id"]
            retry = c.call("submit", {"kind": "exec", "group": "why-2",
                                      "args": {"argv": ["false"]}, "retries": 1, "retry_delay": 100})["id"]
            # its first attempt has run and failed: it waits for its retry (not while it runs)
            self.assertTrue(wait_until(lambda: c.call("get", {"id": retry}).get("waiting", {}).get("reason")
                                       == "retry", 10))
            self.assertEqual(c.call("get", {"id": full})["waiting"], {"reason": "full", "running": 1, "parallel": 1})
            self.assertEqual(c.call("get", {"id": dep})["waiting"], {"reason": "after", "left": 2, "ids": [run, full]})
            w = c.call("get", {"id": later})["waiting"]
            self.assertEqual(w["reason"], "delay")
            self.assertTrue(t0 + 99 < w["until"] < time.time() + 101, w)
            w = c.call("get", {"id": retry})["waiting"]
            self.assertEqual(w["reason"], "retry")
            self.assertTrue(time.time() + 90 < w["until"] < time.time() + 101, w)
            self.assertNotIn("waiting", c.call("get", {"id": run}))  # running: nothing to say
            # many dependencies: 16 named, all counted
            naps = [c.call("submit", {"kind": "sleep", "args": {"seconds": 60}})["id"] for _ in range(20)]
            many = c.call("submit", {"kind": "sleep", "args": {"seconds": 0}, "after": naps})["id"]
            w = c.call("get", {"id": many})["waiting"]
            self.assertEqual((w["reason"], w["left"], w["ids"]), ("after", 20, naps[:16]))
            for i in naps:
                c.call("cancel", {"id": i})
            # list says the same, beside the page's records
            page = c.call("list", {"group": "why"})
            self.assertIn({"id": full, "reason": "full", "running": 1, "parallel": 1}, page["waiting"])
            self.assertEqual(sorted(w["id"] for w in page["waiting"]), [full, dep, later])
            c.call("set_group", {"name": "why", "paused": True})
            self.assertEqual(c.call("get", {"id": full})["waiting"], {"reason": "paused"})
            for i in (run, full, dep, later, retry):
                c.call("cancel", {"id": i})
            c.call("wait", {"ids": [run, full, dep, later, retry]})
            self.assertNotIn("waiting", c.call("get", {"id": full}))
            self.assertEqual(c.call("list", {"group": "why"})["waiting"], [])

    def test_waits_take_no_slot_and_after_crosses_kinds(self):
        with self.client() as c:
            c.call("set_group", {"name": "one", "parallel": 1})
            busy = c.call("submit", {"kind": "exec", "group": "one", "args": {"argv": ["sleep", "1"]}})["id"]
            t = time.time()
            nap = c.call("submit", {"kind": "sleep", "group": "one", "args": {"seconds": 0.1}})["id"]
            g = c.call("submit", {"kind": "gather", "group": "one", "args": {"ids": [nap]}})["id"]
            c.call("wait", {"ids": [g]})
            self.assertLess(time.time() - t, 0.8)  # not behind the running exec
            self.assertEqual(c.call("get", {"id": busy})["state"], "running")
            # An exec after a gather, and a gather of execs.
            e1 = c.call("submit", {"kind": "exec", "args": {"argv": ["echo", "one"]}})["id"]
            e2 = c.call("submit", {"kind": "exec", "args": {"argv": ["echo", "two"]}})["id"]
            ga = c.call("submit", {"kind": "gather", "args": {"ids": [e1, e2]}})["id"]
            e3 = c.call("submit", {"kind": "exec", "after": [ga], "args": {"argv": ["echo", "three"]}})["id"]
            r = c.call("wait", {"ids": [e3]})["done"][0]
            self.assertEqual(r["state"], "succeeded")
            gr = c.call("get", {"id": ga})
            self.assertEqual([m["exit_code"] for m in gr["result"]], [0, 0])
            # An exec after a failing exec: dependency_failed, never run.
            bad = c.call("submit", {"kind": "exec", "args": {"argv": ["false"]}})["id"]
            dep = c.call("submit", {"kind": "exec", "after": [bad], "args": {"argv": ["true"]}})["id"]
            r = c.call("wait", {"ids": [dep]})["done"][0]
            self.assertEqual((r["error"]["code"], r["attempts"]), ("dependency_failed", 0))
            c.call("cancel", {"id": busy})

    def test_busy_output_keeps_daemon_responsive(self):
        """A job writing hundreds of MiB: pings stay quick, the daemon's memory flat."""
        with self.client() as c:
            i = c.call("submit", {"kind": "exec", "args": {"argv": ["head", "-c", "300000000", "/dev/zero"],
                                                           "output_limit": 0}})["id"]  # past the default cap
            worst = 0.0
            rss = []
            while c.call("get", {"id": i})["state"] in ("pending", "running"):
                t = time.time()
                c.call("hello")
                worst = max(worst, time.time() - t)
                with open(f"/proc/{self.d.proc.pid}/status") as f:
                    rss += [int(line.split()[1]) for line in f if line.startswith("VmRSS")]
                time.sleep(0.01)
            r = c.call("get", {"id": i})
            self.assertEqual(r["result"]["stdout_bytes"], 300000000)
            self.assertLess(worst, 0.5 * SLOW)
            if not os.environ.get("COROD_WRAPPER"):
                self.assertLess(max(rss), 64 * 1024, "daemon RSS in KiB")
            n = c.call("output", {"id": i, "offset": 299999990})
            self.assertEqual((n["data"], n["eof"]), (b"\0" * 10, True))

    def test_pipelined_output_reads_are_paced(self):
        with self.client() as c:
            r = run(c, ["head", "-c", str(4 << 20), "/dev/zero"])
            ids = {c.send("output", {"id": r["id"], "max": 4 << 20}) for _ in range(24)}
            while ids:  # answers may come in any order
                m = c.read()
                self.assertEqual((m[0], m[2]), (1, None))
                self.assertEqual(len(m[3]["data"]), 4 << 20)
                ids.remove(m[1])


@unittest.skipUnless(os.geteuid() == 0, "needs root: the daemon runs jobs as their owners")
class Ownership(unittest.TestCase):
    """A job submitted by nobody to a root daemon runs as nobody with nobody's groups."""

    def setUp(self):
        self.group = None
        self.tmp = tempfile.mkdtemp(prefix="corod-own-")
        os.chmod(self.tmp, 0o777)
        # A supplementary group for nobody, so "its groups" is more than its primary one.
        if shutil.which("groupadd") and shutil.which("gpasswd"):
            name = f"corodt{os.getpid() % 100000}"
            if subprocess.run(["groupadd", name], capture_output=True).returncode == 0:
                self.group = name
                subprocess.run(["gpasswd", "-a", "nobody", name], capture_output=True, check=True)
        self.d = Daemon()  # after the group exists: lookups are cached
        os.chmod(self.d.dir, 0o755)  # nobody must reach the socket inside it

    def tearDown(self):
        self.assertEqual(self.d.stop(), 0)
        if self.group:
            subprocess.run(["groupdel", self.group], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def as_nobody(self, fn):
        return as_nobody(fn)

    def test_runs_as_nobody_with_its_groups_and_cannot_read_roots(self):
        nb = pwd.getpwnam("nobody")
        want_groups = sorted(set(os.getgrouplist("nobody", nb.pw_gid)))
        if self.group:
            self.assertIn(grp.getgrnam(self.group).gr_gid, want_groups)
        with Client(self.d.sock) as c:
            root_task = run(c, ["echo", "root secret"])
        sock = self.d.sock

        def nobody():
            with Client(sock) as c:
                r = run(c, ["sh", "-c", "id -u; id -g; id -G; echo $HOME; echo $USER"], {"cwd": "/"})
                out = output(c, r["id"]).decode().split("\n")
                errs = []
                for m, p in (("output", {"id": root_task["id"]}), ("get", {"id": root_task["id"]}),
                             ("cancel", {"id": root_task["id"]}),
                             ("signal", {"id": root_task["id"], "signal": "TERM"}),
                             ("edit", {"id": root_task["id"], "name": "mine now"})):
                    try:
                        c.call(m, p)
                        errs.append(None)
                    except RemoteError as e:
                        errs.append(e.code)
                own = c.call("submit", {"kind": "sleep", "args": {"seconds": 1}, "delay": 600})["id"]
                try:  # priorities above 0 are root's, in an edit as in a submit
                    c.call("edit", {"id": own, "priority": 5})
                except RemoteError as e:
                    errs.append(e.code)
                c.call("edit", {"id": own, "priority": -5})
                c.call("cancel", {"id": own})
                return r["owner_uid"], out, errs

        owner, out, errs = self.as_nobody(nobody)
        self.assertEqual(owner, nb.pw_uid)
        self.assertEqual(int(out[0]), nb.pw_uid)
        self.assertEqual(int(out[1]), nb.pw_gid)
        self.assertEqual(sorted(int(g) for g in out[2].split()), want_groups)
        self.assertEqual(out[3], nb.pw_dir)
        self.assertEqual(out[4], "nobody")
        self.assertEqual(errs, ["not_found"] * 5 + ["permission_denied"])
        # Root can read nobody's output; nobody cannot change groups.
        with Client(self.d.sock) as c:
            c.call("output", {"id": root_task["id"] + 1})

        def set_group():
            with Client(sock) as c:
                try:
                    c.call("set_group", {"name": "x", "parallel": 1})
                except RemoteError as e:
                    return e.code

        self.assertEqual(self.as_nobody(set_group), "permission_denied")


class Options(unittest.TestCase):
    def test_parallel_grace_output_limit_options(self):
        d = Daemon("--parallel", "1", "--output-limit", "100", "--grace", "0.2")
        try:
            with Client(d.sock) as c:
                gs = c.call("groups")["groups"]
                self.assertEqual(gs[0]["parallel"], 1)
                c.call("submit", {"kind": "sleep", "group": "fresh", "args": {"seconds": 0}})
                fresh = [g for g in c.call("groups")["groups"] if g["name"] == "fresh"][0]
                self.assertEqual(fresh["parallel"], 1)  # a new group copies the default's
                r = run(c, ["head", "-c", "1000", "/dev/zero"])
                self.assertTrue(r["result"]["output_truncated"])
                self.assertEqual(output(c, r["id"])[:100], b"\0" * 100)
                r = run(c, ["head", "-c", "1000", "/dev/zero"], {"output_limit": 0})  # 0: no cap for this one
                self.assertEqual(len(output(c, r["id"])), 1000)
                i = c.call("submit", {"kind": "exec", "args": {"argv": ["sh", "-c", "trap '' TERM; sleep 30"]}})["id"]
                self.assertTrue(wait_until(lambda: c.call("get", {"id": i})["state"] == "running", 5))
                time.sleep(0.2)
                t = time.time()
                c.call("cancel", {"id": i})
                c.call("wait", {"ids": [i]})
                self.assertLess(time.time() - t, 2 * SLOW)
        finally:
            self.assertEqual(d.stop(), 0)
        d = Daemon("--parallel", "0")
        try:
            with Client(d.sock) as c:
                self.assertEqual(c.call("groups")["groups"][0]["parallel"], 0)
        finally:
            d.stop()
        for bad in (["--grace", "-1"], ["--grace", "x"], ["--output-limit", "-5"], ["--parallel", "70000"],
                    ["--nice", "20"], ["--nice", "-21"], ["--nice", "x"], ["--nice", ""]):
            r = subprocess.run([tp.COROD, "--socket", "/tmp/unused.sock", *bad], capture_output=True, text=True)
            self.assertEqual(r.returncode, 2, bad)
            self.assertIn(bad[0], r.stderr)


def nice_of(pid):
    """The nice value of a process, from /proc (field 19 of stat)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


JOB_NICE = ["sh", "-c", "cut -d' ' -f19 /proc/self/stat"]


class Limits(unittest.TestCase):
    @unittest.skipIf(os.environ.get("COROD_WRAPPER"), "valgrind keeps descriptors of its own and reports other limits")
    def test_jobs_get_back_the_descriptor_limit_corod_started_with(self):
        """corod raises its soft limit on descriptors to the hard one (its connections and
        jobs' pipes); a job gets the soft limit corod was started with."""
        d = Daemon(rlimits={resource.RLIMIT_NOFILE: (200, 4000)})
        try:
            with open(f"/proc/{d.proc.pid}/limits") as f:
                line = [x for x in f if x.startswith("Max open files")][0]
            self.assertEqual(line.split()[3:5], ["4000", "4000"])
            with Client(d.sock) as c:
                i = c.call("submit", {"kind": "exec", "args": {"argv": ["sh", "-c", "ulimit -Sn; ulimit -Hn"]}})["id"]
                self.assertEqual(c.call("wait", {"ids": [i]})["done"][0]["state"], "succeeded")
                self.assertEqual(output(c, i), b"200\n4000\n")
        finally:
            d.stop()


@unittest.skipUnless(os.geteuid() == 0, "needs root: lowers a nice value, starts a daemon as nobody")
class Nice(unittest.TestCase):
    """--nice: the daemon's own weight against its clients; jobs keep the value it started with."""

    def test_daemon_runs_at_its_nice_and_jobs_at_the_starting_one(self):
        start = os.getpriority(os.PRIO_PROCESS, 0)
        for extra, want in (((), -5), (("--nice", "0"), 0), (("--nice", "7"), 7)):
            d = Daemon(*extra)
            try:
                self.assertEqual(nice_of(d.proc.pid), want, extra)
                with Client(d.sock) as c:
                    r = run(c, JOB_NICE)
                    self.assertEqual(r["state"], "succeeded")
                    self.assertEqual(int(output(c, r["id"])), start, extra)
            finally:
                self.assertEqual(d.stop(), 0)

    def test_unprivileged_daemon_keeps_its_nice_and_says_so(self):
        nb = pwd.getpwnam("nobody")
        refused = ("keeping nice value 0: cannot set -5: Permission denied "
                   "(it needs CAP_SYS_NICE or an RLIMIT_NICE of 25 or more)")
        for extra, want_daemon, say in (((), 0, refused), (("--nice", "3"), 3, None)):
            d = Daemon(*extra, user=nb, capture_stderr=True)
            try:
                self.assertEqual(nice_of(d.proc.pid), want_daemon, extra)
                with Client(d.sock) as c:
                    r = run(c, JOB_NICE, {"cwd": "/"})
                    self.assertEqual(r["state"], "succeeded", r)
                    # Raised by the daemon itself, it cannot be lowered again for the job.
                    self.assertEqual(int(output(c, r["id"])), want_daemon, extra)
            finally:
                self.assertEqual(d.stop(), 0, d.stderr)
            if say:
                self.assertIn(say, d.stderr)
            else:
                self.assertNotIn("keeping nice value", d.stderr)

    @unittest.skipUnless(subprocess.run(["/usr/bin/python3", "-c", "import resource; "
                                         "resource.setrlimit(resource.RLIMIT_NICE, (25, 25))"]).returncode == 0,
                         "cannot raise RLIMIT_NICE here (no CAP_SYS_RESOURCE)")
    def test_unprivileged_daemon_lowers_its_nice_as_rlimit_nice_allows(self):
        # A per-user daemon given RLIMIT_NICE (LimitNICE=, see systemd/user/) gets its default
        # weight; its jobs go back to where it started, which needs no privilege.
        d = Daemon(user=pwd.getpwnam("nobody"), capture_stderr=True, rlimits={resource.RLIMIT_NICE: 25})
        try:
            self.assertEqual(nice_of(d.proc.pid), -5)
            with Client(d.sock) as c:
                r = run(c, JOB_NICE, {"cwd": "/"})
                self.assertEqual(r["state"], "succeeded", r)
                self.assertEqual(int(output(c, r["id"])), 0)
        finally:
            self.assertEqual(d.stop(), 0, d.stderr)
        self.assertNotIn("keeping nice value", d.stderr)


class Retention(unittest.TestCase):
    def evict_first(self, d):
        """A job with output, then two more: with --retain 2 the first leaves memory."""
        out = os.path.join(d.dir, "state", "output")
        c = Client(d.sock)
        rec = run(c, ["sh", "-c", "echo out; echo err >&2"])
        first = rec["id"]
        self.assertEqual(sorted(os.listdir(out)), [f"{first}.err", f"{first}.out"])
        for _ in range(2):
            run(c, ["echo", "later"])
        return c, out, rec

    def test_output_files_stay_with_records_in_the_store(self):
        """A record that leaves memory (each uid keeps its newest --retain there) stays in
        the store, read back from there, and so do its output files."""
        d = Daemon("--retain", "2")
        try:
            c, out, rec = self.evict_first(d)
            with c:
                first = rec["id"]
                self.assertEqual(c.call("get", {"id": first}), rec)
                self.assertEqual(output(c, first), b"out\n")
                self.assertEqual(output(c, first, "stderr"), b"err\n")
                self.assertIn(f"{first}.out", os.listdir(out))
        finally:
            self.assertEqual(d.stop(), 0)

    def test_without_a_store_evicted_records_take_their_output_files(self):
        d = Daemon("--retain", "2", "--no-store")
        try:
            c, out, rec = self.evict_first(d)
            with c:
                first = rec["id"]
                self.assertTrue(wait_until(lambda: not any(f.startswith(f"{first}.") for f in os.listdir(out)), 5),
                                os.listdir(out))
                with self.assertRaises(RemoteError) as e:
                    c.call("get", {"id": first})
                self.assertEqual(e.exception.code, "not_found")
        finally:
            self.assertEqual(d.stop(), 0)


class Shutdown(unittest.TestCase):
    def test_sigterm_ends_running_jobs_and_exits_0(self):
        d = Daemon("--grace", "0.5")
        pidfile = os.path.join(d.dir, "job.pid")
        with Client(d.sock) as c:
            i = c.call("submit", {"kind": "exec", "args": {
                "argv": ["sh", "-c", f"trap '' TERM; echo $$ > {pidfile}; while :; do sleep 0.05; done"]}})["id"]
            self.assertTrue(wait_until(lambda: os.path.exists(pidfile) and os.path.getsize(pidfile) > 0, 5 * SLOW))
            with open(pidfile) as f:
                job = int(f.read())
            self.assertEqual(c.call("get", {"id": i})["state"], "running")
        t = time.time()
        d.proc.send_signal(signal.SIGTERM)
        self.assertEqual(d.proc.wait(timeout=30), 0)
        self.assertLess(time.time() - t, 5 * SLOW)
        self.assertFalse(alive(job))
        shutil.rmtree(d.dir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    tp.COROD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
