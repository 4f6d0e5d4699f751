#!/usr/bin/python3
"""A job's limits: rlimits and umask (everywhere), and its own cgroup — every process of
it killed with it, setsid() or not, and what a crashed daemon left behind killed at the
next start — with memory, tasks and CPU limited where the daemon has those controllers.
Where cgroup2 cannot be written here, or a controller is missing (this VM mounts a
hybrid hierarchy whose cgroup2 part has none), those tests are skipped saying why; the
rlimit tests still run. Nothing here asserts a speed.

usage: test_limits.py COROD_BINARY
"""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_protocol as tp  # noqa: E402
from test_protocol import Client, Daemon, RemoteError, wait_for  # noqa: E402

SLOW = float(os.environ.get("COROD_SLOW", "1"))


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def job(c, argv, **args):
    i = c.call("submit", {"kind": "exec", "args": {"argv": argv, **args}})["id"]
    return i, c.call("wait", {"ids": [i], "timeout": 60 * SLOW})["done"][0]


def out(c, i):
    return c.call("output", {"id": i})["data"].decode()


UNDER_VALGRIND = "valgrind" in os.environ.get("COROD_WRAPPER", "")


class Rlimits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()

    def setUp(self):
        if UNDER_VALGRIND and self._testMethodName != "test_bad_limits_are_refused":
            self.skipTest("valgrind keeps descriptors of its own above the limits it reports")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def test_a_jobs_own_rlimits_and_umask(self):
        with Client(self.d.sock) as c:
            i, r = job(c, ["sh", "-c", "ulimit -Sn; ulimit -Hn; ulimit -c; ulimit -t; ulimit -v; umask"],
                       rlimits={"nofile": [100, 200], "core": 0, "cpu": [30, "infinity"], "as": 1 << 30},
                       umask=0o027)
            self.assertEqual(r["state"], "succeeded", r)
            self.assertEqual(out(c, i).split(), ["100", "200", "0", "30", str((1 << 30) // 1024), "0027"])

    def test_jobs_do_not_inherit_the_daemons(self):
        hard = subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True).stdout.strip()
        with Client(self.d.sock) as c:
            i, r = job(c, ["sh", "-c", "ulimit -Sn; ulimit -Hn; umask"])
            soft = min(1024, int(hard)) if hard != "unlimited" else 1024
            self.assertEqual(out(c, i).split(), [str(soft), hard, "0022"])

    def test_bad_limits_are_refused(self):
        bad = [
            ({"rlimits": {"nofile": [200, 100]}}, "args.rlimits.nofile: the soft limit is above the hard one"),
            ({"rlimits": {"files": 10}}, "args.rlimits: the limits are nofile, core, cpu (seconds) and as"),
            ({"rlimits": {"core": -1}}, "args.rlimits.core must be a count, [soft, hard] or \"infinity\""),
            ({"rlimits": {"core": [1, 2, 3]}}, "args.rlimits.core must be [soft, hard]"),
            ({"rlimits": 5}, "args.rlimits must be a map"),
            ({"umask": 0o1000}, "args.umask"),
            ({"cpu_quota": 0}, "args.cpu_quota must be a number of CPUs from 0.01 to 4096"),
            ({"cpu_weight": 0}, "args.cpu_weight"),
            ({"memory_max": 100}, "args.memory_max"),
        ]
        with Client(self.d.sock) as c:
            for args, want in bad:
                with self.assertRaises(RemoteError) as e:
                    c.call("submit", {"kind": "exec", "args": {"argv": ["true"], **args}})
                self.assertEqual(e.exception.code, "bad_request", args)
                self.assertIn(want, str(e.exception), args)

    def test_a_limit_the_kernel_refuses_fails_the_start_and_says_which(self):
        with open("/proc/sys/fs/nr_open") as f:
            nr_open = int(f.read())
        with Client(self.d.sock) as c:
            _, r = job(c, ["true"], rlimits={"nofile": [10, nr_open + 1]})
            self.assertEqual(r["state"], "failed")
            self.assertEqual(r["error"]["code"], "spawn_failed")
            self.assertIn(f"cannot set its nofile limit to 10:{nr_open + 1}", r["error"]["message"])


class Cgroups(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        with Client(cls.d.sock) as c:
            cls.cg = c.call("hello")["cgroups"]

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def need_cgroups(self):
        if self.cg["unavailable"] is not None:
            self.skipTest("no cgroups for jobs here: " + self.cg["unavailable"])

    def need(self, controller):
        self.need_cgroups()
        if controller not in self.cg["controllers"]:
            self.skipTest(f"the {controller} controller is not available to jobs here "
                          f"(they have {self.cg['controllers'] or 'none'})")

    def test_each_job_has_its_own_and_what_escaped_goes_with_it(self):
        self.need_cgroups()
        with tempfile.TemporaryDirectory() as tmp, Client(self.d.sock) as c:
            pidfile = os.path.join(tmp, "escaped")
            # The job ends once its escapee has said who it is: no race with a slow start.
            i, r = job(c, ["sh", "-c", f"grep ^0:: /proc/self/cgroup; setsid sh -c 'echo $$ > {pidfile}.new; "
                                       f"mv {pidfile}.new {pidfile}; exec sleep 300' & "
                                       f"while [ ! -s {pidfile} ]; do sleep 0.01; done"])
            self.assertEqual(r["state"], "succeeded", r)
            self.assertTrue(out(c, i).strip().endswith(f"/job-{i}"), out(c, i))
            self.assertIn("cpu_time", r["result"])
            with open(pidfile) as f:
                escaped = int(f.read())
            self.assertFalse(alive(escaped), "a process that left the job's session outlived it")

    def test_a_cancel_kills_every_process(self):
        self.need_cgroups()
        with tempfile.TemporaryDirectory() as tmp, Client(self.d.sock) as c:
            pidfile = os.path.join(tmp, "escaped")
            i = c.call("submit", {"kind": "exec", "args": {"argv": ["sh", "-c", (
                f"setsid sh -c 'trap \"\" TERM; echo $$ > {pidfile}.new; mv {pidfile}.new {pidfile}; "
                "exec sleep 300' & sleep 300")], "grace": 0.2}})["id"]
            wait_for(lambda: os.path.exists(pidfile) and os.path.getsize(pidfile) > 0, 10 * SLOW, "the escapee")
            with open(pidfile) as f:
                escaped = int(f.read())
            c.call("cancel", {"id": i})
            r = c.call("wait", {"ids": [i], "timeout": 30 * SLOW})["done"][0]
            self.assertEqual(r["state"], "cancelled")
            wait_for(lambda: not alive(escaped), 10 * SLOW, "the escapee to be killed")

    def test_memory_over_its_limit_ends_oom(self):
        self.need("memory")
        with Client(self.d.sock) as c:
            _, r = job(c, ["/usr/bin/python3", "-c", "b = bytearray(200 << 20); print(len(b))"],
                       memory_max=50 << 20)
            self.assertEqual(r["state"], "failed", r)
            self.assertEqual(r["error"]["code"], "oom", r)

    def test_a_fork_bomb_stops_at_pids_max(self):
        self.need("pids")
        bomb = ("import os, signal, time\n"
                "kids = []\n"
                "for k in range(50):\n"
                "    try:\n"
                "        pid = os.fork()\n"
                "    except OSError:\n"
                "        break\n"
                "    if pid == 0:\n"
                "        time.sleep(30)\n"
                "        os._exit(0)\n"
                "    kids.append(pid)\n"
                "print(len(kids))\n"
                "for p in kids:\n"
                "    os.kill(p, signal.SIGKILL)\n")
        with Client(self.d.sock) as c:
            i, r = job(c, ["/usr/bin/python3", "-c", bomb], pids_max=10)
            self.assertEqual(r["state"], "succeeded", r)
            self.assertLess(int(out(c, i)), 10)  # itself and at most 9 children

    def test_limits_the_controllers_lack_are_refused(self):
        self.need_cgroups()
        missing = {"memory": {"memory_max": 1 << 30}, "pids": {"pids_max": 10}, "cpu": {"cpu_weight": 50}}
        with Client(self.d.sock) as c:
            for ctl, args in missing.items():
                if ctl in self.cg["controllers"]:
                    continue
                with self.assertRaises(RemoteError) as e:
                    c.call("submit", {"kind": "exec", "args": {"argv": ["true"], **args}})
                self.assertEqual(e.exception.code, "bad_request")
                self.assertIn(f"the {ctl} controller", str(e.exception))

    def test_what_a_crashed_daemon_left_is_killed_at_start(self):
        self.need_cgroups()
        with tempfile.TemporaryDirectory() as tmp:
            d = Daemon()
            pidfile = os.path.join(tmp, "escaped")
            with Client(d.sock) as c:
                i = c.call("submit", {"kind": "exec", "args": {"argv": ["sh", "-c", (
                    f"setsid sh -c 'echo $$ > {pidfile}.new; mv {pidfile}.new {pidfile}; exec sleep 300' & "
                    "sleep 300")]}})["id"]
                wait_for(lambda: os.path.exists(pidfile) and os.path.getsize(pidfile) > 0, 10 * SLOW, "the escapee")
            with open(pidfile) as f:
                escaped = int(f.read())
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait(timeout=30)
            time.sleep(0.2)
            self.assertTrue(alive(escaped), "it is the next start's to kill")
            d2 = Daemon(dir=d.dir)
            try:
                wait_for(lambda: not alive(escaped), 10 * SLOW, "the escapee of a crashed daemon to be killed")
                with Client(d2.sock) as c:
                    self.assertEqual(c.call("get", {"id": i})["error"]["code"], "interrupted")
            finally:
                d2.stop()

    def test_without_cgroups_the_daemon_says_why(self):
        d = Daemon("--no-cgroups")
        try:
            with Client(d.sock) as c:
                self.assertEqual(c.call("hello")["cgroups"], {"controllers": [], "unavailable": "--no-cgroups"})
                with self.assertRaises(RemoteError) as e:
                    c.call("submit", {"kind": "exec", "args": {"argv": ["true"], "pids_max": 5}})
                self.assertIn("this corod has no cgroups: --no-cgroups", str(e.exception))
        finally:
            d.stop()


if __name__ == "__main__":
    tp.COROD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
