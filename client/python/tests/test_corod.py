#!/usr/bin/python3
"""The corod Python package against a real corod on a private socket: every method, both
clients, typed errors, done-notifications read before their subscribe's answer is
handled, 10,000 awaits on one connection, and a daemon that goes while tasks are awaited.

usage: test_corod.py COROD_BINARY"""
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import corod  # noqa: E402

COROD = None


class Daemon:
    def __init__(self, state=None):
        self.dir = tempfile.mkdtemp(prefix="corod-pyclient-")
        self.sock = os.path.join(self.dir, "corod.sock")
        self.state = state or os.path.join(self.dir, "state")
        self.proc = subprocess.Popen([COROD, "--socket", self.sock, "--state-dir", self.state],
                                     stderr=subprocess.DEVNULL)
        for _ in range(500):
            try:
                with corod.Client(self.sock) as c:
                    c.hello()
                return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("corod did not start")

    def stop(self, keep=False):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        return rc


class SharedDaemon(unittest.TestCase):
    """One daemon for the class's tests."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()

    @classmethod
    def tearDownClass(cls):
        assert cls.d.stop() == 0


class Blocking(SharedDaemon):
    def client(self):
        return corod.Client(self.d.sock, timeout=30)

    def test_tasks_results_and_typed_errors(self):
        with self.client() as c:
            self.assertEqual(c.hello()["protocol"], 1)
            job = c.submit_exec(["sh", "-c", "echo out; echo err >&2"], name="py", env={"PATH": "/usr/bin:/bin"})
            self.assertEqual(job.result(timeout=30)["exit_code"], 0)
            self.assertEqual(b"".join(c.follow(job)), b"out\n")
            self.assertEqual(c.output(job, "stderr")["data"], b"err\n")
            nap = c.sleep(0, result={"x": [1, 2]})
            self.assertEqual(c.gather([nap, c.sleep(0, result="b")]).result(30), [{"x": [1, 2]}, "b"])
            bad = c.submit_exec(["sh", "-c", "exit 3"])
            with self.assertRaises(corod.TaskFailed) as e:
                bad.result(30)
            self.assertEqual((e.exception.code, e.exception.details["exit_code"]), ("exit_status", 3))
            with self.assertRaises(corod.NotFound) as e:
                c.get(10 ** 12)
            self.assertIn("not found", e.exception.message)
            with self.assertRaises(corod.BadRequest):
                c.sleep(-1)
            with self.assertRaises(corod.UnknownMethod):
                c.call("no-such-method")
            with self.assertRaises(TypeError):
                c.submit_exec("ls -l")  # argv is a list
            long = c.sleep(60)
            with self.assertRaises(TimeoutError):
                long.result(timeout=0.05)
            self.assertTrue(long.cancel("enough"))
            with self.assertRaises(corod.TaskCancelled) as e:
                long.result(30)
            self.assertEqual(e.exception.message, "enough")

    def test_every_other_method(self):
        with self.client() as c:
            c.set_group("py-held", paused=True, parallel=1)
            self.assertIn("py-held", [g["name"] for g in c.groups()])
            t = c.submit_exec(["cat"], group="py-held", stdin_pipe=True, name="first")
            self.assertEqual(c.get(t)["waiting"], {"reason": "paused"})
            self.assertEqual(c.edit(t, name="second", priority=-1)["name"], "second")
            self.assertEqual(c.spec(t)["name"], "second")
            c.set_group("py-held", paused=False)
            for _ in range(500):
                if c.get(t)["state"] == "running":
                    break
                time.sleep(0.01)
            self.assertEqual(c.send(t, b"piped\n", eof=True), 6)
            self.assertEqual(t.result(30)["exit_code"], 0)
            self.assertEqual(c.output(t)["data"], b"piped\n")
            with self.assertRaises(corod.InvalidState):
                c.signal(t, "HUP")
            self.assertIn(t.id, [r["id"] for r in c.list(group="py-held")])
            again = c.restart([t])
            self.assertEqual(len(again), 1)
            c.cancel(again[0])
            c.wait(again)
            self.assertGreaterEqual(c.clean(group="py-held"), 2)
            c.remove_group("py-held")
            self.assertNotIn("py-held", [g["name"] for g in c.groups() if g["configured"]])
            # subscribe: the note of a task that has ended comes right after the answer
            n = c.sleep(0)
            n.result(30)
            sub = c.subscribe([n])
            c.hello()
            self.assertEqual([(x["sub"], x["task"]["id"]) for x in c.notifications()], [(sub, n.id)])
            c.unsubscribe(sub)

    def test_done_callbacks(self):
        with self.client() as c:
            seen = []
            a, b = c.sleep(0.05), c.sleep(0)
            b.result(30)
            for t in (a, b):  # b has ended already: its callback runs all the same
                t.add_done_callback(lambda t: seen.append(t.id))
            deadline = time.time() + 10
            while len(seen) < 2 and time.time() < deadline:
                c.dispatch(timeout=1)
            self.assertEqual(sorted(seen), sorted([a.id, b.id]))

    def test_default_socket(self):
        env = dict(os.environ)
        try:
            os.environ["CORO_SOCKET"] = "/x/y.sock"
            self.assertEqual(corod.default_socket(), "/x/y.sock")
            del os.environ["CORO_SOCKET"]
            if os.geteuid() == 0:
                self.assertEqual(corod.default_socket(), "/run/corod/corod.sock")
        finally:
            os.environ.clear()
            os.environ.update(env)


class Async(SharedDaemon):
    def run_async(self, coro):
        return asyncio.run(asyncio.wait_for(coro, 120))

    def test_await_gather_callbacks_and_errors(self):
        async def go():
            async with await corod.AsyncClient.connect(self.d.sock) as c:
                job = await c.submit_exec(["sh", "-c", "sleep 0.1; echo hi"])
                nap = await c.sleep(0.05, result="slept")

                async def local():
                    await asyncio.sleep(0.01)
                    return "local"
                called = asyncio.Event()
                job.add_done_callback(lambda t: called.set())
                out, slept, loc = await asyncio.gather(job, nap, local())
                self.assertEqual((out["exit_code"], slept, loc), (0, "slept", "local"))
                await asyncio.wait_for(called.wait(), 10)
                self.assertEqual(b"".join([x async for x in c.follow(job)]), b"hi\n")
                with self.assertRaises(corod.TaskFailed) as e:
                    await (await c.submit_exec(["false"]))
                self.assertEqual(e.exception.code, "exit_status")
                with self.assertRaises(corod.NotFound):
                    await c.get(10 ** 12)
                with self.assertRaises(corod.BadRequest) as e:
                    await c.submit({"kind": "sleep", "args": {"seconds": 0}, "group": "x" * 65})
                self.assertIn("group", e.exception.message)
                # a task that has ended: awaiting it still gives its result
                done = await c.sleep(0, result=7)
                await asyncio.sleep(0.1)
                self.assertEqual(await c.task(done.id), 7)
                self.assertEqual(await done.result(timeout=10), 7)
                recs = [r async for r in c.list(limit=5)]
                self.assertLessEqual(len(recs), 5)
        self.run_async(go())

    def test_watch_gets_notes_read_with_the_subscribe_answer(self):
        async def go():
            async with await corod.AsyncClient.connect(self.d.sock) as c:
                ended = [await c.sleep(0) for _ in range(20)]
                await asyncio.gather(*ended)
                # their notes come right after the subscribe's answer, in the same read:
                # they must not be lost before the subscription is known
                got = [r["id"] async for r in c.watch(ended)]
                self.assertEqual(sorted(got), [t.id for t in ended])
                seen = []
                sub = await c.subscribe(ended[:3], seen.append)
                await c.hello()  # its notes have come by the time this is answered
                self.assertEqual(sorted(r["id"] for r in seen), [t.id for t in ended[:3]])
                await c.unsubscribe(sub)
                with self.assertRaises(corod.NotFound):
                    await c.unsubscribe(sub)
        self.run_async(go())

    def test_ten_thousand_awaits_on_one_connection(self):
        async def go():
            async with await corod.AsyncClient.connect(self.d.sock) as c:
                t0 = time.monotonic()
                tasks = await asyncio.gather(*(c.sleep(0.01, result=i) for i in range(10000)))
                results = await asyncio.gather(*tasks)
                self.assertEqual(results, list(range(10000)))
                # the same through submit_many: one future for the batch, handles in order
                many = await c.submit_many(corod.sleep_spec(0, result=i) for i in range(10000))
                self.assertEqual(await asyncio.gather(*many), list(range(10000)))
                with self.assertRaises(corod.BadRequest):
                    await c.submit_many([corod.sleep_spec(0), {"kind": "nope"}])
                self.assertEqual(await c.submit_many([]), [])
                self.assertLess(time.monotonic() - t0, 100)  # a sanity bound, not a speed
        self.run_async(go())


class Restart(unittest.TestCase):
    def test_a_daemon_that_goes_fails_the_awaits_with_connection_lost(self):
        d = Daemon()

        async def go():
            c = await corod.AsyncClient.connect(d.sock)
            t = await c.sleep(60)
            waiter = asyncio.ensure_future(t.result())
            await asyncio.sleep(0.1)
            d.stop(keep=True)
            with self.assertRaises(corod.ConnectionLost):
                await asyncio.wait_for(waiter, 30)
            with self.assertRaises(corod.ConnectionLost):
                await c.hello()
            await c.close()
            return t.id
        tid = asyncio.run(go())
        # the task is still there after a restart: a sleep goes on towards its deadline
        d2 = Daemon(state=d.state)
        try:
            with corod.Client(d2.sock) as c:
                self.assertEqual(c.get(tid)["state"], "running")
                c.cancel(tid)
        finally:
            d2.stop()
            shutil.rmtree(d.dir, ignore_errors=True)

    def test_blocking_client_sees_connection_lost(self):
        d = Daemon()
        c = corod.Client(d.sock, timeout=30)
        t = c.sleep(60)
        d.stop()
        with self.assertRaises(corod.ConnectionLost):
            t.result()
        c.close()


class Example(unittest.TestCase):
    def test_bridge_example_runs(self):
        d = Daemon()
        try:
            r = subprocess.run([sys.executable, os.path.join(os.path.dirname(HERE), "examples", "bridge.py"), d.sock],
                               capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE)))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("job: 0 | sleep: {'slept': 0.5} | local coroutine done", r.stdout)
            self.assertIn("a failing job raised TaskFailed: exit_status, exit code 1", r.stdout)
        finally:
            d.stop()


if __name__ == "__main__":
    COROD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
