#!/usr/bin/python3
"""Writes the fuzzers' seed corpus (tests/fuzz/seeds/): request sequences as a client
sends them — every method, every kind, the fields of a spec, and some of each shape of
bad input — so that fuzzing starts from the protocol rather than from random bytes.
usage: seeds.py DIR"""
import os
import sys

import msgpack


def req(i, method, params=None):
    return msgpack.packb([0, i, method, [] if params is None else [params]])


def seq(*calls):
    return b"".join(req(i + 1, m, p) for i, (m, p) in enumerate(calls))


SLEEP = {"kind": "sleep", "args": {"seconds": 0, "result": {"a": [1, 2.5, "x", None, True]}}}
SEEDS = {
    "hello": seq(("hello", {"client": "seed"})),
    "submit_wait_get": seq(("submit", SLEEP), ("wait", {"ids": [1], "timeout": 0.01}), ("get", {"id": 1})),
    "spec_fields": seq(("submit", {"kind": "sleep", "args": {"seconds": 0.001}, "name": "n", "group": "g1",
                                   "priority": -3, "delay": 0.001, "timeout": 5, "retries": 2,
                                   "retry_delay": 0.001, "shield": True, "after": [1]})),
    "gather": seq(("submit", SLEEP), ("submit", SLEEP),
                  ("submit", {"kind": "gather", "args": {"ids": [1, 2], "return_exceptions": True}}),
                  ("wait", {"ids": [3], "mode": "first_exception", "timeout": 0.01})),
    "gather_fails": seq(("submit", {"kind": "sleep", "args": {"seconds": 60}}),
                        ("submit", {"kind": "gather", "args": {"ids": [1]}}), ("cancel", {"id": 1, "message": "m"}),
                        ("wait", {"ids": [2], "timeout": 0.05})),
    "subscribe": seq(("submit", SLEEP), ("subscribe", {"ids": [1, 1]}), ("subscribe", {"all": True}),
                     ("unsubscribe", {"sub": 1}), ("submit", SLEEP)),
    "list": seq(("submit", SLEEP), ("list", {"state": "succeeded", "group": "default", "limit": 5, "after": 0})),
    "groups": seq(("set_group", {"name": "render", "parallel": 2, "paused": True, "users": [0, 1000]}),
                  ("groups", None), ("set_group", {"name": "render", "paused": False, "users": []})),
    "output": seq(("submit", SLEEP), ("output", {"id": 1, "stream": "stderr", "offset": 0, "max": 10})),
    "exec": seq(("submit", {"kind": "exec", "args": {"argv": ["true"], "env": {"A": "b"}, "cwd": "/",
                                                     "stdin": b"in", "grace": 1, "output_limit": 10}})),
    "act": seq(("set_group", {"name": "held", "paused": True}),
               ("submit", {**SLEEP, "group": "held", "delay": 0.01}),
               ("edit", {"id": 1, "name": "e", "group": "g2", "priority": -1, "delay": 0}),
               ("edit", {"id": 1, "name": ""}), ("signal", {"id": 1, "signal": "HUP"}),
               ("signal", {"id": 1, "signal": 10}), ("send", {"id": 1, "data": b"x", "eof": True}),
               ("spec", {"id": 1}), ("remove_group", {"name": "held"}),
               ("output", {"id": 1, "wait": 0.01}), ("list", {"limit": 1})),
    "unknown": seq(("nope", None), ("get", {"id": 0}), ("submit", {"kind": "warp"})),
    "wrong_shapes": msgpack.packb([1, 2, 3]) + msgpack.packb({"a": 1}) + msgpack.packb([0, 7, "get", {"id": 1}]),
    "not_utf8": req(1, "hello").replace(b"\xa5hello", b"\xa5h\xffllo"),
    "truncated": seq(("submit", SLEEP))[:-3],
    "not_msgpack": b"\xc1" + seq(("hello", None)),
    "deep": msgpack.packb([0, 1, "submit", [{"kind": "sleep", "args": {"seconds": 0, "result": [[[[[[[[1]]]]]]]]}}]]),
}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    os.makedirs(sys.argv[1], exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(sys.argv[1], name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
