#!/usr/bin/python3
"""bench_clients: the Python package (client/python) against the floor under it. Figures
only.

- pipelined submits/s of sleep-0 tasks on one connection: corod.AsyncClient
  (submit_many, and asyncio.gather over submit(): all in flight at once, each giving a
  task handle), corod.Client (request()
  for each, then answer() for each), and a bare loop of the same Python — msgpack packed
  requests written by one thread while another reads the answers — which is the most a
  Python client can do: the package's overhead is the ratio;
- submit -> done p50 with one task in flight: AsyncClient (`await c.sleep(0)` then
  awaiting the handle, which resolves from task.done) and a bare loop (submit, then wait);
- the Node.js client (client/node, bench_node.js), the same two figures, where node and
  its npm packages are installed;
- libcorod's pipelined submits/s, from bench_ipc in the same command.

The daemon runs with --no-store, so that what is measured is the clients, not fsync.

usage: bench_clients.py BUILD_DIR [--n N] [--lat N] [--runs R] [--json]
"""
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "client", "python"))
sys.path.insert(0, HERE)
import corod  # noqa: E402
from bench_store import Corod, arg, report  # noqa: E402
import test_protocol as tp  # noqa: E402  (bench_store put tests/py on the path)

SPEC = {"kind": "sleep", "args": {"seconds": 0}}


def bare_pipelined(sock, n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    t0 = time.monotonic()

    def write():  # packed as it goes, as a client packs: what it costs is counted
        s.sendall(b"".join(msgpack.packb([0, i, "submit", [SPEC]]) for i in range(1, n + 1)))
    w = threading.Thread(target=write)
    w.start()
    u = msgpack.Unpacker(raw=False)
    got = 0
    while got < n:
        u.feed(s.recv(1 << 20))
        for m in u:
            got += 1
    dt = time.monotonic() - t0
    w.join()
    s.close()
    return n / dt


def async_pipelined(sock, n, many=True):
    async def go():
        async with await corod.AsyncClient.connect(sock) as c:
            t0 = time.monotonic()
            if many:
                tasks = await c.submit_many(SPEC for _ in range(n))
            else:
                tasks = await asyncio.gather(*(c.submit(SPEC) for _ in range(n)))
            dt = time.monotonic() - t0
            assert len(tasks) == n
            return n / dt
    return asyncio.run(go())


def async_gathered(sock, n):
    return async_pipelined(sock, n, many=False)


def sync_pipelined(sock, n):
    with corod.Client(sock) as c:
        t0 = time.monotonic()
        ids = [c.request("submit", SPEC) for _ in range(n)]  # the socket buffers them
        for m in ids:
            c.answer(m)
        return n / (time.monotonic() - t0)


def bare_latency(sock, n):
    lat = []
    with tp.Client(sock) as c:
        for _ in range(n):
            t = time.monotonic()
            i = c.call("submit", SPEC)["id"]
            c.call("wait", {"ids": [i]})
            lat.append(time.monotonic() - t)
    return statistics.median(lat) * 1e6


def async_latency(sock, n):
    async def go():
        lat = []
        async with await corod.AsyncClient.connect(sock) as c:
            for _ in range(n):
                t = time.monotonic()
                await (await c.sleep(0))
                lat.append(time.monotonic() - t)
        return statistics.median(lat) * 1e6
    return asyncio.run(go())


NODE_OK = shutil.which("node") and os.path.isdir(os.path.join(HERE, "..", "client", "node", "node_modules", "@msgpack"))


def node_figures(sock, n, lat):
    out = subprocess.run(["node", os.path.join(HERE, "bench_node.js"), sock, str(n), str(lat)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def libcorod_rate(build, n, runs):
    out = subprocess.run([os.path.join(build, "bench", "bench_ipc"), "--corod", os.path.join(build, "daemon", "corod"),
                          "--n", str(n), "--lat", "100", "--runs", str(runs), "--json"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            if d["name"] == "ipc.corod.pipelined_1conn_per_s":
                return d["value"]
    return 0.0


def main():
    build = os.path.abspath(sys.argv[1])
    tp.COROD = os.path.join(build, "daemon", "corod")
    n, lat, runs = arg("--n", 50000), arg("--lat", 2000), arg("--runs", 5)
    rates = {"bare": [], "async": [], "gathered": [], "sync": [], "node": []}
    lats = {"bare": [], "async": [], "node": []}
    # the blocking client writes every request before it reads: the daemon buffers up to
    # its message limit of them (16 MiB), far more than these
    sync_n = n
    for _ in range(runs):  # interleaved, a fresh daemon each
        for name, fn, k in (("bare", bare_pipelined, n), ("async", async_pipelined, n),
                            ("gathered", async_gathered, n), ("sync", sync_pipelined, sync_n)):
            d = Corod("--no-store")
            try:
                rates[name].append(fn(d.sock, k))
            finally:
                d.stop()
        d = Corod("--no-store")
        try:
            lats["bare"].append(bare_latency(d.sock, lat))
            lats["async"].append(async_latency(d.sock, lat))
        finally:
            d.stop()
        if NODE_OK:
            d = Corod("--no-store")
            try:
                f = node_figures(d.sock, n, lat)
                rates["node"].append(f["pipelined_per_s"])
                lats["node"].append(f["done_p50_us"])
            finally:
                d.stop()
    med = {k: statistics.median(v) for k, v in rates.items() if v}
    report("clients.python_bare_pipelined_per_s", med["bare"], "submits/s (msgpack over a socket, no package)")
    report("clients.python_async_pipelined_per_s", med["async"], "submits/s (AsyncClient.submit_many, a handle each)")
    report("clients.python_async_gathered_per_s", med["gathered"],
           "submits/s (asyncio.gather over AsyncClient.submit: an asyncio task each)")
    report("clients.python_sync_pipelined_per_s", med["sync"], f"submits/s (corod.Client, {sync_n} in flight)")
    report("clients.python_async_over_bare", med["async"] / med["bare"], "x (target >= 0.5: within 2x)")
    report("clients.python_sync_over_bare", med["sync"] / med["bare"], "x")
    report("clients.python_bare_done_p50_us", statistics.median(lats["bare"]), "us (submit, then wait)")
    report("clients.python_async_done_p50_us", statistics.median(lats["async"]), "us (await c.sleep(0), then the handle)")
    if NODE_OK:
        report("clients.node_pipelined_per_s", med["node"], "submits/s (the Node.js client, submitMany)")
        report("clients.node_done_p50_us", statistics.median(lats["node"]), "us (await sleep(0), then result())")
    else:
        print("# clients.node: skipped (no node, or no npm packages in client/node: scripts/deps test)")
    report("clients.libcorod_pipelined_per_s", libcorod_rate(build, n, 3), "submits/s (bench_ipc, same daemon build)")


if __name__ == "__main__":
    main()
