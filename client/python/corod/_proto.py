"""What the blocking and the asyncio clients share: where the socket is, how a request
is packed, and how a submit's options split into a task spec (PROTOCOL.md)."""
import os
from typing import Any, Dict, Iterable, Optional, Sequence, Union

import msgpack

SYSTEM_SOCKET = "/run/corod/corod.sock"

# A task spec's own fields; every other option of submit_exec goes into its args.
SPEC_FIELDS = ("name", "group", "priority", "after", "delay", "timeout", "retries", "retry_delay", "shield")
EXEC_FIELDS = ("env", "cwd", "stdin", "stdin_pipe", "grace", "output_limit", "umask", "rlimits", "memory_max",
               "pids_max", "cpu_weight", "cpu_quota", "slurm")

def default_socket() -> str:
    """The socket coroctl and libcorod use: $CORO_SOCKET; else the machine's daemon for
    root; else the user's own daemon under $XDG_RUNTIME_DIR. OSError when there is none to
    name (a user without XDG_RUNTIME_DIR: the machine's daemon is at SYSTEM_SOCKET)."""
    path = os.environ.get("CORO_SOCKET")
    if path:
        return path
    if os.geteuid() == 0:
        return SYSTEM_SOCKET
    run = os.environ.get("XDG_RUNTIME_DIR")
    if not run:
        raise OSError(f"no CORO_SOCKET and no XDG_RUNTIME_DIR: pass a socket path (the machine's daemon is "
                      f"{SYSTEM_SOCKET})")
    return os.path.join(run, "corod", "corod.sock")


def task_id(t: Any) -> int:
    return t if isinstance(t, int) else int(t.id)


def packer() -> msgpack.Packer:
    return msgpack.Packer(use_bin_type=True)


def unpacker() -> msgpack.Unpacker:
    # strict_map_key off: maps a daemon sends have string keys, but a result may not
    return msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=64 << 20)


def spec(kind: str, args: Optional[Dict[str, Any]] = None, **opts: Any) -> Dict[str, Any]:
    """A task spec from keyword options (name, group, priority, after, delay, timeout,
    retries, retry_delay, shield); `after` may hold ids or task handles. None: left out."""
    s: Dict[str, Any] = {"kind": kind}
    if args is not None:
        s["args"] = args
    for k, v in opts.items():
        if k not in SPEC_FIELDS:
            raise TypeError(f"unknown option {k!r} (a spec takes {', '.join(SPEC_FIELDS)})")
        if v is None:
            continue
        s[k] = [task_id(a) for a in v] if k == "after" else v
    return s


def exec_spec(argv: Sequence[Union[str, bytes]], **opts: Any) -> Dict[str, Any]:
    """An exec spec: argv, the job's options (env, cwd, stdin, stdin_pipe, grace,
    output_limit, umask, rlimits, memory_max, pids_max, cpu_weight, cpu_quota; slurm —
    {cpus, memory, time} in a Slurm group) and the task's. Without env and cwd the daemon gives the owner's minimal environment and home
    (coroctl, unlike the protocol, sends the caller's own)."""
    if isinstance(argv, (str, bytes)) or not argv:
        raise TypeError("argv is a non-empty list of strings, not one string")
    args: Dict[str, Any] = {"argv": list(argv)}
    rest = {}
    for k, v in opts.items():
        if k in EXEC_FIELDS:
            if v is not None:
                args[k] = v
        else:
            rest[k] = v
    return spec("exec", args, **rest)


def sleep_spec(seconds: float, result: Any = None, **opts: Any) -> Dict[str, Any]:
    args: Dict[str, Any] = {"seconds": seconds}
    if result is not None:
        args["result"] = result
    return spec("sleep", args, **opts)


def gather_spec(tasks: Iterable[Any], return_exceptions: bool = False, **opts: Any) -> Dict[str, Any]:
    args: Dict[str, Any] = {"ids": [task_id(t) for t in tasks]}
    if return_exceptions:
        args["return_exceptions"] = True
    return spec("gather", args, **opts)


def params(**kw: Any) -> Dict[str, Any]:
    """Request params without the None ones."""
    return {k: v for k, v in kw.items() if v is not None}
