#!/usr/bin/python3
"""coroctl against a real corod: its exit codes (what scripts rely on), --json output,
CORO_SOCKET, and its usage errors.

usage: test_coroctl.py COROD_BINARY COROCTL_BINARY
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

COROD = COROCTL = None


class Coroctl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="coroctl-")
        cls.sock = os.path.join(cls.dir, "corod.sock")
        cls.daemon = subprocess.Popen([COROD, "--socket", cls.sock, "--state-dir", os.path.join(cls.dir, "st")],
                                      stderr=subprocess.DEVNULL)
        for _ in range(500):
            if cls.run_ctl("ping").returncode == 0:
                return
            time.sleep(0.01)
        raise RuntimeError("corod did not start")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.send_signal(signal.SIGTERM)
        assert cls.daemon.wait(timeout=10) == 0
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def run_ctl(cls, *args, env_socket=True):
        env = dict(os.environ)
        if env_socket:
            env["CORO_SOCKET"] = cls.sock
        else:
            env.pop("CORO_SOCKET", None)
        return subprocess.run([COROCTL, *args], capture_output=True, text=True, env=env, timeout=60)

    def ctl_json(self, *args):
        r = self.run_ctl("--json", *args)
        return r.returncode, [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def test_submit_wait_status(self):
        rc, out = self.ctl_json("sleep", "0.05", "--name", "nap")
        self.assertEqual(rc, 0)
        tid = out[0]["id"]
        rc, out = self.ctl_json("wait", str(tid))
        self.assertEqual(rc, 0)
        self.assertEqual((out[0]["id"], out[0]["state"], out[0]["name"]), (tid, "succeeded", "nap"))
        rc, out = self.ctl_json("status", str(tid))
        self.assertEqual((rc, out[0]["kind"]), (0, "sleep"))
        human = self.run_ctl("status", str(tid))
        self.assertIn(f"task {tid} (nap)", human.stdout)

    def test_wait_fails_when_the_task_failed(self):
        r = self.run_ctl("sleep", "5", "--timeout", "0.05", "--wait")
        self.assertEqual(r.returncode, 1)
        self.assertIn("timeout", r.stdout)
        a = self.run_ctl("sleep", "10").stdout.strip()
        b = self.run_ctl("sleep", "0", "--after", a).stdout.strip()
        self.assertEqual(self.run_ctl("cancel", a).returncode, 0)
        r = self.run_ctl("wait", b)
        self.assertEqual(r.returncode, 1)
        self.assertIn("dependency_failed", r.stdout)

    def test_gather_and_wait_timeout(self):
        a = self.run_ctl("sleep", "0.02").stdout.strip()
        b = self.run_ctl("sleep", "0.01").stdout.strip()
        rc, out = self.ctl_json("gather", a, b, "--wait")
        self.assertEqual(rc, 0)
        self.assertEqual(out[-1]["result"], [None, None])
        slow = self.run_ctl("sleep", "5").stdout.strip()
        r = self.run_ctl("wait", "--timeout", "0.05", slow)
        self.assertEqual(r.returncode, 5)  # timed out, task still pending
        self.run_ctl("cancel", slow)

    def test_daemon_refusals_and_usage(self):
        r = self.run_ctl("status", "999999")
        self.assertEqual(r.returncode, 3)
        self.assertIn("not_found", r.stderr)
        for args in (["sleep", "abc"], ["sleep", "-1"], ["wait"], ["bogus"], ["sleep", "1", "--nope"],
                     ["status", "0"], ["list", "--limit", "0"]):
            r = self.run_ctl(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("coroctl", r.stderr, args)
        self.assertEqual(self.run_ctl("--help").returncode, 0)

    def test_no_daemon(self):
        env = dict(os.environ, CORO_SOCKET=os.path.join(self.dir, "nothing.sock"))
        r = subprocess.run([COROCTL, "ping"], capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 4)
        self.assertIn("cannot connect", r.stderr)
        r = self.run_ctl("--socket", self.sock, "ping", env_socket=False)
        self.assertEqual(r.returncode, 0)

    def test_watch_prints_done_tasks(self):
        a = self.run_ctl("sleep", "0.1").stdout.strip()
        b = self.run_ctl("sleep", "0.05").stdout.strip()
        rc, out = self.ctl_json("watch", a, b)  # returns once both have ended
        self.assertEqual(rc, 0)
        self.assertEqual(sorted(o["id"] for o in out), sorted([int(a), int(b)]))
        self.assertTrue(all("sub" in o for o in out))

    def test_list_and_groups(self):
        self.run_ctl("sleep", "0", "--group", "batch")
        time.sleep(0.05)
        rc, out = self.ctl_json("list", "--group", "batch")
        self.assertEqual(rc, 0)
        self.assertTrue(out and all(o["group"] == "batch" for o in out))
        rc, out = self.ctl_json("groups")
        self.assertIn("batch", [g["name"] for g in out])


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    COROD, COROCTL = sys.argv.pop(1), sys.argv.pop(1)
    unittest.main(verbosity=2)
