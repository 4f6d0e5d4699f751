#!/usr/bin/python3
"""corod tasks inside ordinary asyncio code: a job, a sleep and a local coroutine awaited
together with asyncio.gather, and a done-callback.

usage: bridge.py [SOCKET]   (default: the socket coroctl uses)"""
import asyncio
import sys

import corod


async def local_work() -> str:
    await asyncio.sleep(0.2)
    return "local coroutine done"


async def main() -> None:
    async with await corod.AsyncClient.connect(sys.argv[1] if len(sys.argv) > 1 else None) as c:
        job = await c.submit_exec(["sh", "-c", "echo hello from a corod job"], name="bridge-demo")
        nap = await c.sleep(0.5, result={"slept": 0.5})
        job.add_done_callback(lambda t: print(f"callback: task {t.id} {t.record['state']}"))
        outcome, slept, local = await asyncio.gather(job, nap, local_work())
        print("job:", outcome["exit_code"], "| sleep:", slept, "|", local)
        async for chunk in c.follow(job):
            print("its output:", chunk.decode().strip())
        try:
            await await_failing(c)
        except corod.TaskFailed as e:
            print(f"a failing job raised TaskFailed: {e.code}, exit code {e.details.get('exit_code')}")


async def await_failing(c: corod.AsyncClient) -> None:
    await (await c.submit_exec(["false"]))


if __name__ == "__main__":
    asyncio.run(main())
