#!/usr/bin/python3
"""bench_store: what the durable store costs, in one command. Figures only.

- pipelined submits/s on one connection, corod with --sync full and --sync normal,
  against the same build with --no-store (in memory), and against beanstalkd with its
  binlog fsync'd on every write (`beanstalkd -b DIR -f 0`), pipelined the same way;
- submit -> task.done p50 with one task in flight, durable (--sync full) and in memory;
- the time from exec to the first answered hello with a store of FINISHED ended and
  PENDING pending records (written straight into the database), and the daemon's RSS
  then, against an empty store's.

The client is Python (python3-msgpack), the same for every server measured: absolute
rates are the client's as much as the server's, the ratios are what to read.

usage: bench_store.py COROD_BINARY [--n N] [--runs R] [--finished N] [--pending N] [--json]
"""
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import msgpack

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
import test_protocol as tp  # noqa: E402

JSON = "--json" in sys.argv


def report(name, value, unit):
    if JSON:
        print(json.dumps({"name": name, "value": value, "unit": unit}))
    else:
        print(f"{name:<40} {value:>14,.2f}  {unit}")


def arg(flag, default):
    return int(sys.argv[sys.argv.index(flag) + 1]) if flag in sys.argv else default


class Corod:
    def __init__(self, *extra, state=None):
        self.dir = tempfile.mkdtemp(prefix="corod-bench-")
        self.state = state or os.path.join(self.dir, "state")
        self.sock = os.path.join(self.dir, "corod.sock")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([tp.COROD, "--socket", self.sock, "--state-dir", self.state,
                                      "--max-active", "10000000", *extra], stderr=subprocess.DEVNULL)
        while True:
            try:
                with tp.Client(self.sock) as c:
                    c.call("hello")
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("corod exited")
                time.sleep(0.002)
        self.ready = time.monotonic() - self.t0

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1])
        return 0

    def stop(self, keep=False):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=300)
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def pipelined(sock_path, blob, n, parse):
    """Send blob (n requests) on one connection while reading the n answers: requests/s."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    t0 = time.monotonic()
    w = threading.Thread(target=s.sendall, args=(blob,))
    w.start()
    got = parse(s, n)
    dt = time.monotonic() - t0
    w.join()
    s.close()
    assert got == n, (got, n)
    return n / dt


def corod_answers(s, n):
    u = msgpack.Unpacker()
    got = 0
    while got < n:
        data = s.recv(1 << 20)
        if not data:
            break
        u.feed(data)
        for m in u:
            assert m[2] is None, m
            got += 1
    return got


def submits(n):
    return b"".join(msgpack.packb([0, i, "submit", [{"kind": "sleep", "args": {"seconds": 3600}}]])
                    for i in range(n))


def corod_rate(mode, n, runs):
    rates = []
    for _ in range(runs):
        d = Corod(*mode)
        try:
            rates.append(pipelined(d.sock, submits(n), n, corod_answers))
        finally:
            d.stop()
    return statistics.median(rates)


def beanstalk_answers(s, n):
    buf, got = b"", 0
    while got < n:
        data = s.recv(1 << 20)
        if not data:
            break
        buf += data
        lines = buf.split(b"\r\n")
        buf = lines.pop()
        for line in lines:
            assert line.startswith(b"INSERTED"), line
            got += 1
    return got


def beanstalk_rate(n, runs):
    exe = shutil.which("beanstalkd")
    if not exe:
        return None
    rates = []
    for _ in range(runs):
        d = tempfile.mkdtemp(prefix="beanstalkd-bench-")
        sock = os.path.join(d, "b.sock")
        p = subprocess.Popen([exe, "-l", f"unix:{sock}", "-b", os.path.join(d, "binlog"), "-f", "0"],
                             stderr=subprocess.DEVNULL)
        os.makedirs(os.path.join(d, "binlog"), exist_ok=True)
        try:
            while not os.path.exists(sock):
                time.sleep(0.002)
            time.sleep(0.05)
            blob = b"put 0 0 3600 5\r\nsleep\r\n" * n
            rates.append(pipelined(sock, blob, n, beanstalk_answers))
        finally:
            p.terminate()
            p.wait()
            shutil.rmtree(d, ignore_errors=True)
    return statistics.median(rates)


def done_p50(mode, n):
    d = Corod(*mode)
    try:
        with tp.Client(d.sock) as c:
            lat = []
            for _ in range(n):
                t = time.monotonic()
                i = c.send("submit", {"kind": "sleep", "args": {"seconds": 0}})
                tid = c.response(i)["id"]
                c.call("wait", {"ids": [tid]})
                lat.append(time.monotonic() - t)
        return statistics.median(lat) * 1e6
    finally:
        d.stop()


def restart(finished, pending, runs):
    """Ready time and RSS with a big store, and an empty one's RSS."""
    empty = Corod()
    empty_rss = empty.rss_kib()
    empty.stop()
    base = Corod()
    base.stop(keep=True)
    db = sqlite3.connect(os.path.join(base.state, "corod.db"))
    spec_p = msgpack.packb({"kind": "sleep", "args": {"seconds": 86400}})
    spec_f = msgpack.packb({"kind": "sleep", "args": {"seconds": 0}})
    now = time.time()
    with db:
        db.executemany("INSERT INTO tasks(id, owner, kind, grp, spec, state, attempts, created_at, started_at,"
                       " finished_at, outcome) VALUES(?, 0, 'sleep', 'default', ?, 2, 1, ?, ?, ?, ?)",
                       ((i, spec_f, now, now, now, b"\xc0") for i in range(1, finished + 1)))
        db.executemany("INSERT INTO tasks(id, owner, kind, grp, spec, state, created_at)"
                       " VALUES(?, 0, 'sleep', 'default', ?, 0, ?)",
                       ((i, spec_p, now) for i in range(finished + 1, finished + pending + 1)))
    db.close()
    times, rss = [], []
    lists = {k: [] for k in LISTS}
    for _ in range(runs):
        d = Corod(state=base.state)
        times.append(d.ready)
        rss.append(d.rss_kib())
        with tp.Client(d.sock) as c:
            for k, q in LISTS.items():
                for _ in range(20):
                    t = time.monotonic()
                    c.call("list", q)
                    lists[k].append((time.monotonic() - t) * 1e3)
        d.stop(keep=True)
        shutil.rmtree(d.dir, ignore_errors=True)
    shutil.rmtree(base.dir, ignore_errors=True)
    return statistics.median(times), statistics.median(rss), empty_rss, {k: statistics.median(v) for k, v in lists.items()}


# A page of `list` over the big store: filters that match nothing, by an index (state,
# group) and by none (name: one window of 100,000 ids), and the newest 100.
LISTS = {
    "state_none": {"state": "failed"},
    "group_none": {"group": "nothing"},
    "name_none_window": {"name": "nothing"},
    "newest_100": {"order": "desc", "limit": 100},
}


def main():
    tp.COROD = os.path.abspath(sys.argv[1])
    n, runs = arg("--n", 100000), arg("--runs", 3)
    print(f"# store: {n} pipelined submits per run, one connection, median of {runs} runs")
    mem = corod_rate(("--no-store",), n, runs)
    full = corod_rate(("--sync", "full"), n, runs)
    normal = corod_rate(("--sync", "normal"), n, runs)
    report("store.submits_memory_per_s", mem, "/s (--no-store)")
    report("store.submits_full_per_s", full, "/s (--sync full)")
    report("store.submits_normal_per_s", normal, "/s (--sync normal)")
    report("store.full_over_memory", full / mem, "x")
    report("store.normal_over_memory", normal / mem, "x")
    bs = beanstalk_rate(n, runs)
    if bs:
        report("store.beanstalkd_fsync_puts_per_s", bs, "/s (beanstalkd -b DIR -f 0)")
        report("store.full_over_beanstalkd", full / bs, "x")
    lat = arg("--lat", 2000)
    p_mem = statistics.median(done_p50(("--no-store",), lat) for _ in range(runs))
    p_full = statistics.median(done_p50(("--sync", "full"), lat) for _ in range(runs))
    report("store.done_p50_memory_us", p_mem, "us (submit -> wait answered, one in flight)")
    report("store.done_p50_full_us", p_full, "us (the same, --sync full)")
    report("store.done_p50_full_over_memory", p_full / p_mem, "x")
    fin, pend = arg("--finished", 1000000), arg("--pending", 100000)
    if fin + pend:
        ready, rss, empty, lists = restart(fin, pend, runs)
        report("store.restart_ready_s", ready, f"s ({fin} ended + {pend} pending records)")
        report("store.restart_rss_mib", rss / 1024, "MiB (then)")
        report("store.restart_rss_over_empty", rss / empty, "x (an empty daemon's RSS)")
        if pend:
            report("store.restart_bytes_per_pending", (rss - empty) * 1024 / pend,
                   "B per pending sleep (RSS over an empty daemon's / pending)")
        for k, ms in lists.items():
            report(f"store.list_{k}_ms", ms, "ms p50, one page, over that store (round trip)")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        print(__doc__.strip())
        sys.exit(2)
    main()
