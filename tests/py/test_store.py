#!/usr/bin/python3
"""The store: what corod answered survives a kill -9 and an orderly restart, in every
stage a task can be in; ids are never given twice; a damaged database, a second daemon
and a full disk are handled as PROTOCOL.md says.

usage: test_store.py COROD_BINARY
The full-disk test mounts a small tmpfs and runs as root only (skipped otherwise).
With COROD_WRAPPER set (valgrind...), every corod runs under it.
"""
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_protocol as tp  # noqa: E402
from test_protocol import Client, RemoteError, as_nobody, wait_for  # noqa: E402

SLOW = 4 if os.environ.get("COROD_WRAPPER") else 1


class Box:
    """A state directory that outlives the corods started on it, one at a time."""

    def __init__(self, *extra, state=None):
        self.dir = tempfile.mkdtemp(prefix="corod-store-")
        self.state = state or os.path.join(self.dir, "state")
        self.sock = os.path.join(self.dir, "corod.sock")
        self.extra = extra
        self.proc = None

    def start(self, *more, expect_fail=False):
        wrapper = shlex.split(os.environ.get("COROD_WRAPPER", ""))
        self.proc = subprocess.Popen([*wrapper, tp.COROD, "--socket", self.sock, "--state-dir", self.state,
                                      *self.extra, *more], stderr=subprocess.PIPE, text=True)
        if expect_fail:
            rc = self.proc.wait(timeout=60 * SLOW)
            return rc, self.proc.stderr.read()
        deadline = time.time() + 10 * SLOW
        while time.time() < deadline:
            try:
                with Client(self.sock) as c:
                    c.call("hello")
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("corod exited: " + self.proc.stderr.read())
                time.sleep(0.01)
        raise RuntimeError("corod did not start")

    def client(self):
        return Client(self.sock)

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc.stderr.close()
        self.proc = None

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        err = self.proc.communicate(timeout=120)[1]
        rc = self.proc.returncode
        self.proc = None
        return rc, err

    def close(self):
        if self.proc:
            if self.proc.poll() is not None:  # it died: say how
                sys.stderr.write(self.proc.stderr.read()[-4000:])
            self.kill9()
        shutil.rmtree(self.dir, ignore_errors=True)


def session_alive(sid):
    """Processes still in session sid."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            out.append(int(p))
    return out


def state_of(c, i):
    return c.call("get", {"id": i})["state"]


class Store(unittest.TestCase):
    def setUp(self):
        self.box = Box("--parallel", "0")
        self.box.start()

    def tearDown(self):
        self.box.close()

    def test_every_answered_submit_survives_a_kill_during_a_burst(self):
        """A client pipelines submits while reading answers; corod is killed partway.
        Every id it was answered exists after the restart, and the next id is above them."""
        answered = []
        with self.box.client() as c:
            batch = b"".join(msgpack.packb([0, i, "submit", [{"kind": "sleep", "args": {"seconds": 3600}}]])
                             for i in range(20000))
            stop = threading.Event()

            def write():
                try:
                    c.s.sendall(batch)
                except OSError:
                    pass
            w = threading.Thread(target=write)
            w.start()
            u = msgpack.Unpacker()
            while len(answered) < 3000:
                u.feed(c.s.recv(1 << 16))
                for m in u:
                    assert m[2] is None, m
                    answered.append(m[3]["id"])
            self.box.kill9()
            stop.set()
            w.join()
        self.assertEqual(len(set(answered)), len(answered))
        self.box.start()
        with self.box.client() as c:
            listed = set()
            after = 0
            while True:
                page = c.call("list", {"after": after, "limit": 100000})
                listed.update(t["id"] for t in page["tasks"])
                if page["next"] is None:
                    break
                after = page["next"]
            missing = [i for i in answered if i not in listed]
            self.assertEqual(missing, [], f"{len(missing)} answered ids lost")
            for t in (answered[0], answered[-1]):
                self.assertEqual(state_of(c, t), "running")
            nxt = c.call("submit", {"kind": "sleep", "args": {"seconds": 0}})["id"]
            self.assertGreater(nxt, max(listed))

    def stages(self, c):
        """A task in every stage a record can be in; returns their ids by name."""
        t = {}
        c.call("set_group", {"name": "held", "paused": True, "parallel": 3})
        t["sleep"] = c.call("submit", {"kind": "sleep", "args": {"seconds": 4 * SLOW, "result": "slept"}})["id"]
        t["member"] = c.call("submit", {"kind": "sleep", "args": {"seconds": 1}})["id"]
        t["gather"] = c.call("submit", {"kind": "gather", "args": {"ids": [t["sleep"], t["member"]]}})["id"]
        t["after"] = c.call("submit", {"kind": "sleep", "args": {"seconds": 0, "result": "then"},
                                       "after": [t["sleep"]]})["id"]
        t["delay"] = c.call("submit", {"kind": "sleep", "args": {"seconds": 0}, "delay": 3 * SLOW})["id"]
        t["paused"] = c.call("submit", {"kind": "exec", "args": {"argv": ["true"]}, "group": "held"})["id"]
        t["job"] = c.call("submit", {"kind": "exec", "args": {"argv": ["sh", "-c", "sleep 60 & sleep 60"]}})["id"]
        t["retried"] = c.call("submit", {"kind": "exec", "args": {"argv": ["sleep", "60"]}, "retries": 1})["id"]
        t["backoff"] = c.call("submit", {"kind": "exec", "args": {"argv": ["false"]}, "retries": 2,
                                         "retry_delay": 60})["id"]
        t["done"] = c.call("submit", {"kind": "exec", "args": {"argv": ["sh", "-c", "echo kept; exit 3"]}})["id"]
        t["cancelled"] = c.call("submit", {"kind": "sleep", "args": {"seconds": 60}})["id"]
        c.call("cancel", {"id": t["cancelled"], "message": "no longer wanted"})
        c.call("wait", {"ids": [t["done"], t["cancelled"]]})
        wait_for(lambda: c.call("get", {"id": t["backoff"]})["attempts"] == 1 and
                 state_of(c, t["backoff"]) == "pending", 10 * SLOW, "the first attempt to fail")
        for k in ("job", "retried", "gather", "sleep"):
            wait_for(lambda: state_of(c, t[k]) == "running", 10 * SLOW, k + " to run")
        self.job_pid = wait_for(lambda: self.box_pid(t["job"]), 10 * SLOW, "the job's pid in the store")
        wait_for(lambda: len(session_alive(self.job_pid)) == 3, 10 * SLOW, "the job's processes")
        return t

    def box_pid(self, i):
        db = sqlite3.connect(f"file:{self.box.state}/corod.db?mode=ro", uri=True)
        try:
            row = db.execute("SELECT pid FROM tasks WHERE id = ?", (i,)).fetchone()
        finally:
            db.close()
        return row[0] if row and row[0] else None

    def check_stages(self, t, before):
        with self.box.client() as c:
            # Running sleep: the same attempt, towards the same deadline.
            s = c.call("get", {"id": t["sleep"]})
            self.assertEqual(s["state"], "running")
            self.assertEqual(s["started_at"], before["sleep"]["started_at"])
            self.assertEqual(s["attempts"], 1)
            # The job: its processes are gone, the task failed interrupted.
            j = c.call("get", {"id": t["job"]})
            self.assertEqual(j["state"], "failed")
            self.assertEqual(j["error"]["code"], "interrupted")
            self.assertEqual(session_alive(self.job_pid), [])
            # A job with an attempt left runs it.
            wait_for(lambda: c.call("get", {"id": t["retried"]})["attempts"] == 2, 10 * SLOW, "the second attempt")
            # Waiting for its retry_delay: pending, its attempt counted.
            b = c.call("get", {"id": t["backoff"]})
            self.assertEqual((b["state"], b["attempts"]), ("pending", 1))
            # Queued in a paused group: there still, and the group still paused.
            self.assertEqual(state_of(c, t["paused"]), "pending")
            g = {x["name"]: x for x in c.call("groups")["groups"]}
            self.assertEqual((g["held"]["paused"], g["held"]["parallel"]), (True, 3))
            # Ended ones as they ended, output included.
            d = c.call("get", {"id": t["done"]})
            self.assertEqual(d, before["done"])
            out = c.call("output", {"id": t["done"], "stream": "stdout"})
            self.assertEqual(out["data"], b"kept\n")
            self.assertEqual(c.call("get", {"id": t["cancelled"]}), before["cancelled"])
            self.assertEqual(before["cancelled"]["error"]["message"], "no longer wanted")
            # The rest ends as it would have: the sleep at its deadline, then its
            # dependant and the gather; the delayed one at its time.
            w = c.call("wait", {"ids": [t["sleep"], t["after"], t["gather"], t["delay"]], "timeout": 20 * SLOW})
            self.assertEqual(len(w["done"]), 4)
            by = {x["id"]: x for x in w["done"]}
            self.assertEqual(by[t["sleep"]]["result"], "slept")
            self.assertLess(by[t["sleep"]]["finished_at"] - before["sleep"]["started_at"], 4 * SLOW + 1.5)
            self.assertEqual(by[t["after"]]["result"], "then")
            self.assertEqual(by[t["gather"]]["state"], "succeeded")
            self.assertEqual(by[t["gather"]]["result"], ["slept", None])
            dl = by[t["delay"]]
            self.assertGreaterEqual(dl["started_at"] - dl["created_at"], 3 * SLOW - 0.05)
            self.assertLess(dl["started_at"] - dl["created_at"], 3 * SLOW + 1.5)
            c.call("set_group", {"name": "held", "paused": False})
            self.assertEqual(c.call("wait", {"ids": [t["paused"]], "timeout": 10 * SLOW})["done"][0]["state"],
                             "succeeded")

    def snapshot(self, t):
        with self.box.client() as c:
            return {k: c.call("get", {"id": i}) for k, i in t.items()}

    def test_every_stage_comes_back_after_a_kill(self):
        with self.box.client() as c:
            t = self.stages(c)
        before = self.snapshot(t)
        self.box.kill9()
        self.box.start()
        self.check_stages(t, before)

    def test_every_stage_comes_back_after_an_orderly_stop(self):
        with self.box.client() as c:
            t = self.stages(c)
        before = self.snapshot(t)
        rc, _ = self.box.stop()
        self.assertEqual(rc, 0)
        self.box.start()
        self.check_stages(t, before)

    def test_ids_are_never_given_twice(self):
        seen = set()
        for _ in range(3):
            with self.box.client() as c:
                for _ in range(5):
                    i = c.call("submit", {"kind": "sleep", "args": {"seconds": 0}})["id"]
                    self.assertNotIn(i, seen)
                    self.assertTrue(not seen or i > max(seen))
                    seen.add(i)
            self.box.kill9()
            self.box.start()

    def test_a_change_answered_is_a_change_kept(self):
        """set_group's answer, like submit's, comes once the change is stored."""
        with self.box.client() as c:
            c.call("set_group", {"name": "nightly", "parallel": 7, "paused": True, "users": [0, 1234]})
        self.box.kill9()
        self.box.start()
        with self.box.client() as c:
            g = {x["name"]: x for x in c.call("groups")["groups"]}["nightly"]
            self.assertEqual((g["parallel"], g["paused"], g["users"]), (7, True, [0, 1234]))

    def test_an_edit_answered_is_an_edit_kept(self):
        with self.box.client() as c:
            c.call("set_group", {"name": "held", "paused": True})
            c.call("set_group", {"name": "held-2", "paused": True})
            job = {"kind": "exec", "group": "held", "args": {"argv": ["echo", "edited"]}, "name": "before"}
            a = c.call("submit", job)["id"]
            b = c.call("submit", {**job, "delay": 3600})["id"]
            rec = c.call("edit", {"id": a, "name": "after", "group": "held-2", "priority": 5})
            self.assertEqual((rec["name"], rec["group"]), ("after", "held-2"))
            self.assertEqual(rec["waiting"], {"reason": "paused"})
            self.assertEqual(c.call("edit", {"id": b, "delay": 7200, "name": ""})["name"], None)
            w = c.call("get", {"id": b})["waiting"]
            self.assertEqual(w["reason"], "delay")
            until = w["until"]
        self.box.kill9()
        self.box.start()
        with self.box.client() as c:
            rec = c.call("get", {"id": a})
            self.assertEqual((rec["name"], rec["group"], rec["state"]), ("after", "held-2", "pending"))
            self.assertEqual([t["id"] for t in c.call("list", {"name": "after"})["tasks"]], [a])
            w = c.call("get", {"id": b})["waiting"]
            self.assertAlmostEqual(w["until"], until, delta=2)
            self.assertEqual(c.call("get", {"id": b})["name"], None)
            spec = c.call("spec", {"id": a})["spec"]  # as submitted, the edits merged in
            self.assertEqual((spec["name"], spec["group"], spec["priority"], spec["args"]["argv"]),
                             ("after", "held-2", 5, ["echo", "edited"]))
            # the edited spec is what a restart of the task runs again
            c.call("set_group", {"name": "held-2", "paused": False})
            self.assertEqual(c.call("wait", {"ids": [a]})["done"][0]["state"], "succeeded")
            again = c.call("restart", {"ids": [a]})["ids"][0]
            rec = c.call("wait", {"ids": [again]})["done"][0]
            self.assertEqual((rec["name"], rec["group"], rec["state"]), ("after", "held-2", "succeeded"))
            c.call("cancel", {"id": b})

    def test_a_removed_group_stays_removed(self):
        with self.box.client() as c:
            c.call("set_group", {"name": "old-team", "paused": True, "parallel": 9})
            c.call("remove_group", {"name": "old-team"})
        self.box.kill9()
        self.box.start()
        with self.box.client() as c:
            self.assertNotIn("old-team", [g["name"] for g in c.call("groups")["groups"]])

    def test_a_second_daemon_on_the_state_directory_is_refused(self):
        other = Box(state=self.box.state)
        try:
            rc, err = other.start(expect_fail=True)
        finally:
            other.close()
        self.assertEqual(rc, 1)
        self.assertIn("is in use by another corod", err)
        with self.box.client() as c:
            c.call("hello")

    def test_a_copy_taken_while_it_runs_opens_cleanly(self):
        """sqlite3's .backup of the live database, under load, is a database with the
        tasks answered before it."""
        sqlite = shutil.which("sqlite3")
        if not sqlite:
            self.skipTest("no sqlite3 command")
        copy = os.path.join(self.box.dir, "copy.db")
        stop = threading.Event()

        def load():
            with self.box.client() as c:
                while not stop.is_set():
                    c.call("submit", {"kind": "sleep", "args": {"seconds": 0}})
        th = threading.Thread(target=load)
        with self.box.client() as c:
            first = c.call("submit", {"kind": "sleep", "args": {"seconds": 0}})["id"]
        th.start()
        try:
            time.sleep(0.2)
            subprocess.run([sqlite, f"{self.box.state}/corod.db", f".backup {copy}"], check=True, timeout=60)
        finally:
            stop.set()
            th.join()
        db = sqlite3.connect(copy)
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            self.assertTrue(db.execute("SELECT 1 FROM tasks WHERE id = ?", (first,)).fetchone())
        finally:
            db.close()


class Refusals(unittest.TestCase):
    def test_a_damaged_database_is_refused_and_kept(self):
        box = Box()
        try:
            os.makedirs(box.state)
            junk = b"not a database " * 1000
            with open(f"{box.state}/corod.db", "wb") as f:
                f.write(junk)
            rc, err = box.start(expect_fail=True)
            self.assertEqual(rc, 1)
            self.assertIn("is damaged", err)
            self.assertIn("Restore a backup, or move it aside", err)
            with open(f"{box.state}/corod.db", "rb") as f:
                self.assertEqual(f.read(), junk)
        finally:
            box.close()

    def test_without_a_store_each_start_begins_empty(self):
        box = Box("--no-store")
        try:
            box.start()
            with box.client() as c:
                self.assertEqual(c.call("submit", {"kind": "sleep", "args": {"seconds": 0}})["id"], 1)
            box.kill9()
            box.start()
            with box.client() as c:
                self.assertEqual(c.call("list")["tasks"], [])
            self.assertFalse(os.path.exists(f"{box.state}/corod.db"))
        finally:
            box.close()

    def test_sync_takes_full_or_normal_only(self):
        box = Box("--sync", "sometimes")
        try:
            rc, err = box.start(expect_fail=True)
            self.assertEqual(rc, 2)
            self.assertIn("--sync must be full or normal", err)
        finally:
            box.close()


class History(unittest.TestCase):
    """Each uid keeps its newest --retain records in memory; the store keeps them all, and
    everything that works on a record works on one read back from it."""

    def setUp(self):
        self.box = Box("--retain", "2")
        self.box.start()

    def tearDown(self):
        self.box.close()

    def old_ones(self, c):
        """Three ended records, the first two out of memory by the time it returns."""
        job = c.call("submit", {"kind": "exec", "args": {"argv": ["sh", "-c", "echo old; exit 4"]},
                                "name": "first", "group": "nightly"})["id"]
        rec = c.call("wait", {"ids": [job]})["done"][0]
        ok = c.call("submit", {"kind": "sleep", "args": {"seconds": 0, "result": {"n": 1}}})["id"]
        c.call("wait", {"ids": [ok]})
        for _ in range(3):
            i = c.call("submit", {"kind": "sleep", "args": {"seconds": 0}})["id"]
            c.call("wait", {"ids": [i]})
        return job, rec, ok

    def test_everything_works_on_records_read_back(self):
        with self.box.client() as c:
            job, rec, ok = self.old_ones(c)
            self.assertEqual(c.call("get", {"id": job}), rec)
            w = c.call("wait", {"ids": [job, ok]})
            self.assertEqual(sorted(r["id"] for r in w["done"]), [job, ok])
            self.assertEqual(c.call("cancel", {"id": ok}), {"cancelled": False})
            sub = c.call("subscribe", {"ids": [ok]})
            note = c.read()
            self.assertEqual((note[1], note[2][0]["task"]["id"]), ("task.done", ok))
            c.call("unsubscribe", {"sub": sub["sub"]})
            # Its output files stay with its row, not with its place in memory.
            self.assertEqual(c.call("output", {"id": job})["data"], b"old\n")
            # A new task may depend on, or gather, records read back.
            g = c.call("submit", {"kind": "gather", "args": {"ids": [ok]}, "after": [ok]})["id"]
            self.assertEqual(c.call("wait", {"ids": [g]})["done"][0]["result"], [{"n": 1}])
            with self.assertRaises(RemoteError) as e:
                c.call("get", {"id": g + 1000})
            self.assertEqual(e.exception.code, "not_found")

    def test_a_restart_keeps_the_history(self):
        with self.box.client() as c:
            job, rec, ok = self.old_ones(c)
        out = os.path.join(self.box.state, "output")
        self.box.kill9()
        # Files of no task left (a row deleted just before a crash) go at start; those of
        # rows in the store stay, in memory or not.
        for name in ("999999.out", "999999.err"):
            with open(os.path.join(out, name), "w") as f:
                f.write("orphan")
        self.box.start()
        self.assertEqual(os.listdir(out), [f"{job}.out"])  # it wrote no stderr
        with self.box.client() as c:
            self.assertEqual(c.call("get", {"id": job}), rec)
            self.assertEqual(c.call("get", {"id": ok})["result"], {"n": 1})
            self.assertEqual(c.call("output", {"id": job})["data"], b"old\n")

    @unittest.skipUnless(os.geteuid() == 0, "needs root to act as another user")
    def test_another_uids_old_records_stay_theirs(self):
        os.chmod(self.box.dir, 0o755)
        with self.box.client() as c:
            job, _, _ = self.old_ones(c)

        def calls():
            out = []
            with Client(self.box.sock) as n:
                for call in (("get", {"id": job}), ("wait", {"ids": [job]}),
                             ("list", {"owner": 0}), ("list", {}), ("clean", {"owner": 0}), ("clean", {})):
                    try:
                        out.append(repr(n.call(*call)))
                    except RemoteError as e:
                        out.append(e.code)
            return out
        got = as_nobody(calls)
        self.assertEqual(got[:3], ["not_found", "not_found", "permission_denied"])
        self.assertEqual(got[3], repr({"waiting": [], "tasks": [], "next": None}))
        self.assertEqual(got[4:], ["permission_denied", repr({"removed": 0, "next": None})])
        with self.box.client() as c:
            self.assertEqual(c.call("get", {"id": job})["id"], job)  # root's, still there

    def test_list_filters_pages_and_orders_from_the_store(self):
        with self.box.client() as c:
            job, rec, ok = self.old_ones(c)
            t0 = time.time()
            late = c.call("submit", {"kind": "sleep", "args": {"seconds": 60}, "name": "late"})["id"]
            every = c.call("list", {"limit": 100})
            self.assertEqual([t["id"] for t in every["tasks"]], list(range(1, late + 1)))
            self.assertIsNone(every["next"])
            self.assertEqual(every["tasks"][0], rec)
            pick = lambda **q: [t["id"] for t in c.call("list", q)["tasks"]]  # noqa: E731
            self.assertEqual(pick(state="failed"), [job])
            self.assertEqual(pick(state="running"), [late])
            self.assertEqual(pick(group="nightly"), [job])
            self.assertEqual(pick(kind="exec"), [job])
            self.assertEqual(pick(name="late"), [late])
            self.assertEqual(pick(since=t0), [late])
            self.assertEqual(pick(until=t0, kind="sleep"), list(range(ok, late)))
            self.assertEqual(pick(order="desc", limit=2), [late, late - 1])
            self.assertEqual(pick(state="succeeded", owner=0), list(range(ok, late)))
            # Pages: a cursor at a time, either way.
            for order in ("asc", "desc"):
                seen, after = [], 0
                while True:
                    p = c.call("list", {"limit": 2, "after": after, "order": order})
                    seen += [t["id"] for t in p["tasks"]]
                    if p["next"] is None:
                        break
                    after = p["next"]
                self.assertEqual(seen, list(range(1, late + 1))[::1 if order == "asc" else -1])
            for bad, code in (({"order": "up"}, "bad_request"), ({"state": "done"}, "bad_request"),
                              ({"since": -1}, "bad_request")):
                with self.assertRaises(RemoteError) as e:
                    c.call("list", bad)
                self.assertEqual(e.exception.code, code)

    def test_a_list_pipelined_after_a_submit_sees_it(self):
        with self.box.client() as c:
            s = c.send("submit", {"kind": "sleep", "args": {"seconds": 60}})
            lst = c.send("list", {})
            got = {}
            while len(got) < 2:
                m = c.read()
                if m[0] == 1:
                    got[m[1]] = m[3]
            self.assertIn(got[s]["id"], [t["id"] for t in got[lst]["tasks"]])

    def test_clean_removes_ended_records_and_their_output(self):
        with self.box.client() as c:
            job, rec, ok = self.old_ones(c)                     # job failed, ok succeeded
            fresh = c.call("submit", {"kind": "exec", "args": {"argv": ["echo", "hi"]}})["id"]
            c.call("wait", {"ids": [fresh]})
            running = c.call("submit", {"kind": "sleep", "args": {"seconds": 60}})["id"]
            out = os.path.join(self.box.state, "output")
            self.assertIn(f"{fresh}.out", os.listdir(out))
            with self.assertRaises(RemoteError) as e:
                c.call("clean", {"state": "running"})
            self.assertEqual(e.exception.code, "bad_request")
            r = c.call("clean", {"state": "succeeded"})
            self.assertEqual(r, {"removed": len(range(ok, fresh + 1)), "next": None})
            for i in (ok, fresh):
                with self.assertRaises(RemoteError) as e:
                    c.call("get", {"id": i})
                self.assertEqual(e.exception.code, "not_found")
            self.assertTrue(wait_for(lambda: f"{fresh}.out" not in os.listdir(out), 5, "the output files to go"))
            self.assertEqual(c.call("get", {"id": job}), rec)
            self.assertEqual(state_of(c, running), "running")
            self.assertEqual(c.call("clean", {"name": "first"})["removed"], 1)
        self.box.kill9()
        self.box.start()
        with self.box.client() as c:
            self.assertEqual([t["id"] for t in c.call("list")["tasks"]], [running])

    def test_restart_runs_ended_tasks_again_from_their_specs(self):
        with self.box.client() as c:
            job, rec, ok = self.old_ones(c)            # job failed (exit 4), out of memory now
            r = c.call("restart", {"ids": [job, ok]})
            self.assertEqual(r["errors"], [])
            again = r["ids"]
            self.assertEqual(len(again), 2)
            done = {t["id"]: t for t in c.call("wait", {"ids": again})["done"]}
            first = done[again[0]]
            self.assertEqual((first["restarted_from"], first["name"], first["group"], first["command"]),
                             (job, "first", "nightly", rec["command"]))
            self.assertEqual(first["error"]["exit_code"], 4)
            self.assertEqual(c.call("output", {"id": again[0]})["data"], b"old\n")
            self.assertEqual(done[again[1]]["result"], {"n": 1})
            self.assertNotIn("restarted_from", c.call("get", {"id": job}))
            # --failed for a group: the failed ones of nightly (the first and its rerun).
            r = c.call("restart", {"state": "failed", "group": "nightly"})
            self.assertEqual([c.call("get", {"id": i})["restarted_from"] for i in r["ids"]], [job, again[0]])
            self.assertIsNone(r["next"])
            for bad in ({"state": "pending"}, {"ids": ["x"]}):
                with self.assertRaises(RemoteError) as e:
                    c.call("restart", bad)
                self.assertEqual(e.exception.code, "bad_request")
            self.assertEqual(c.call("restart", {"ids": [999999]}), {"ids": [], "errors": []})

    def test_get_and_list_show_an_execs_argv(self):
        argv = ["sh", "-c", "exit 0", "x" * 300, "é"]
        with self.box.client() as c:
            i = c.call("submit", {"kind": "exec", "args": {"argv": argv}})["id"]
            self.assertEqual(c.call("get", {"id": i})["argv"], argv)  # the command line is cut; argv is not
            c.call("wait", {"ids": [i]})
            self.assertEqual(c.call("get", {"id": i})["argv"], argv)
            self.assertEqual(c.call("list", {"kind": "exec"})["tasks"][-1]["argv"], argv)
            s = c.call("submit", {"kind": "sleep", "args": {"seconds": 0}})["id"]
            self.assertNotIn("argv", c.call("get", {"id": s}))
            self.old_ones(c)  # i leaves memory
            self.assertEqual(c.call("get", {"id": i})["argv"], argv)

    def test_a_restart_reads_an_answers_worth_of_specs(self):
        """Specs can be large: one restart reads at most an answer's worth (a quarter of
        --max-output, 16 KiB here); the ids past that are in `errors`, to ask again."""
        box = Box("--max-output", "65536")
        try:
            box.start()
            with box.client() as c:
                ids = [c.call("submit", {"kind": "sleep", "args": {"seconds": 0, "result": "r" * 10000}})["id"]
                       for _ in range(3)]
                c.call("wait", {"ids": ids})
                r = c.call("restart", {"ids": ids})
                self.assertEqual(len(r["ids"]), 2)
                self.assertEqual([(e["id"], e["code"]) for e in r["errors"]], [(ids[2], "too_large")])
                self.assertEqual(len(c.call("restart", {"ids": ids[2:]})["ids"]), 1)
        finally:
            box.close()

    def test_a_page_looks_at_a_bounded_number_of_ids(self):
        """A filter that matches nothing ends a page after SRV_LIST_SCAN (100,000) ids
        with a cursor, rather than walking the whole store."""
        db = sqlite3.connect(os.path.join(self.box.state, "corod.db"))
        with db:
            db.executemany("INSERT INTO tasks(id, owner, kind, grp, spec, state, created_at, finished_at)"
                           " VALUES(?, 0, 'sleep', 'default', x'80', 2, 0, 0)", ((i,) for i in range(1, 250001)))
        db.close()
        with self.box.client() as c:
            pages = []
            after = 0
            while True:
                p = c.call("list", {"name": "nothing has this name", "after": after})
                pages.append((len(p["tasks"]), p["next"]))
                if p["next"] is None:
                    break
                after = p["next"]
            self.assertEqual(pages, [(0, 100000), (0, 200000), (0, None)])


class Retention(unittest.TestCase):
    def test_the_store_keeps_the_newest_and_the_recent(self):
        box = Box("--keep", "3", "--retain", "1")
        try:
            box.start()
            with box.client() as c:
                ids = []
                for _ in range(6):
                    i = c.call("submit", {"kind": "exec", "args": {"argv": ["echo", "x"]}})["id"]
                    c.call("wait", {"ids": [i]})
                    ids.append(i)
                running = c.call("submit", {"kind": "sleep", "args": {"seconds": 60}})["id"]
                kept = lambda: [t["id"] for t in c.call("list")["tasks"]]  # noqa: E731
                wait_for(lambda: kept() == ids[-3:] + [running], 10 * SLOW, "the count bound")
                with self.assertRaises(RemoteError) as e:
                    c.call("get", {"id": ids[0]})
                self.assertEqual(e.exception.code, "not_found")
            box.kill9()
            time.sleep(1.2)
            box.start("--keep-for", "1")  # now all ended ones are older than that
            with box.client() as c:
                wait_for(lambda: [t["id"] for t in c.call("list")["tasks"]] == [running], 10 * SLOW, "the age bound")
                # The files go on the thread pool, after the records.
                wait_for(lambda: os.listdir(os.path.join(box.state, "output")) == [], 5 * SLOW, "the output files")
        finally:
            box.close()

    def test_one_uid_cannot_fill_the_store(self):
        """Past --max-uid-store, a uid's oldest ended tasks go (another uid's, here root's
        one with a big result, are not counted against it): a hostile uid's history cannot
        fill the disk everyone's store is on."""
        if os.geteuid() != 0:
            self.skipTest("needs root to act as another user")
        import pwd
        nobody = pwd.getpwnam("nobody")
        box = Box("--max-uid-store", "200000", "--retain", "1")
        try:
            box.start()
            os.chmod(box.dir, 0o755)
            big = "x" * 30000
            with box.client() as c:
                mine = c.call("submit", {"kind": "sleep", "args": {"seconds": 0, "result": big}})["id"]
                c.call("wait", {"ids": [mine]})

            def fill():
                ids = []
                with Client(box.sock) as n:
                    for _ in range(20):  # 20 x 30 KB spec + 30 KB result: 1.2 MB
                        i = n.call("submit", {"kind": "sleep", "args": {"seconds": 0, "result": big}})["id"]
                        n.call("wait", {"ids": [i]})
                        ids.append(i)
                return ids
            ids = as_nobody(fill)
            with box.client() as c:
                kept = lambda: [t["id"] for t in c.call("list", {"owner": nobody.pw_uid})["tasks"]]  # noqa: E731
                wait_for(lambda: 0 < len(kept()) <= 4 and kept()[-1] == ids[-1], 10 * SLOW, "nobody's oldest to go")
                self.assertEqual(c.call("get", {"id": mine})["result"], big)
        finally:
            box.close()

    def test_keep_takes_sensible_values_only(self):
        for args, msg in ((("--keep", "0"), "--keep must be"), (("--keep-for", "soon"), "--keep-for"),
                          (("--max-uid-store", "10"), "--max-uid-store must be")):
            box = Box(*args)
            try:
                rc, err = box.start(expect_fail=True)
                self.assertEqual(rc, 2)
                self.assertIn(msg, err)
            finally:
                box.close()


@unittest.skipUnless(os.geteuid() == 0, "mounting a tmpfs needs root")
class DiskFull(unittest.TestCase):
    """The state directory on a 24 MiB tmpfs (the store sets 8 MiB aside), filled up
    with a file of ours."""

    def setUp(self):
        self.box = Box()
        self.mnt = os.path.join(self.box.dir, "state")
        os.makedirs(self.mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", self.mnt],
                           capture_output=True)
        if r.returncode:
            self.box.close()
            self.skipTest("cannot mount a tmpfs: " + r.stderr.decode())
        self.box.start()

    def tearDown(self):
        if self.box.proc:
            self.box.kill9()
        subprocess.run(["umount", "-l", self.mnt])
        self.box.close()

    def test_a_full_disk_refuses_new_tasks_and_keeps_serving(self):
        filler = os.path.join(self.mnt, "filler")
        with self.box.client() as c:
            kept = c.call("submit", {"kind": "sleep", "args": {"seconds": 0, "result": "before"}})["id"]
            c.call("wait", {"ids": [kept]})
            # Leave a little room, then submit until the store says it cannot.
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            os.truncate(filler, os.path.getsize(filler) - 256 * 1024)
            answered, refused = [], None
            for _ in range(5000):
                try:
                    answered.append(c.call("submit", {"kind": "sleep", "args": {"seconds": 3600,
                                                                                "result": "x" * 4000}})["id"])
                except RemoteError as e:
                    refused = e
                    break
            self.assertIsNotNone(refused, "the disk never filled")
            self.assertEqual(refused.code, "unavailable")
            # Reads go on, and what was answered is there.
            self.assertEqual(c.call("get", {"id": kept})["result"], "before")
            self.assertIn(kept, [t["id"] for t in c.call("list", {"limit": 100000})["tasks"]])
            with self.assertRaises(RemoteError) as e:
                c.call("submit", {"kind": "sleep", "args": {"seconds": 0}})
            self.assertEqual(e.exception.code, "unavailable")
            # Room again: new tasks are taken once a retry commits.
            os.unlink(filler)
            i = wait_for(lambda: self.try_submit(c), 10 * SLOW, "submits to be taken again")
            self.assertGreater(i, max(answered) if answered else kept)
        self.box.kill9()
        self.box.start()
        with self.box.client() as c:
            for i in answered:
                self.assertEqual(state_of(c, i), "running")

    @staticmethod
    def try_submit(c):
        try:
            return c.call("submit", {"kind": "sleep", "args": {"seconds": 0}})["id"]
        except RemoteError as e:
            if e.code != "unavailable":
                raise
            return None


if __name__ == "__main__":
    tp.COROD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
