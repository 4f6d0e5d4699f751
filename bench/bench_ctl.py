#!/usr/bin/python3
"""bench_ctl: coroctl as people and scripts use it, over a big history. Figures only.

`coroctl list --limit N` over a store of N ended jobs (RECORDS, written straight into the
database as a day of real work would leave them: commands, names, three groups, exit
codes, one in ten failed), in each output form — the table a terminal gets (forced with
--format table), the tab-separated lines a pipe gets, and --json — timed from exec to the
first line on stdout and to the end; and `list --newest --limit 50` (what the shell
completions ask for). Medians of RUNS runs, each after one warm-up. The per-job cost of
`coroctl add` against task-spooler's `tsp` is bench_exec's (exec.corod_coroctl_add_jobs_per_s,
exec.tsp_jobs_per_s).

usage: bench_ctl.py COROD_BINARY COROCTL_BINARY [--records N] [--runs R] [--json]
"""
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

import msgpack

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_protocol as tp  # noqa: E402
from bench_store import arg, report  # noqa: E402

def start(corod, state, sock):
    p = subprocess.Popen([corod, "--socket", sock, "--state-dir", state], stderr=subprocess.DEVNULL)
    while True:
        try:
            with tp.Client(sock) as c:
                c.call("hello")
            return p
        except OSError:
            if p.poll() is not None:
                raise RuntimeError("corod exited")
            time.sleep(0.005)


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=300)


COMMANDS = [["make", "-j4", "all"], ["rsync", "-a", "/srv/data/", "backup:/srv/data/"],
            ["python3", "train.py", "--epochs", "20", "--lr", "0.001"], ["ffmpeg", "-i", "in.mov", "out.mp4"],
            ["sh", "-c", "./nightly.sh > /var/log/nightly.log 2>&1"]]


def fill(state_db, n):
    db = sqlite3.connect(state_db)
    now = time.time()
    groups = ["default", "render", "nightly"]

    def rows():
        for i in range(1, n + 1):
            argv = COMMANDS[i % len(COMMANDS)]
            failed = i % 10 == 0
            start_t = now - (n - i) * 0.5
            dur = 0.5 + (i % 37)
            outcome = {"exit_code": 1 if failed else 0, "pid": 1000 + i, "duration": dur, "user_time": dur / 2,
                       "system_time": 0.01, "max_rss_kib": 4096, "stdout_bytes": 120, "stderr_bytes": 0}
            if failed:
                outcome.update(code="exit_status", message="exited with status 1")
            yield (i, "exec", f"job-{i % 500}" if i % 3 else None, groups[i % 3],
                   msgpack.packb({"kind": "exec", "args": {"argv": argv}}), " ".join(argv),
                   3 if failed else 2, 1, start_t - 1, start_t, start_t + dur, msgpack.packb(outcome), 120)
    with db:
        db.executemany("INSERT INTO tasks(id, owner, kind, name, grp, spec, command, state, attempts, created_at,"
                       " started_at, finished_at, outcome, out_bytes) VALUES(?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       rows())
    db.close()


def time_list(coroctl, sock, args):
    """Seconds from exec to the first line on stdout, and to the end."""
    t0 = time.monotonic()
    p = subprocess.Popen([coroctl, "--socket", sock, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env=dict(os.environ, COLUMNS="160", NO_COLOR="1"))
    first = None
    lines = 0
    for line in p.stdout:
        if first is None:
            first = time.monotonic() - t0
        lines += 1
    p.wait()
    total = time.monotonic() - t0
    assert p.returncode == 0, args
    return first or total, total, lines


def main():
    corod, coroctl = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    n, runs = arg("--records", 100000), arg("--runs", 5)
    d = tempfile.mkdtemp(prefix="corod-bench-ctl-")
    state, sock = os.path.join(d, "state"), os.path.join(d, "corod.sock")
    try:
        stop(start(corod, state, sock))  # makes the schema
        fill(os.path.join(state, "corod.db"), n)
        p = start(corod, state, sock)
        try:
            forms = {"table": ["--format", "table"], "tsv": ["--format", "tsv"], "json": ["--json"]}
            for form, extra in forms.items():
                firsts, totals = [], []
                for r in range(runs + 1):
                    first, total, lines = time_list(coroctl, sock, ["list", "--limit", str(n), *extra])
                    if r:  # the first run warms the page cache
                        firsts.append(first)
                        totals.append(total)
                report(f"ctl.list_{n}_{form}.first_line_ms", statistics.median(firsts) * 1e3, "ms")
                report(f"ctl.list_{n}_{form}.total_ms", statistics.median(totals) * 1e3, f"ms ({lines} lines)")
            comp = [time_list(coroctl, sock, ["list", "--newest", "--limit", "50", "--format", "tsv"])[1]
                    for _ in range(runs)]
            report("ctl.list_newest_50_ms", statistics.median(comp) * 1e3, "ms (what completions ask)")
        finally:
            stop(p)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
