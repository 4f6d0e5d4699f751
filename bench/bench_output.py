#!/usr/bin/python3
"""bench_output: one job writes SIZE bytes to stdout as fast as it can while a client pings
the daemon every 10 ms: how fast output is captured, how long pings take meanwhile, and
the daemon's resident memory. Figures only.

usage: bench_output.py COROD_BINARY [--bytes N] [--runs R] [--json]
"""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
import test_protocol as tp  # noqa: E402


def one(size):
    d = tp.Daemon()
    try:
        with tp.Client(d.sock) as c:
            t0 = time.time()
            i = c.call("submit", {"kind": "exec", "args": {"argv": ["head", "-c", str(size), "/dev/zero"]}})["id"]
            lat, rss = [], 0
            while c.call("get", {"id": i})["state"] in ("pending", "running"):
                t = time.time()
                c.call("hello")
                lat.append(time.time() - t)
                with open(f"/proc/{d.proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS"):
                            rss = max(rss, int(line.split()[1]))
                time.sleep(0.01)
            elapsed = time.time() - t0
            assert c.call("get", {"id": i})["result"]["stdout_bytes"] == size
            return size / elapsed / 1e6, statistics.median(lat) * 1e3, max(lat) * 1e3, rss
    finally:
        d.stop()


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    tp.COROD = os.path.abspath(args.pop(0))
    size, runs, as_json = 2_000_000_000, 3, False
    while args:
        a = args.pop(0)
        if a == "--bytes":
            size = int(args.pop(0))
        elif a == "--runs":
            runs = int(args.pop(0))
        elif a == "--json":
            as_json = True
        else:
            sys.exit(__doc__)
    res = [one(size) for _ in range(runs)]
    figs = [("output.capture_MB_per_s", statistics.median(r[0] for r in res), "MB/s"),
            ("output.ping_p50_ms_while_writing", statistics.median(r[1] for r in res), "ms"),
            ("output.ping_max_ms_while_writing", statistics.median(r[2] for r in res), "ms (median of the runs' worst)"),
            ("output.daemon_max_rss_KiB", max(r[3] for r in res), "KiB (largest seen)")]
    if not as_json:
        print(f"# output: one job writes {size:,} bytes; median of {runs} runs")
    for name, value, unit in figs:
        if as_json:
            print(json.dumps({"name": name, "value": value, "unit": unit}))
        else:
            print(f"{name:<48} {value:>14,.3f} {unit}")


if __name__ == "__main__":
    main()
