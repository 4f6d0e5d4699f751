#!/usr/bin/python3
"""asyncio_tasks: bench_tasks' workloads in Python's asyncio, for the ratio in bench/run.

  tasks.coroutine_per_s  create_task of a trivial coroutine, spawned in batches and run to
                         completion (same batching as bench_tasks)
  tasks.sleep0_per_s     create_task(asyncio.sleep(0)), same batching
  mem.task_B@N           resident bytes per Task suspended in asyncio.sleep (asyncio's
                         pending task; every asyncio task is a coroutine)
  mem.future_timer_B@N   resident bytes per Future completed by loop.call_later: the
                         closest asyncio has to a stackless wait

Each memory figure is taken in a fresh child interpreter. Uses Debian's python3 only.
Usage: asyncio_tasks.py [--json] [--runs N] [--n N] [--batch N] [--mem N,N,...]
"""
import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def trivial():
    return None


async def spawn_batches(n, batch, make):
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    done = 0
    while done < n:
        k = min(batch, n - done)
        last = None
        for _ in range(k):
            last = loop.create_task(make())
        while not last.done():  # FIFO: when the last is done, all are
            await asyncio.sleep(0)
        done += k
    return n / (time.perf_counter() - t0)


def rate(n, batch, make):
    return asyncio.run(spawn_batches(n, batch, make))


async def mem_tasks(n, kind):
    loop = asyncio.get_running_loop()
    keep = [None] * n
    base = rss()
    for i in range(n):
        if kind == "task":
            keep[i] = loop.create_task(asyncio.sleep(100000))
        else:
            fut = loop.create_future()
            loop.call_later(100000, fut.set_result, None)
            keep[i] = fut
    await asyncio.sleep(0)  # every task takes its first step and suspends
    return (rss() - base) / n


def report(args, name, value, unit):
    if args.json:
        print(json.dumps({"name": name, "value": value, "unit": unit}))
    else:
        print(f"{name:<48} {value:14.6g} {unit}")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("--batch", type=int, default=10000)
    ap.add_argument("--mem", default="100000,1000000")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(asyncio.run(mem_tasks(int(args.child[0]), args.child[1])))
        return
    if args.runs < 1 or args.n < 1 or args.batch < 1:
        ap.error("--runs, --n and --batch must be at least 1")
    sizes = [int(x) for x in args.mem.split(",") if x]

    print(f"# asyncio (Python {sys.version.split()[0]}): median of {args.runs} runs of "
          f"{args.n} tasks, in batches of {args.batch}")
    report(args, "tasks.coroutine_per_s",
           statistics.median(rate(args.n, args.batch, trivial) for _ in range(args.runs)), "tasks/s")
    report(args, "tasks.sleep0_per_s",
           statistics.median(rate(args.n, args.batch, lambda: asyncio.sleep(0))
                             for _ in range(args.runs)), "tasks/s")
    for n in sizes:
        for kind, name in (("task", "mem.task_B"), ("future", "mem.future_timer_B")):
            out = subprocess.run([sys.executable, __file__, "--child", str(n), kind],
                                 check=True, capture_output=True, text=True).stdout
            report(args, f"{name}@{n}", float(out), "bytes/task")


if __name__ == "__main__":
    main()
