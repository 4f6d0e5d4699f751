#!/usr/bin/python3
"""coroctl against a real corod: its exit codes (what scripts rely on), --json output,
CORO_SOCKET, and its usage errors.

usage: test_coroctl.py COROD_BINARY COROCTL_BINARY
"""
import fcntl
import json
import struct
import termios
import re
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from test_exec import wait_until  # noqa: E402

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
        return subprocess.run([COROCTL, *args], capture_output=True, text=True, env=env, timeout=20)

    @classmethod
    def run_tty(cls, *args, cols=100, env=None):
        """coroctl with its output on a pseudo-terminal `cols` wide: (exit code, text)."""
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, cols, 0, 0))
        e = dict(os.environ, CORO_SOCKET=cls.sock, TERM="xterm")
        e.pop("NO_COLOR", None)
        e.update(env or {})
        p = subprocess.Popen([COROCTL, *args], stdout=slave, stderr=subprocess.DEVNULL, env=e)
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side closed
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        return p.wait(timeout=20), out.decode().replace("\r\n", "\n")

    def ctl_json(self, *args):
        r = self.run_ctl("--jsonl", *args)
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

    def test_table_on_a_terminal_tsv_when_piped(self):
        g = "tbl"
        self.assertEqual(self.run_ctl("group", "add", g, "--parallel", "1").returncode, 0)
        run = self.run_ctl("add", "--group", g, "--name", "long-one", "--", "sleep", "30").stdout.strip()
        queued = self.run_ctl("add", "--group", g, "--", "echo", "x" * 300).stdout.strip()
        dep = self.run_ctl("add", "--group", g, "--after", run, "--", "true").stdout.strip()
        bad = self.run_ctl("add", "--group", g + "-2", "--wait", "--", "sh", "-c", "exit 7")
        self.assertEqual(bad.returncode, 7)
        killed = self.run_ctl("add", "--group", g + "-2", "--wait", "--", "sh", "-c", "kill -9 $$")
        self.assertEqual(killed.returncode, 128 + 9)
        self.assertTrue(wait_until(lambda: self.ctl_json("status", run)[1][0]["state"] == "running", 10))
        rc, out = self.run_tty("list", "--group", g, cols=100)
        self.assertEqual(rc, 0)
        self.assertIn("\033[36mrunning", out)  # coloured on a terminal
        plain = re.sub(r"\033\[[0-9;]*m", "", out)
        lines = plain.splitlines()
        self.assertTrue(lines[0].startswith(f"{g}  1 slot, 1 running, 2 pending"), lines[0])
        self.assertEqual(lines[1].split(), ["ID", "NAME", "STATE", "EXIT", "STARTED", "TIME", "COMMAND"])
        row = {line.split()[0]: line for line in lines[2:]}
        self.assertRegex(row[run], r"long-one +running +(just now|\d+s ago) +\d\.\ds +sleep 30")
        self.assertIn("group full (1/1)", row[queued])
        self.assertIn(f"after #{run}", row[dep])
        for line in lines:  # the command is cut to the terminal's width
            self.assertLessEqual(len(line), 100, line)
        self.assertTrue(row[queued].endswith("…"))
        # NO_COLOR: no escape sequences; a narrower terminal cuts sooner
        rc, out = self.run_tty("status", "--group", g, cols=70, env={"NO_COLOR": "1"})
        self.assertNotIn("\033", out)
        self.assertTrue(all(len(line) <= 70 for line in out.splitlines()), out)
        self.assertRegex(out, r"group full \(1?…")  # the reason gives way first
        # piped: tab-separated, a line per task, every field there
        r = self.run_ctl("list", "--group", g + "-2")
        rows = [line.split("\t") for line in r.stdout.splitlines()]
        self.assertEqual([len(f) for f in rows], [9, 9])
        self.assertEqual([f[3:5] for f in rows], [["failed", "7"], ["failed", "SIGKILL"]])
        self.assertRegex(rows[0][5], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$")
        self.assertEqual(rows[0][8], "sh -c exit 7")
        r = self.run_ctl("list", "--group", g, "--format", "tsv")
        waits = {f[0]: f[7] for f in (line.split("\t") for line in r.stdout.splitlines())}
        self.assertEqual((waits[run], waits[queued], waits[dep]), ("-", "group full (1/1)", f"after #{run}"))
        # --format table when piped; a group's header says paused
        self.run_ctl("pause", g)
        r = self.run_ctl("list", "--group", g, "--format", "table")
        self.assertIn(f"{g}  1 slot, 1 running, 2 pending, paused", r.stdout)
        self.assertIn("group paused", r.stdout)
        self.assertEqual(self.run_tty("list", "--name", "no-such-name")[1].strip(), "no tasks")
        # the table shows the newest tasks (a history may be long), oldest of them first
        r = self.run_ctl("list", "--group", g, "--format", "table", "--limit", "2")
        shown = [line.split()[0] for line in r.stdout.splitlines() if line.strip()[:1].isdigit()]
        self.assertEqual(shown, [queued, dep])
        self.assertIn("(the newest 2; older ones: --limit N", r.stdout)
        r = self.run_ctl("list", "--group", g, "--format", "table", "--newest")
        self.assertEqual([line.split()[0] for line in r.stdout.splitlines() if line.strip()[:1].isdigit()],
                         [dep, queued, run])
        self.assertNotIn("the newest", r.stdout)
        self.assertEqual(self.run_ctl("list", "--name", "no-such-name").stdout, "")
        # status ID: the detailed view, with the argv as a list and why it waits
        r = self.run_ctl("status", queued)
        self.assertIn("waiting: group paused", r.stdout)
        self.assertIn('argv: ["echo", "' + "x" * 300 + '"]', r.stdout)
        self.assertIn("attempts: 0", r.stdout)
        self.run_ctl("resume", g)
        for t in (run, queued, dep):
            self.run_ctl("cancel", t)

    def test_kill_sends_a_signal_without_ending_the_task(self):
        trap = self.run_ctl("add", "--name", "trapper", "--", "sh", "-c",
                            "trap 'echo got HUP' HUP; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done"
                            ).stdout.strip()
        self.assertTrue(wait_until(lambda: self.ctl_json("status", trap)[1][0]["state"] == "running", 10))
        time.sleep(0.2)  # the shell has set its trap
        r = self.run_ctl("kill", "trapper", "--signal", "hup")  # by name, any case
        self.assertEqual((r.returncode, r.stdout), (0, f"task {trap}: sent SIGHUP\n"))
        self.assertTrue(wait_until(lambda: "got HUP" in self.run_ctl("logs", trap).stdout, 10))
        self.assertEqual(self.ctl_json("status", trap)[1][0]["state"], "running")
        r = self.run_ctl("kill", trap, "-s", "9")
        self.assertEqual(r.returncode, 0)
        r = self.run_ctl("wait", trap)
        self.assertEqual(r.returncode, 1)
        self.assertIn("signal 9", r.stdout)
        # not running any more: refused, and said why
        r = self.run_ctl("kill", trap)
        self.assertEqual(r.returncode, 3)
        self.assertIn(f"invalid_state: task {trap} is not running (it is failed)", r.stderr)
        nap = self.run_ctl("sleep", "0").stdout.strip()
        r = self.run_ctl("kill", nap)
        self.assertEqual(r.returncode, 3)
        self.assertIn("is a sleep task: it runs no process", r.stderr)

    def test_names_as_ids(self):
        first = self.run_ctl("add", "--name", "nightly", "--", "echo", "one").stdout.strip()
        self.assertEqual(self.run_ctl("wait", first).returncode, 0)
        newest = self.run_ctl("add", "--name", "nightly", "--", "echo", "two").stdout.strip()
        self.assertEqual(self.run_ctl("wait", "nightly").returncode, 0)
        self.assertEqual(self.run_ctl("logs", "nightly").stdout, "two\n")  # the newest of that name
        self.assertEqual(self.ctl_json("status", "nightly")[1][0]["id"], int(newest))
        r = self.run_ctl("logs", "no-task-has-this-name")
        self.assertEqual(r.returncode, 3)
        self.assertIn('no task of yours is named "no-task-has-this-name"', r.stderr)
        r = self.run_ctl("cancel", "0")
        self.assertEqual(r.returncode, 2)
        self.assertIn('not a task id or name: "0"', r.stderr)

    def test_group_verbs_cancel_wait_pause_running(self):
        g = "verbs"
        self.assertEqual(self.run_ctl("group", "add", g, "--parallel", "2").returncode, 0)
        ids = [self.run_ctl("add", "--group", g, "--", "sleep", "30").stdout.strip() for _ in range(3)]
        self.assertTrue(wait_until(lambda: [t["state"] for t in self.ctl_json("list", "--group", g)[1]]
                                   == ["running", "running", "pending"], 10))
        pids = [int(p) for p in subprocess.run(["pgrep", "-x", "-f", "sleep 30"], capture_output=True,
                                               text=True).stdout.split()]
        self.assertGreaterEqual(len(pids), 2)

        def states():
            got = []
            for p in pids:
                try:
                    with open(f"/proc/{p}/stat") as f:
                        got.append(f.read().rsplit(")", 1)[1].split()[0])
                except OSError:
                    pass
            return got
        r = self.run_ctl("pause", g, "--running")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_until(lambda: "T" in states(), 10), states())
        rc, out = self.run_tty("list", "--group", g, env={"NO_COLOR": "1"})
        self.assertIn("paused", out.splitlines()[0])
        r = self.run_ctl("resume", "--all", "--running")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_until(lambda: "T" not in states(), 10), states())
        # wait --group times out listing what is still pending (exit 5); cancel --group ends them all
        r = self.run_ctl("wait", "--group", g, "--timeout", "0.1")
        self.assertEqual(r.returncode, 5, r.stderr)
        r = self.run_ctl("cancel", "--group", g)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(r.stdout.splitlines()), sorted(f"task {t}: cancel requested" for t in ids))
        r = self.run_ctl("wait", *ids)
        self.assertEqual(r.returncode, 1)
        self.assertEqual([t["state"] for t in self.ctl_json("list", "--group", g)[1]], ["cancelled"] * 3)
        r = self.run_ctl("wait", "--group", g)
        self.assertEqual((r.returncode, r.stdout), (0, f"nothing pending or running in group {g}\n"))
        r = self.run_ctl("--json", "cancel", "--group", g)
        self.assertEqual(json.loads(r.stdout), [])
        # pause --all pauses every group; unknown groups are refused
        r = self.run_ctl("pause", "--all")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(all(gr["paused"] for gr in self.ctl_json("groups")[1]))
        self.assertEqual(self.run_ctl("resume", "--all").returncode, 0)
        self.assertFalse(any(gr["paused"] for gr in self.ctl_json("groups")[1]))
        self.assertEqual(self.run_ctl("pause", g, "no-such-group").returncode, 3)
        self.run_ctl("resume", g)

    def test_edit_and_priority(self):
        g = "editing"
        self.assertEqual(self.run_ctl("group", "add", g, "--pause").returncode, 0)
        t = self.run_ctl("add", "--group", g, "--name", "draft", "--", "echo", "hi").stdout.strip()
        rc, out = self.ctl_json("edit", "draft", "--name", "final", "--delay", "600")
        self.assertEqual((rc, out[0]["name"], out[0]["waiting"]["reason"]), (0, "final", "delay"))
        self.assertEqual(self.run_ctl("priority", "final", "-3").returncode, 0)
        r = self.run_ctl("edit", t, "--delay", "0", "--group", g + "-open")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"group {g}-open", r.stdout)
        self.assertEqual(self.run_ctl("wait", t).returncode, 0)
        r = self.run_ctl("edit", t, "--priority", "1")
        self.assertEqual(r.returncode, 3)
        self.assertIn("has ended: only a pending task can be edited", r.stderr)
        self.run_ctl("resume", g)

    def test_send_to_a_job_stdin(self):
        t = self.run_ctl("add", "--stdin-pipe", "--", "sh", "-c", "while read l; do echo \"<$l>\"; done").stdout.strip()
        self.assertEqual(self.run_ctl("send", t, "yes").returncode, 0)
        self.assertEqual(self.run_ctl("send", t, "-n", "no newline ").returncode, 0)
        big = "z" * 100000  # more than one send's worth: in pieces
        r = subprocess.run([COROCTL, "send", t, "-", "--eof"], input=f"then\n{big}\n", capture_output=True,
                           text=True, env=dict(os.environ, CORO_SOCKET=self.sock), timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.run_ctl("wait", t).returncode, 0)
        self.assertEqual(self.run_ctl("logs", t).stdout, f"<yes>\n<no newline then>\n<{big}>\n")
        r = self.run_ctl("send", t, "late")
        self.assertEqual(r.returncode, 3)
        self.assertIn("not running", r.stderr)
        plain = self.run_ctl("add", "--", "sleep", "30").stdout.strip()
        self.assertTrue(wait_until(lambda: self.ctl_json("status", plain)[1][0]["state"] == "running", 10))
        r = self.run_ctl("send", plain, "x")
        self.assertEqual(r.returncode, 3)
        self.assertIn("stdin_pipe", r.stderr)
        self.run_ctl("cancel", plain)

    def test_status_id_shows_how_the_task_was_submitted(self):
        t = self.run_ctl("add", "--cwd", "/tmp", "--umask", "027", "--env", "ONLY_THIS=1", "--timeout", "60",
                         "--retries", "2", "--rlimit", "nofile=512", "--", "true").stdout.strip()
        self.run_ctl("wait", t)
        out = self.run_ctl("status", t).stdout
        for line in ("  cwd: /tmp\n", "  umask: 027\n", "  timeout (s): 60", "  retries: 2\n", "  rlimits: {\"nofile\"",
                     "  argv: [\"true\"]\n", "  attempts: 1\n"):
            self.assertIn(line, out)
        self.assertRegex(out, r"  env: \d+ variables:.* ONLY_THIS")
        rc, rec = self.ctl_json("status", t)  # --json: the spec inside the record
        self.assertEqual((rec[0]["spec"]["args"]["cwd"], rec[0]["spec"]["timeout"]), ("/tmp", 60))

    def test_group_rm(self):
        self.assertEqual(self.run_ctl("group", "add", "short-lived", "--pause").returncode, 0)
        t = self.run_ctl("add", "--group", "short-lived", "--", "true").stdout.strip()
        r = self.run_ctl("group", "rm", "short-lived")
        self.assertEqual(r.returncode, 3)
        self.assertIn("has 1 tasks pending and 0 running", r.stderr)
        self.run_ctl("cancel", t)
        self.assertEqual(self.run_ctl("group", "rm", "short-lived").returncode, 0)
        self.assertFalse([g for g in self.ctl_json("groups")[1] if g["name"] == "short-lived" and g["configured"]])
        r = self.run_ctl("group", "rm", "short-lived")
        self.assertEqual(r.returncode, 3)
        self.assertIn("not_found", r.stderr)
        self.assertEqual(self.run_ctl("group", "rm").returncode, 2)

    def test_clean_older_than(self):
        g = "aging"
        old = self.run_ctl("add", "--group", g, "--wait", "--", "true")
        self.assertEqual(old.returncode, 0)
        r = self.run_ctl("clean", "--group", g, "--older-than", "1h")
        self.assertEqual(r.stdout, "removed 0 ended tasks\n")
        time.sleep(1.1)
        r = self.run_ctl("clean", "--group", g, "--older-than", "1s")
        self.assertEqual(r.stdout, "removed 1 ended task\n")

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
        # With no daemon, a mistake on the command line is still reported as a mistake:
        # every command checks its arguments before it connects.
        for args in (["ping", "x"], ["sleep", "abc"], ["gather"], ["cancel", "0"], ["cancel"], ["wait"],
                     ["wait", "--timeout", "x", "1"], ["wait", "1", "--group", "g"], ["status", "1", "2"],
                     ["list", "--limit", "0"], ["list", "--format", "wide"], ["watch", "-5"],
                     ["clean", "--older-than", "3y"], ["groups", "x"], ["add"], ["run"], ["logs"],
                     ["group", "set", "g"], ["pause"], ["resume"], ["pause", "--all", "g"], ["kill"],
                     ["kill", "-s", "NOPE", "1"], ["kill", "1", "--signal", "65"], ["edit", "1"],
                     ["edit", "1", "--priority", "x"], ["edit", "1", "--delay", "-1"], ["priority", "1"],
                     ["send", "1"], ["send"], ["add", "--stdin-pipe", "--stdin-file", "-", "--", "cat"]):
            r = subprocess.run([COROCTL, *args], capture_output=True, text=True, env=env)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertNotIn("cannot connect", r.stderr, args)
        for args in (["sleep", "1"], ["gather", "1"], ["cancel", "1"], ["wait", "1"], ["status", "1"], ["list"],
                     ["watch"], ["groups"], ["add", "--", "true"], ["run", "--", "true"], ["logs", "1"],
                     ["group", "set", "g", "--pause"], ["pause", "g"], ["resume", "g"], ["logs", "a-name"],
                     ["cancel", "--group", "g"], ["pause", "--all"], ["kill", "-s", "HUP", "1"]):
            r = subprocess.run([COROCTL, *args], capture_output=True, text=True, env=env)
            self.assertEqual(r.returncode, 4, (args, r.stderr))
            self.assertIn("cannot connect", r.stderr, args)

    def test_watch_prints_done_tasks(self):
        a = self.run_ctl("sleep", "0.1").stdout.strip()
        b = self.run_ctl("sleep", "0.05").stdout.strip()
        rc, out = self.ctl_json("watch", a, b)  # returns once both have ended
        self.assertEqual(rc, 0)
        self.assertEqual(sorted(o["id"] for o in out), sorted([int(a), int(b)]))
        self.assertTrue(all("sub" in o for o in out))

    def test_watch_of_tasks_already_ended_returns_at_once(self):
        # Their notifications come right after the subscribe's answer, often in the same
        # read: watch once polled the socket for them and hung.
        a = self.run_ctl("sleep", "0").stdout.strip()
        b = self.run_ctl("sleep", "0").stdout.strip()
        self.assertEqual(self.run_ctl("wait", a, b).returncode, 0)
        for _ in range(20):  # the race the hang depended on, twenty times
            t = time.monotonic()
            r = self.run_ctl("--jsonl", "watch", a, b)
            self.assertEqual(r.returncode, 0)
            self.assertEqual(len(r.stdout.splitlines()), 2)
            self.assertLess(time.monotonic() - t, 10)

    def test_list_and_groups(self):
        self.run_ctl("sleep", "0", "--group", "batch")
        time.sleep(0.05)
        rc, out = self.ctl_json("list", "--group", "batch")
        self.assertEqual(rc, 0)
        self.assertTrue(out and all(o["group"] == "batch" for o in out))
        rc, out = self.ctl_json("groups")
        self.assertIn("batch", [g["name"] for g in out])

    def test_list_filters_through_libcorod(self):
        t0 = time.time()
        a = int(self.run_ctl("sleep", "0", "--name", "alpha").stdout)
        b = int(self.run_ctl("add", "--name", "beta", "--", "true").stdout)
        self.run_ctl("wait", str(a), str(b))
        ids = lambda *f: [o["id"] for o in self.ctl_json("list", *f)[1]]  # noqa: E731
        self.assertEqual(ids("--name", "alpha"), [a])
        self.assertEqual(ids("--kind", "exec", "--since", str(t0)), [b])
        self.assertEqual(ids("--since", str(t0), "--newest"), [b, a])
        self.assertEqual(ids("--since", str(t0), "--newest", "--limit", "1"), [b])
        self.assertEqual(ids("--until", str(t0), "--name", "alpha"), [])
        self.assertEqual(ids("--owner", str(os.getuid()), "--name", "beta"), [b])
        r = self.run_ctl("restart", str(b))
        again = int(r.stdout)
        st = self.ctl_json("status", str(again))[1][0]
        self.assertEqual((st["restarted_from"], st["argv"]), (b, ["true"]))
        r = self.run_ctl("restart", "--failed", "--name", "beta")  # beta succeeded: none
        self.assertEqual((r.returncode, r.stdout), (0, ""))
        self.assertEqual(self.run_ctl("restart").returncode, 2)
        self.assertEqual(self.run_ctl("restart", "1", "--failed").returncode, 2)
        r = self.run_ctl("clean", "--name", "alpha")
        self.assertEqual((r.returncode, r.stdout), (0, "removed 1 ended task\n"))
        self.assertEqual(ids("--name", "alpha"), [])
        self.assertEqual(self.run_ctl("clean", "--limit", "3").returncode, 2)
        for bad in (["--since", "yesterday"], ["--owner", "x"]):
            r = self.run_ctl("list", *bad)
            self.assertEqual(r.returncode, 2, bad)

    # ---- jobs ----

    def run_in(self, cwd, *args, env=None, stdin=None):
        e = dict(os.environ, CORO_SOCKET=self.sock, **(env or {}))
        return subprocess.run([COROCTL, *args], capture_output=True, env=e, cwd=cwd, timeout=60, input=stdin)

    def test_add_captures_cwd_and_env_and_wait_exits_with_its_code(self):
        r = self.run_in(self.dir, "add", "--wait", "--", "sh", "-c", 'echo "$PWD $COROCTL_T"; exit 7',
                        env={"COROCTL_T": "inherited"})
        self.assertEqual(r.returncode, 7, r.stderr)
        tid = int(r.stdout.split()[0])
        r = self.run_ctl("logs", str(tid))
        self.assertEqual((r.returncode, r.stdout), (0, f"{self.dir} inherited\n"))
        rc, out = self.ctl_json("status", str(tid))
        self.assertEqual((out[0]["command"], out[0]["error"]["exit_code"]), ('sh -c echo "$PWD $COROCTL_T"; exit 7', 7))
        self.assertIn("duration", out[0]["error"])
        # --env overrides, --default-env gives the daemon's minimal environment.
        r = self.run_in(self.dir, "run", "--env", "COROCTL_T=over", "--", "sh", "-c", "echo $COROCTL_T",
                        env={"COROCTL_T": "inherited"})
        self.assertEqual((r.returncode, r.stdout), (0, b"over\n"))
        r = self.run_in(self.dir, "run", "--default-env", "--cwd", "/", "--", "sh", "-c", "echo ${COROCTL_T:-none} $PWD",
                        env={"COROCTL_T": "inherited"})
        self.assertEqual(r.stdout, b"none /\n")
        # Without --wait, add prints the id and returns at once.
        r = self.run_ctl("add", "--", "sleep", "0.3")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.strip().isdigit())

    def test_run_streams_output_and_exit_codes(self):
        t = time.time()
        p = subprocess.Popen([COROCTL, "run", "--", "sh", "-c", "echo first; sleep 1; echo second >&2; exit 3"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, CORO_SOCKET=self.sock))
        first = p.stdout.readline()
        self.assertEqual(first, b"first\n")
        self.assertLess(time.time() - t, 0.9)  # streamed, not at the end
        out, err = p.communicate(timeout=30)
        self.assertEqual((p.returncode, err), (3, b"second\n"))
        r = self.run_in(self.dir, "run", "--stdin-file", "-", "--", "tr", "a-z", "A-Z", stdin=b"shout\n")
        self.assertEqual((r.returncode, r.stdout), (0, b"SHOUT\n"))
        big = os.path.join(self.dir, "big")
        with open(big, "wb") as f:
            f.truncate(16 << 20)
        r = self.run_ctl("add", "--stdin-file", big, "--", "cat")
        self.assertEqual(r.returncode, 2)
        self.assertIn("at most", r.stderr)
        r = self.run_ctl("run", "--", "no-such-program-coroctl")
        self.assertEqual(r.returncode, 127)
        self.assertIn("spawn_failed", r.stderr)
        r = self.run_ctl("run", "--", "sh", "-c", "kill -TERM $$")
        self.assertEqual(r.returncode, 128 + 15)
        r = self.run_ctl("run", "--retries", "2", "--", "false")
        self.assertEqual(r.returncode, 1)
        rc, out = self.ctl_json("list", "--limit", "100000")
        self.assertEqual([t for t in out if t.get("command") == "false"][-1]["attempts"], 3)
        # Ctrl-C cancels the job.
        p = subprocess.Popen([COROCTL, "run", "--", "sleep", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(os.environ, CORO_SOCKET=self.sock))
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 130)  # as a shell says of what Ctrl-C stopped
        self.assertIn(b"cancelled", err)
        # --json: output chunks, then the record.
        rc, out = self.ctl_json("run", "--", "printf", "x")
        self.assertEqual((rc, out[1], out[2]["state"]), (0, {"stream": "stdout", "offset": 0, "data": "x"}, "succeeded"))

    @unittest.skipUnless(shutil.which("strace"), "strace (scripts/deps test) counts the requests")
    def test_follow_waits_in_the_daemon_not_in_a_polling_loop(self):
        # A job quiet for 1.5 s, then a line on each stream: `logs -f --all` and `run` ask
        # a handful of times (one long-poll per stream, answered as the job writes), not
        # every few milliseconds.
        script = "sleep 1.5; echo out; echo err >&2"
        for args in (["logs", "--follow", "--all", None], ["run", "--", "sh", "-c", script]):
            if args[0] == "logs":
                args[-1] = self.run_ctl("add", "--", "sh", "-c", script).stdout.strip()
            trace = os.path.join(self.dir, "trace")
            t = time.monotonic()
            # (LeakSanitizer cannot run under ptrace: an ASan build's coroctl goes without it here)
            r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=sendto,sendmsg", "-o", trace, COROCTL, *args],
                               capture_output=True, text=True, timeout=30,
                               env=dict(os.environ, CORO_SOCKET=self.sock, ASAN_OPTIONS="detect_leaks=0"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertGreaterEqual(time.monotonic() - t, 1.4)
            self.assertIn("out\n", r.stdout)
            self.assertIn("err\n", r.stdout if args[0] == "logs" else r.stderr)
            with open(trace) as f:
                sends = sum(1 for line in f if "sendto(" in line or "sendmsg(" in line)
            self.assertLessEqual(sends, 12, (args[0], sends))

    def test_logs_follow_and_stderr(self):
        r = self.run_ctl("add", "--", "sh", "-c", "echo o1; echo e1 >&2; sleep 0.5; echo o2")
        tid = r.stdout.strip()
        r = self.run_ctl("logs", "--follow", tid)
        self.assertEqual((r.returncode, r.stdout), (0, "o1\no2\n"))
        r = self.run_ctl("logs", "--stderr", tid)
        self.assertEqual(r.stdout, "e1\n")
        rc, out = self.ctl_json("logs", "--all", tid)
        self.assertEqual(sorted(o["data"] for o in out), ["e1\n", "o1\no2\n"])
        self.assertEqual(self.run_ctl("logs").returncode, 2)
        self.assertEqual(self.run_ctl("logs", "999999").returncode, 3)

    def test_json_anywhere_one_array_and_version(self):
        a = self.run_ctl("sleep", "0", "--name", "arr").stdout.strip()
        self.run_ctl("wait", a)
        for argv in (("list", "--json", "--name", "arr"), ("--json", "list", "--name", "arr")):
            r = self.run_ctl(*argv)
            self.assertEqual(r.returncode, 0, r.stderr)
            tasks = json.loads(r.stdout)  # one document, as json.tool wants
            self.assertEqual([t["id"] for t in tasks], [int(a)])
        r = self.run_ctl("list", "--name", "no-such-name", "--json")
        self.assertEqual(json.loads(r.stdout), [])
        r = self.run_ctl("list", "--jsonl", "--name", "arr")
        self.assertEqual([json.loads(x)["id"] for x in r.stdout.splitlines()], [int(a)])
        for argv in (("--version",), ("list", "--version")):
            r = self.run_ctl(*argv)
            self.assertEqual((r.returncode, r.stdout.split()[0]), (0, "coroctl"))
        # The socket too, after the command (here a wrong one: nothing to connect to).
        r = self.run_ctl("ping", "--socket", "/nonexistent/corod.sock", env_socket=False)
        self.assertEqual(r.returncode, 4)
        self.assertIn("/nonexistent/corod.sock", r.stderr)

    def test_every_command_has_help(self):
        cmds = ["add", "run", "logs", "group", "pause", "resume", "groups", "ping", "sleep", "gather", "cancel",
                "wait", "status", "list", "restart", "clean", "watch", "kill", "edit", "priority", "send"]
        for cmd in cmds:
            r = self.run_ctl(cmd, "--help", env_socket=False)  # no daemon needed
            self.assertEqual(r.returncode, 0, cmd)
            self.assertTrue(r.stdout.startswith(f"usage: coroctl {cmd}"), r.stdout[:80])
        self.assertIn("examples:", self.run_ctl("add", "-h").stdout)
        # After a job's "--", --help is the job's.
        self.assertEqual(self.run_ctl("run", "--", "sh", "-c", "echo $1", "-", "--help").stdout, "--help\n")
        # Every command coroctl --help lists has its own.
        listed = set(re.findall(r"^  ([a-z]+) ", self.run_ctl("--help").stdout.split("OPTS (")[0], re.M))
        self.assertTrue({"add", "restart", "watch"} <= listed, listed)
        self.assertEqual(listed - set(cmds), set())

    def test_wait_says_what_is_still_pending_and_exits_5(self):
        bad = self.run_ctl("add", "--", "false").stdout.strip()
        slow = self.run_ctl("sleep", "30").stdout.strip()
        self.run_ctl("wait", bad)
        r = self.run_ctl("wait", bad, slow, "--timeout", "0.1")
        self.assertEqual(r.returncode, 5, r.stdout + r.stderr)  # not 1: the timeout is not hidden
        self.assertIn(f"task {slow}: still pending", r.stdout)
        r = self.run_ctl("--json", "wait", bad, slow, "--timeout", "0.1")
        self.assertEqual(r.returncode, 5)
        self.assertEqual([(t["id"], t["state"]) for t in json.loads(r.stdout)],
                         [(int(bad), "failed"), (int(slow), "pending")])
        self.run_ctl("cancel", slow)

    def test_logs_of_a_job_that_never_ran(self):
        i = self.run_ctl("add", "--delay", "30", "--", "echo", "hi").stdout.strip()
        self.run_ctl("cancel", i)
        r = self.run_ctl("logs", i)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"task {i} never started: it cancelled", r.stderr)

    def test_job_limits_from_the_command_line(self):
        r = self.run_ctl("run", "--rlimit", "nofile=64:128", "--rlimit", "cpu=infinity", "--umask", "077", "--",
                         "sh", "-c", "ulimit -Sn; ulimit -Hn; ulimit -t; umask")
        self.assertEqual((r.returncode, r.stdout.split()), (0, ["64", "128", "unlimited", "0077"]), r.stderr)
        for bad, want in ((["--rlimit", "files=3"], "--rlimit takes NAME=SOFT[:HARD]"),
                          (["--umask", "999"], "--umask: an octal mask"),
                          (["--memory-max", "12Q"], "--memory-max: not a number of bytes"),
                          (["--cpu-weight", "0"], "--cpu-weight: a whole number from 1 to 10000"),
                          (["--cpu-quota", "0"], "--cpu-quota: a number of CPUs")):
            r = self.run_ctl("add", *bad, "--", "true")
            self.assertEqual(r.returncode, 2, bad)
            self.assertIn(want, r.stderr)
        r = self.run_ctl("add", "--rlimit", "nofile=10:5", "--", "true")
        self.assertEqual(r.returncode, 3)
        self.assertIn("the soft limit is above the hard one", r.stderr)
        self.assertIn("jobs run", self.run_ctl("ping").stdout)  # with cgroups or without, and why

    def test_group_pause_resume(self):
        # An unknown group is refused by pause, resume and group set; group add makes it.
        for argv in (("pause", "ctlg"), ("resume", "ctlg"), ("group", "set", "ctlg", "--parallel", "1")):
            r = self.run_ctl(*argv)
            self.assertEqual(r.returncode, 3, argv)
            self.assertIn('not_found: no group "ctlg"', r.stderr)
        rc, gs = self.ctl_json("groups")
        self.assertNotIn("ctlg", [g["name"] for g in gs])
        self.assertEqual(self.run_ctl("group", "add", "ctlg", "--parallel", "1", "--pause").returncode, 0)
        lo = self.run_ctl("add", "--group", "ctlg", "--", "true").stdout.strip()
        hi = self.run_ctl("add", "--group", "ctlg", "--priority", "5", "--", "true").stdout.strip()
        time.sleep(0.3)
        rc, out = self.ctl_json("status", lo)
        self.assertEqual(out[0]["state"], "pending")
        rc, gs = self.ctl_json("groups")
        g = [g for g in gs if g["name"] == "ctlg"][0]
        self.assertEqual((g["parallel"], g["paused"], g["pending"]), (1, True, 2))
        self.assertEqual(self.run_ctl("resume", "ctlg").returncode, 0)
        rc, out = self.ctl_json("wait", lo, hi)
        self.assertEqual(rc, 0)
        byid = {t["id"]: t for t in out}
        self.assertLess(byid[int(hi)]["started_at"], byid[int(lo)]["started_at"])
        self.assertEqual(self.run_ctl("pause", "ctlg").returncode, 0)
        rc, gs = self.ctl_json("groups")
        self.assertTrue([g for g in gs if g["name"] == "ctlg"][0]["paused"])
        self.run_ctl("resume", "ctlg")
        for bad in (["group"], ["group", "set", "x"], ["group", "set", "x", "--parallel", "-1"], ["pause"],
                    ["add"], ["add", "--cwd", "rel", "--", "true"], ["add", "--env", "NOEQ", "--", "true"],
                    ["run", "--output-limit", "0", "--", "true"], ["add", "--retries", "x", "--", "true"]):
            self.assertEqual(self.run_ctl(*bad).returncode, 2, bad)
        self.assertEqual(self.run_ctl("group", "set", "bad name!", "--parallel", "1").returncode, 3)
        many = [a for i in range(4097) for a in ("--env", f"V{i}=1")]  # one past coroctl's 4096
        r = self.run_ctl("add", *many, "--", "true")
        self.assertEqual(r.returncode, 2)
        self.assertIn("4096", r.stderr)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    COROD, COROCTL = os.path.abspath(sys.argv.pop(1)), os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
