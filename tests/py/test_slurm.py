#!/usr/bin/python3
"""corod's Slurm groups against a real one-node Slurm cluster.

tests/slurm/cluster.sh brings up munged, slurmctld and slurmd under a private temporary
directory (loopback only) and tears them down at the end. Needs root (jobs of two users,
and slurmd launching them) and Debian's slurmctld, slurmd, slurm-client and munge:
without them it exits 77 (skipped), saying why.

usage: test_slurm.py COROD_BINARY [COROCTL_BINARY]
"""
import os
import pwd
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_protocol as tp  # noqa: E402
from test_protocol import Client, Daemon, RemoteError, as_nobody, wait_for  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER = os.path.join(HERE, "..", "slurm", "cluster.sh")
CONF = None
HOST = None
COROCTL = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 and not sys.argv[2].startswith("-") else None


def squeue(job):
    """Slurm's state of a job, "" once it is gone from the queue (or ended)."""
    r = subprocess.run(["squeue", "-h", "-j", str(job), "-o", "%T"], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


def node_state():
    return subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True).stdout.strip()


class Slurm(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(capture_stderr=True)
        os.chmod(cls.d.dir, 0o711)  # nobody reaches the socket (0666, as root's)
        cls.c = Client(cls.d.sock)
        cls.c.s.settimeout(120)
        cls.c.call("set_group", {"name": "hpc", "executor": "slurm", "parallel": 0, "slurm": {"conf": CONF}})
        cls.c.call("set_group", {"name": "low", "slurm": {"conf": CONF, "args": ["--exclusive"]}})
        cls.c.call("set_group", {"name": "urgent", "slurm": {"conf": CONF, "partition": "urgent",
                                                               "args": ["--exclusive"]}})
        cls.c.call("set_group", {"name": "here", "parallel": 4})

    @classmethod
    def tearDownClass(cls):
        cls.c.s.close()
        rc = cls.d.stop()
        if rc != 0:
            print(cls.d.stderr[-4000:], file=sys.stderr)
        assert rc == 0, rc

    def run_job(self, argv, group="hpc", **kw):
        tid = self.c.call("submit", {"kind": "exec", "group": group, "args": {"argv": argv}, **kw})["id"]
        self.c.call("wait", {"ids": [tid], "timeout": 60})
        return self.c.call("get", {"id": tid})

    def ready(self, tid):
        """Until the job has said "ready" (its traps are set: a signal before would kill it)."""
        wait_for(lambda: b"ready" in self.c.call("output", {"id": tid, "wait": 5})["data"], 30, f"task {tid} ready")

    def running_on_slurm(self, tid):
        return wait_for(lambda: self.c.call("get", {"id": tid}).get("slurm"), 20, f"task {tid} on Slurm")

    def test_executors_and_groups(self):
        ex = self.c.call("hello")["executors"]
        self.assertEqual(ex["slurm"], {"available": True})
        self.assertEqual(ex["local"], {"available": True})
        groups = {g["name"]: g for g in self.c.call("groups")["groups"]}
        self.assertEqual(groups["hpc"]["executor"], "slurm")
        self.assertEqual(groups["hpc"]["slurm"], {"conf": CONF})
        self.assertEqual(groups["urgent"]["slurm"]["partition"], "urgent")
        self.assertEqual(groups["here"]["executor"], "local")
        self.assertNotIn("slurm", groups["here"])

    def test_bad_settings(self):
        bad = [
            ({"args": ["--uid=0"]}, "not an srun option a group may add"),
            ({"args": ["--output=/tmp/x"]}, "not an srun option"),
            ({"args": ["-n2"]}, "not an srun option"),
            ({"partition": "--uid=0"}, "slurm.partition"),
            ({"cpus": 0}, "slurm.cpus"),
            ({"memory": 5}, "slurm.memory"),
            ({"time": -1}, "slurm.time"),
            ({"conf": "relative"}, "absolute path"),
            ({"colour": "red"}, "unknown Slurm setting"),
            ({"args": ["--gres=gpu:1"] * 33}, "at most 32"),
        ]
        for slurm, why in bad:
            with self.assertRaises(RemoteError, msg=slurm) as e:
                self.c.call("set_group", {"name": "bad", "slurm": slurm})
            self.assertEqual(e.exception.code, "bad_request")
            self.assertIn(why, e.exception.message)
        with self.assertRaises(RemoteError) as e:
            self.c.call("set_group", {"name": "bad", "executor": "kubernetes"})
        self.assertIn("local", e.exception.message)
        with self.assertRaises(RemoteError) as e:
            self.c.call("set_group", {"name": "bad", "executor": "local", "slurm": {}})
        self.assertIn("executor is slurm", e.exception.message)
        self.assertNotIn("bad", [g["name"] for g in self.c.call("groups")["groups"]])
        # Per-job settings: checked, and only for a Slurm group.
        for args, why in (({"cpus": 1.5}, "slurm.cpus"), ({"time": 0}, "slurm.time"), ({"gpus": 1}, "cpus, memory"),
                          ({"cpus": "two"}, "are numbers")):
            with self.assertRaises(RemoteError) as e:
                self.c.call("submit", {"kind": "exec", "group": "hpc", "args": {"argv": ["true"], "slurm": args}})
            self.assertIn(why, e.exception.message)
        with self.assertRaises(RemoteError) as e:
            self.c.call("submit", {"kind": "exec", "group": "here", "args": {"argv": ["true"], "slurm": {"cpus": 2}}})
        self.assertIn("executor is slurm", e.exception.message)
        # Only root changes a group's executor.
        sock = self.d.sock
        got = as_nobody(lambda: _try(sock, "set_group", {"name": "hpc", "executor": "local"}))
        self.assertEqual(got, "permission_denied")
        self.assertEqual({g["name"]: g for g in self.c.call("groups")["groups"]}["hpc"]["executor"], "slurm")

    def test_two_users_run_as_themselves(self):
        nobody = pwd.getpwnam("nobody")
        sock = self.d.sock
        theirs = as_nobody(lambda: _submit(sock, "hpc", ["sh", "-c", "id -u; id -g"], cwd="/tmp"))
        mine = self.run_job(["sh", "-c", "id -u; id -g"])
        self.assertEqual(mine["state"], "succeeded", mine)
        self.assertEqual(self.c.call("output", {"id": mine["id"]})["data"], b"0\n0\n")
        self.c.call("wait", {"ids": [theirs], "timeout": 60})
        rec = self.c.call("get", {"id": theirs})
        self.assertEqual(rec["state"], "succeeded", rec)
        self.assertEqual(rec["owner_uid"], nobody.pw_uid)
        out = self.c.call("output", {"id": theirs})["data"].decode().split()
        self.assertEqual(out, [str(nobody.pw_uid), str(nobody.pw_gid)])
        for r in (mine, rec):
            self.assertGreater(r["slurm"]["job"], 0)
            self.assertEqual(r["slurm"]["nodes"], HOST)
            self.assertEqual(r["result"]["slurm_job"], r["slurm"]["job"])
        self.assertNotEqual(mine["slurm"]["job"], rec["slurm"]["job"])
        # Nobody may not see or cancel root's task.
        got = as_nobody(lambda: _try(sock, "cancel", {"id": mine["id"]}))
        self.assertEqual(got, "not_found")

    def test_output_streams_while_it_runs(self):
        tid = self.c.call("submit", {"kind": "exec", "group": "hpc", "args": {
            "argv": ["sh", "-c", "echo first; sleep 2; echo second"]}})["id"]
        t0 = time.time()
        got = self.c.call("output", {"id": tid, "wait": 20})
        self.assertEqual(got["data"], b"first\n")
        self.assertLess(time.time() - t0, 1.9, "the first line came only at the end")
        self.assertNotIn(self.c.call("get", {"id": tid})["state"], ("succeeded", "failed"))
        self.c.call("wait", {"ids": [tid], "timeout": 30})
        self.assertEqual(self.c.call("output", {"id": tid})["data"], b"first\nsecond\n")

    def test_exit_status_and_signal(self):
        r = self.run_job(["sh", "-c", "echo oops >&2; exit 3"])
        self.assertEqual((r["state"], r["error"]["code"], r["error"]["exit_code"]), ("failed", "exit_status", 3))
        self.assertIn(b"oops\n", self.c.call("output", {"id": r["id"], "stream": "stderr"})["data"])
        r = self.run_job(["sh", "-c", "kill -9 $$"])
        self.assertEqual((r["error"]["code"], r["error"]["signal"]), ("signal", 9), r)
        # A program that exits 137 itself is not "killed by 9".
        r = self.run_job(["sh", "-c", "exit 137"])
        self.assertEqual((r["error"]["code"], r["error"]["exit_code"]), ("exit_status", 137), r)
        # Success with words on stderr stays a success.
        r = self.run_job(["sh", "-c", "echo note >&2"])
        self.assertEqual(r["state"], "succeeded", r)

    def test_srun_refuses(self):
        # A partition the cluster does not have: srun fails before Slurm runs anything.
        self.c.call("set_group", {"name": "nowhere", "slurm": {"conf": CONF, "partition": "nosuch"}})
        r = self.run_job(["true"], group="nowhere")
        self.assertEqual(r["error"]["code"], "spawn_failed", r)
        self.assertIn("before Slurm ran the job", r["error"]["message"])
        err = self.c.call("output", {"id": r["id"], "stream": "stderr"})["data"]
        self.assertIn(b"partition", err.lower())

    def test_node_failure(self):
        tid = self.c.call("submit", {"kind": "exec", "group": "hpc", "args": {"argv": ["sleep", "60"]}})["id"]
        self.running_on_slurm(tid)
        subprocess.run(["scontrol", "update", f"nodename={HOST}", "state=down", "reason=corod-test"], check=True)
        try:
            self.c.call("wait", {"ids": [tid], "timeout": 30})
            r = self.c.call("get", {"id": tid})
            self.assertEqual(r["error"]["code"], "node_failure", r)
            self.assertIn("NODE_FAIL", r["error"]["message"])
        finally:
            subprocess.run(["scontrol", "update", f"nodename={HOST}", "state=resume"], capture_output=True)
            wait_for(lambda: node_state() == "idle", 20, "the node back")

    def test_preemption(self):
        low = self.c.call("submit", {"kind": "exec", "group": "low", "args": {"argv": ["sleep", "60"]}})["id"]
        self.running_on_slurm(low)
        high = self.run_job(["echo", "urgent"], group="urgent")
        self.assertEqual(high["state"], "succeeded", high)
        self.c.call("wait", {"ids": [low], "timeout": 30})
        r = self.c.call("get", {"id": low})
        self.assertEqual(r["error"]["code"], "preempted", r)

    def test_cancel_running_and_queued(self):
        run = self.c.call("submit", {"kind": "exec", "group": "low", "args": {
            "argv": ["sh", "-c", "trap 'echo got TERM; exit 5' TERM; echo ready; sleep 60 & wait"]}})["id"]
        job = self.running_on_slurm(run)["job"]
        self.ready(run)
        # The node is taken whole: the next one waits in Slurm's queue, not corod's.
        queued = self.c.call("submit", {"kind": "exec", "group": "low", "args": {"argv": ["true"]}})["id"]
        wait_for(lambda: self.c.call("get", {"id": queued})["state"] == "running", 10, "srun of the queued one")
        time.sleep(0.3)
        self.assertNotIn("slurm", self.c.call("get", {"id": queued}), "it should still wait in Slurm's queue")
        with self.assertRaises(RemoteError) as e:
            self.c.call("signal", {"id": queued, "signal": "USR1"})
        self.assertIn("waits for Slurm to start it", e.exception.message)
        t0 = time.time()
        self.c.call("cancel", {"id": queued})
        self.c.call("cancel", {"id": run})
        self.c.call("wait", {"ids": [run, queued], "timeout": 60})
        self.assertLess(time.time() - t0, 15)
        for tid in (run, queued):
            self.assertEqual(self.c.call("get", {"id": tid})["state"], "cancelled")
        # The program got SIGTERM (its trap ran), not srun's SIGKILL; and ran once, not once
        # per CPU of its --exclusive allocation.
        self.assertEqual(self.c.call("output", {"id": run})["data"].count(b"got TERM"), 1)
        wait_for(lambda: squeue(job) == "", 20, "the job gone from squeue")

    def test_timeout_and_retries(self):
        r = self.run_job(["sleep", "60"], timeout=1.5)
        self.assertEqual(r["error"]["code"], "timeout", r)
        self.assertLess(r["finished_at"] - r["started_at"], 15)
        wait_for(lambda: squeue(r["slurm"]["job"]) == "", 20, "the timed-out job gone")
        tid = self.c.call("submit", {"kind": "exec", "group": "hpc", "retries": 2, "retry_delay": 0.1,
                                     "args": {"argv": ["sh", "-c", "echo $SLURM_JOB_ID; exit 1"]}})["id"]
        self.c.call("wait", {"ids": [tid], "timeout": 60})
        r = self.c.call("get", {"id": tid})
        self.assertEqual((r["state"], r["attempts"]), ("failed", 3), r)
        jobs = self.c.call("output", {"id": tid})["data"].split()
        self.assertEqual(len(set(jobs)), 3, jobs)  # one Slurm job per attempt

    def test_per_job_settings(self):
        r = self.run_job(["sh", "-c", "echo $SLURM_CPUS_PER_TASK"], group="hpc")
        tid = self.c.call("submit", {"kind": "exec", "group": "hpc", "args": {
            "argv": ["sh", "-c", "echo $SLURM_CPUS_PER_TASK"],
            "slurm": {"cpus": 2, "memory": (64 << 20) + 1, "time": 90.5}}})["id"]
        self.c.call("wait", {"ids": [tid], "timeout": 60})
        rec = self.c.call("get", {"id": tid})
        self.assertEqual(rec["state"], "succeeded", (rec, self.c.call("output", {"id": tid, "stream": "stderr"})))
        self.assertEqual(self.c.call("output", {"id": tid})["data"], b"2\n")
        self.assertEqual(self.c.call("output", {"id": r["id"]})["data"], b"\n")  # the cluster's default
        # What Slurm was asked for: memory rounded up to MiB, time up to a minute.
        job = subprocess.run(["scontrol", "-o", "show", "job", str(rec["slurm"]["job"])], capture_output=True,
                             text=True).stdout
        self.assertIn("MinMemoryNode=65M", job)
        self.assertIn("TimeLimit=00:02:00", job)

    def test_after_and_gather_across_executors(self):
        a = self.c.call("submit", {"kind": "exec", "group": "here", "args": {"argv": ["echo", "local"]}})["id"]
        b = self.c.call("submit", {"kind": "exec", "group": "hpc", "after": [a],
                                   "args": {"argv": ["echo", "cluster"]}})["id"]
        c = self.c.call("submit", {"kind": "exec", "group": "here", "after": [b], "args": {"argv": ["true"]}})["id"]
        g = self.c.call("submit", {"kind": "gather", "args": {"ids": [a, b, c]}})["id"]
        self.c.call("wait", {"ids": [g], "timeout": 60})
        rec = self.c.call("get", {"id": g})
        self.assertEqual(rec["state"], "succeeded", rec)
        ra, rb = self.c.call("get", {"id": a}), self.c.call("get", {"id": b})
        self.assertNotIn("slurm", ra)
        self.assertIn("slurm", rb)
        self.assertGreaterEqual(rb["started_at"], ra["finished_at"])

    def test_cancelled_in_slurm_and_restarted(self):
        tid = self.c.call("submit", {"kind": "exec", "group": "hpc", "args": {"argv": ["sleep", "60"]}})["id"]
        job = self.running_on_slurm(tid)["job"]
        subprocess.run(["scancel", str(job)], check=True)  # an administrator, not corod
        self.c.call("wait", {"ids": [tid], "timeout": 30})
        r = self.c.call("get", {"id": tid})
        self.assertEqual(r["error"]["code"], "slurm_cancelled", r)
        self.assertIn("CANCELLED", r["error"]["message"])
        # restart runs it again from its spec: a new task, a new Slurm job.
        new = self.c.call("restart", {"ids": [tid]})["ids"][0]
        again = self.running_on_slurm(new)
        self.assertNotEqual(again["job"], job)
        self.c.call("cancel", {"id": new})
        self.c.call("wait", {"ids": [new], "timeout": 30})
        self.assertEqual(self.c.call("get", {"id": new})["state"], "cancelled")

    def test_srun_killed_leaves_nothing_on_the_cluster(self):
        tid = self.c.call("submit", {"kind": "exec", "group": "hpc", "args": {"argv": ["sleep", "60"]}})["id"]
        job = self.running_on_slurm(tid)["job"]
        pids = subprocess.run(["pgrep", "-f", f"job-name=corod-.*-{tid}-1 "], capture_output=True,
                              text=True).stdout.split()
        # srun forks a helper of its own: kill the one corod started.
        parent = {p: open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1] for p in pids}
        leaders = [p for p in pids if parent[p] not in pids]
        self.assertEqual(len(leaders), 1, parent)
        os.kill(int(leaders[0]), signal.SIGKILL)
        self.c.call("wait", {"ids": [tid], "timeout": 30})
        r = self.c.call("get", {"id": tid})
        self.assertEqual((r["error"]["code"], r["error"]["signal"]), ("signal", 9), r)
        self.assertIn("srun was killed", r["error"]["message"])
        wait_for(lambda: squeue(job) == "", 20, "the job gone from the cluster")

    def test_signal_reaches_the_job(self):
        tid = self.c.call("submit", {"kind": "exec", "group": "hpc", "args": {
            "argv": ["sh", "-c", "trap 'echo usr1; exit 0' USR1; echo ready; sleep 30 & wait"]}})["id"]
        self.running_on_slurm(tid)
        self.ready(tid)
        # Pipelined: the second arrives while the first's scancel runs, and is refused (one
        # scancel a job at a time bounds what one uid can make the daemon spawn).
        first, second = self.c.msgid + 1, self.c.msgid + 2  # one write: read in one turn
        self.c.msgid += 2
        self.c.s.sendall(b"".join(msgpack.packb([0, m, "signal", [{"id": tid, "signal": "USR1"}]])
                                  for m in (first, second)))
        self.c.response(first)
        with self.assertRaises(RemoteError) as e:
            self.c.response(second)
        self.assertEqual(e.exception.code, "invalid_state")
        self.assertIn("still on its way", e.exception.message)
        self.c.call("wait", {"ids": [tid], "timeout": 30})
        self.assertEqual(self.c.call("get", {"id": tid})["state"], "succeeded")
        self.assertEqual(self.c.call("output", {"id": tid})["data"], b"ready\nusr1\n")


@unittest.skipUnless(COROCTL, "no coroctl given")
class Coroctl(unittest.TestCase):
    def ctl(self, d, *args, ok=True):
        r = subprocess.run([COROCTL, "--socket", d.sock, *args], capture_output=True, text=True, timeout=60)
        if ok:
            self.assertEqual(r.returncode, 0, r)
        return r

    def test_groups_jobs_and_status(self):
        d = Daemon()
        try:
            self.assertIn("groups may run their jobs on Slurm", self.ctl(d, "ping").stdout)
            self.ctl(d, "group", "add", "hpc", "--parallel", "0", "--partition", "test", "--cpus", "2", "--mem", "64M",
                     "--time", "2h", "--srun-arg=--exclusive", "--slurm-conf", CONF)
            out = self.ctl(d, "groups").stdout
            self.assertIn('executor "slurm"', out)
            self.assertIn('"partition": "test"', out)
            self.assertIn('"memory": 67108864', out)
            self.assertIn('"time": 7200', out)
            r = self.ctl(d, "run", "--group", "hpc", "--slurm-cpus", "1", "--", "sh", "-c", "echo $SLURM_CPUS_PER_TASK")
            self.assertEqual(r.stdout, "1\n")
            tid = self.ctl(d, "add", "--group", "hpc", "--wait", "--", "sh", "-c", "exit 4", ok=False)
            self.assertEqual(tid.returncode, 4, tid)
            st = self.ctl(d, "status", tid.stdout.split()[0]).stdout
            self.assertRegex(st, rf"slurm: job [0-9]+ on {HOST}")
            js = self.ctl(d, "--json", "status", tid.stdout.split()[0]).stdout
            self.assertIn('"slurm": {"job": ', js)
            bad = self.ctl(d, "group", "add", "x", "--srun-arg=--uid=0", ok=False)
            self.assertEqual(bad.returncode, 3, bad)
            self.assertIn("not an srun option", bad.stderr)
            bad = self.ctl(d, "group", "add", "x", "--local", "--cpus", "2", ok=False)
            self.assertEqual(bad.returncode, 2, bad)
            bad = self.ctl(d, "group", "set", "nosuch", "--slurm", ok=False)
            self.assertEqual(bad.returncode, 3, bad)
            self.assertNotIn("nosuch", self.ctl(d, "groups").stdout)
            self.ctl(d, "group", "set", "hpc", "--local")
            self.assertIn('executor "local"', self.ctl(d, "groups").stdout)
        finally:
            self.assertEqual(d.stop(), 0)


class PythonClient(unittest.TestCase):
    def test_the_python_package_speaks_slurm(self):
        sys.path.insert(0, os.path.join(HERE, "..", "..", "client", "python"))
        import corod
        d = Daemon()
        try:
            with corod.Client(d.sock) as c:
                self.assertTrue(c.hello()["executors"]["slurm"]["available"])
                c.set_group("py", slurm={"conf": CONF, "cpus": 1})
                t = c.submit_exec(["sh", "-c", "echo $SLURM_CPUS_PER_TASK"], group="py", slurm={"cpus": 2})
                res = t.result(timeout=60)
                self.assertGreater(res["slurm_job"], 0)
                self.assertEqual(res["nodes"], HOST)
                self.assertEqual(c.get(t)["slurm"]["job"], res["slurm_job"])
                with self.assertRaises(corod.BadRequest):
                    c.submit_exec(["true"], group="default", slurm={"cpus": 2})
        finally:
            self.assertEqual(d.stop(), 0)


class Crash(unittest.TestCase):
    def test_kill_9_cancels_the_slurm_job_at_restart(self):
        d = Daemon(capture_stderr=True)
        dir = d.dir
        with Client(d.sock) as c:
            c.call("set_group", {"name": "hpc", "slurm": {"conf": CONF}})
            tid = c.call("submit", {"kind": "exec", "group": "hpc", "args": {"argv": ["sleep", "120"]}})["id"]
            job = wait_for(lambda: c.call("get", {"id": tid}).get("slurm"), 20, "the Slurm job")["job"]
        self.assertIn(squeue(job), ("RUNNING", "COMPLETING"))
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        d.proc.stderr.close()
        d2 = Daemon(capture_stderr=True, dir=dir)
        try:
            with Client(d2.sock) as c:
                r = c.call("get", {"id": tid})
                self.assertEqual(r["error"]["code"], "interrupted", r)
                g = {x["name"]: x for x in c.call("groups")["groups"]}["hpc"]
                self.assertEqual(g["executor"], "slurm")  # the store kept the group's settings
            wait_for(lambda: squeue(job) == "", 20, "the Slurm job cancelled")
        finally:
            self.assertEqual(d2.stop(), 0)
        self.assertIn("cancelled the Slurm jobs of 1 interrupted tasks", d2.stderr)


class Config(unittest.TestCase):
    def test_a_file_sets_up_slurm_groups(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write(f"""[group "cluster"]
parallel = 0
slurm-partition = test
slurm-cpus = 2
slurm-memory = 134217728
slurm-time = 600
slurm-args = --exclusive --gres-flags=enforce-binding
slurm-conf = {CONF}

[group "plain"]
executor = local
""")
        d = Daemon("--config", f.name)
        try:
            with Client(d.sock) as c:
                g = {x["name"]: x for x in c.call("groups")["groups"]}
                self.assertEqual(g["cluster"]["executor"], "slurm")
                self.assertEqual(g["cluster"]["slurm"], {"partition": "test", "cpus": 2, "memory": 134217728,
                                                         "time": 600.0, "conf": CONF,
                                                         "args": ["--exclusive", "--gres-flags=enforce-binding"]})
                self.assertEqual(g["plain"]["executor"], "local")
                tid = c.call("submit", {"kind": "exec", "group": "cluster", "args": {"argv": ["true"]}})["id"]
                c.call("wait", {"ids": [tid], "timeout": 60})
                self.assertEqual(c.call("get", {"id": tid})["state"], "succeeded")
        finally:
            self.assertEqual(d.stop(), 0)
        for bad, why in (("executor = cloud", "local or slurm"), ("slurm-args = --uid=0", "not an srun option"),
                         ("executor = local\nslurm-qos = high", "executor is slurm"),
                         ("slurm-cpus = many", "slurm-cpus")):
            with open(f.name, "w") as w:
                w.write(f'[group "g"]\n{bad}\n')
            r = subprocess.run([tp.COROD, "--config", f.name, "--socket", "/nonexistent/s", "--state-dir",
                                "/nonexistent/d"], capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(why, r.stderr)
        os.unlink(f.name)


def _try(sock, method, params):
    try:
        with Client(sock) as c:
            c.call(method, params)
        return "ok"
    except RemoteError as e:
        return e.code


def _submit(sock, group, argv, **args):
    with Client(sock) as c:
        return c.call("submit", {"kind": "exec", "group": group, "args": {"argv": argv, **args}})["id"]


def main():
    global CONF, HOST
    tp.COROD = os.path.abspath(sys.argv.pop(1))
    if COROCTL:
        sys.argv.pop(1)
    if os.geteuid() != 0:
        print("test_slurm: skipped: needs root (jobs of two users; slurmd launches them)")
        return 77
    # A SIGTERM (ctest's timeout, a CI job cancelled) still tears the cluster down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="corod-slurm-")
    up = subprocess.run(["sh", CLUSTER, "up", os.path.join(tmp, "c")], capture_output=True, text=True)
    if up.returncode == 77:
        print(up.stdout.strip())
        return 77
    if up.returncode != 0:
        print(up.stdout, up.stderr, file=sys.stderr)
        return 1
    CONF = up.stdout.strip().split("=", 1)[1]
    os.environ["SLURM_CONF"] = CONF  # for the tests' own squeue and scontrol
    HOST = subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip()
    os.chmod(tmp, 0o755)
    try:
        prog = unittest.main(exit=False, verbosity=2)
        return 0 if prog.result.wasSuccessful() else 1
    finally:
        subprocess.run(["sh", CLUSTER, "down", os.path.join(tmp, "c")])
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    sys.exit(main())
