#!/usr/bin/python3
"""bench_slurm: jobs through a Slurm group against a bare loop of srun. Figures only.

On a one-node Slurm cluster brought up for the run (tests/slurm/cluster.sh, as the tests
do), each run measures, in this order and in the same command:
  - one at a time: the wall time of a job `true` from a loop of `srun --quiet true`
    (the floor), from the same loop with the options corod adds (its prolog, job name,
    --ntasks=1), and through corod (a Slurm group, submit then wait, one in flight);
  - CONC at a time: jobs/s of CONC threads each looping srun, against corod with a
    Slurm group of `parallel` CONC given N jobs at once (pipelined submits, then a wait).
Prints medians of RUNS runs and the ratios (corod over the bare loop). Needs root and
Debian's Slurm packages (scripts/deps test); says why and prints nothing else without.

usage: bench_slurm.py COROD_BINARY [--n N] [--serial S] [--conc C] [--runs R] [--json]
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "py"))
sys.path.insert(0, HERE)
import test_protocol as tp  # noqa: E402
from bench_store import arg, report  # noqa: E402


def srun_loop(cmd, n):
    """Seconds for n runs of cmd, one after another."""
    t0 = time.monotonic()
    for _ in range(n):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def srun_concurrent(cmd, n, conc):
    """Jobs/s of conc threads sharing n runs of cmd."""
    left = [n]
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    threads = [threading.Thread(target=worker) for _ in range(conc)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return n / (time.monotonic() - t0)


def corod_serial(c, n):
    t0 = time.monotonic()
    for _ in range(n):
        tid = c.call("submit", {"kind": "exec", "group": "hpc", "args": {"argv": ["true"]}})["id"]
        r = c.call("wait", {"ids": [tid], "timeout": 60})
        assert r["done"] and r["done"][0]["state"] == "succeeded", r
    return time.monotonic() - t0


def corod_concurrent(c, n):
    t0 = time.monotonic()
    ids = []
    for _ in range(n):  # pipelined: sent at once, answers read after
        c.send("submit", {"kind": "exec", "group": "hpc", "args": {"argv": ["true"]}})
    for msgid in range(c.msgid - n + 1, c.msgid + 1):
        ids.append(c.response(msgid)["id"])
    r = c.call("wait", {"ids": ids, "timeout": 600})
    assert not r["pending"] and all(t["state"] == "succeeded" for t in r["done"]), r["pending"]
    return n / (time.monotonic() - t0)


def main():
    tp.COROD = os.path.abspath(sys.argv[1])
    n, serial, conc, runs = arg("--n", 400), arg("--serial", 40), arg("--conc", 8), arg("--runs", 5)
    if os.geteuid() != 0:
        print("# bench_slurm: skipped: needs root (slurmd launches the jobs)")
        return
    tmp = tempfile.mkdtemp(prefix="corod-bench-slurm-")
    cluster = os.path.join(HERE, "..", "tests", "slurm", "cluster.sh")
    up = subprocess.run(["sh", cluster, "up", os.path.join(tmp, "c")], capture_output=True, text=True)
    if up.returncode != 0:
        print(f"# bench_slurm: skipped: {(up.stdout + up.stderr).strip()}")
        shutil.rmtree(tmp, ignore_errors=True)
        return
    conf = up.stdout.strip().split("=", 1)[1]
    os.environ["SLURM_CONF"] = conf
    prolog = os.path.join(os.path.dirname(tp.COROD), "corod-slurm-prolog")
    bare = ["srun", "--quiet", "true"]
    like = ["srun", "--quiet", "--job-name=corod-bench-1-1", f"--prolog={prolog}", "--ntasks=1", "--", "true"]
    d = tp.Daemon("--max-active", "1000000")
    figs = {k: [] for k in ("bare_ms", "like_ms", "corod_ms", "bare_jps", "corod_jps")}
    try:
        with tp.Client(d.sock) as c:
            c.s.settimeout(600)
            ex = c.call("hello").get("executors", {}).get("slurm", {})
            if not ex.get("available"):
                print(f"# bench_slurm: skipped: this corod has no Slurm groups: {ex.get('why', 'too old')}")
                return
            c.call("set_group", {"name": "hpc", "parallel": conc, "slurm": {"conf": conf}})
            srun_loop(bare, 5), corod_serial(c, 5)  # warm both up: caches, the node's first steps
            for _ in range(runs):
                figs["bare_ms"].append(srun_loop(bare, serial) / serial * 1e3)
                figs["like_ms"].append(srun_loop(like, serial) / serial * 1e3)
                figs["corod_ms"].append(corod_serial(c, serial) / serial * 1e3)
                figs["bare_jps"].append(srun_concurrent(bare, n, conc))
                figs["corod_jps"].append(corod_concurrent(c, n))
    finally:
        d.stop()
        subprocess.run(["sh", cluster, "down", os.path.join(tmp, "c")], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in figs.items()}
    report("slurm.bare_srun_ms_per_job", med["bare_ms"], "ms")
    report("slurm.srun_as_corod_runs_it_ms_per_job", med["like_ms"], "ms")
    report("slurm.corod_ms_per_job", med["corod_ms"], "ms")
    report("slurm.corod_added_wall_time", med["corod_ms"] / med["bare_ms"] - 1, "x (fraction)")
    report(f"slurm.bare_srun_jobs_per_s@{conc}", med["bare_jps"], "jobs/s")
    report(f"slurm.corod_jobs_per_s@{conc}", med["corod_jps"], "jobs/s")
    report("slurm.corod_over_bare_throughput", med["corod_jps"] / med["bare_jps"], "x")
    # Per-run ratios too: the two are measured back to back, so each run's ratio is fair.
    report("slurm.corod_added_wall_time_runs_min",
           min(c / b - 1 for c, b in zip(figs["corod_ms"], figs["bare_ms"])), "x (fraction)")
    report("slurm.corod_added_wall_time_runs_max",
           max(c / b - 1 for c, b in zip(figs["corod_ms"], figs["bare_ms"])), "x (fraction)")


if __name__ == "__main__":
    main()
