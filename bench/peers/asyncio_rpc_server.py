#!/usr/bin/python3
"""asyncio_rpc_server: a small msgpack-RPC task server in Python's asyncio, for bench_ipc.

It speaks the subset of corod's protocol the benchmark uses — hello, submit of
{kind: "sleep", args: {seconds}}, and subscribe {all: true} with task.done
notifications — the way a home-grown asyncio script would: one asyncio task per
submitted job, a dict of records, a streaming unpacker per connection.

usage: asyncio_rpc_server.py SOCKET_PATH
"""
import asyncio
import os
import sys
import time

import msgpack


class Server:
    def __init__(self):
        self.next_id = 1
        self.records = {}
        self.subs = []  # (writer, sub)

    def record(self, rid):
        return self.records[rid]

    async def run_sleep(self, rid, seconds):
        await asyncio.sleep(seconds)
        rec = self.records[rid]
        rec.update(state="succeeded", finished_at=time.time(), result=None)
        for w, sub in self.subs:
            w.write(msgpack.packb([2, "task.done", [{"sub": sub, "task": rec}]]))

    def handle(self, w, msg):
        _, msgid, method, params = msg
        p = params[0] if params else {}
        if method == "hello":
            return [1, msgid, None, {"protocol": 1, "server": "asyncio-peer", "pid": os.getpid()}]
        if method == "submit":
            rid = self.next_id
            self.next_id += 1
            now = time.time()
            self.records[rid] = {"id": rid, "kind": p["kind"], "state": "running", "created_at": now,
                                 "started_at": now, "finished_at": None, "attempts": 1}
            asyncio.get_running_loop().create_task(self.run_sleep(rid, float(p["args"]["seconds"])))
            return [1, msgid, None, {"id": rid}]
        if method == "subscribe":
            sub = len(self.subs) + 1
            self.subs.append((w, sub))
            return [1, msgid, None, {"sub": sub}]
        return [1, msgid, {"code": "unknown_method", "message": method}, None]

    async def conn(self, r, w):
        u = msgpack.Unpacker(raw=False)
        try:
            while data := await r.read(1 << 16):
                u.feed(data)
                for msg in u:
                    w.write(msgpack.packb(self.handle(w, msg)))
                await w.drain()
        finally:
            self.subs = [(x, s) for x, s in self.subs if x is not w]
            w.close()


async def main(path):
    s = Server()
    server = await asyncio.start_unix_server(s.conn, path)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        asyncio.run(main(sys.argv[1]))
    except KeyboardInterrupt:
        pass
