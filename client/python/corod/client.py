"""The blocking client: each call sends one request and returns its answer.

    with corod.Client() as c:
        job = c.submit_exec(["make", "-j4"], cwd="/src")
        print(job.result(timeout=600))          # or raises TaskFailed
        for chunk in c.follow(job): ...
"""
import socket
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

from . import _proto as p
from .errors import ConnectionLost, from_wire, task_error

Record = Dict[str, Any]


class Task:
    """A task of corod's, through a blocking client."""

    def __init__(self, client: "Client", task_id: int):
        self.client = client
        self.id = task_id
        self.record: Optional[Record] = None

    def __repr__(self) -> str:
        return f"<corod task {self.id}{' ' + self.record['state'] if self.record else ''}>"

    def result(self, timeout: Optional[float] = None) -> Any:
        """Its result once it has ended (TimeoutError after `timeout` seconds), or
        TaskFailed / TaskCancelled with its error."""
        r = self.client.wait([self.id], timeout=timeout)
        if not r["done"]:
            raise TimeoutError(f"task {self.id} has not ended after {timeout} s")
        self.record = r["done"][0]
        if self.record["state"] != "succeeded":
            raise task_error(self.record)
        return self.record.get("result")

    def done(self) -> bool:
        if self.record is None:
            rec = self.client.get(self.id)
            if rec["state"] in ("succeeded", "failed", "cancelled"):
                self.record = rec
        return self.record is not None

    def add_done_callback(self, fn: Callable[["Task"], Any]) -> None:
        """fn(task) when it ends: run by Client.dispatch(), which a program calls (or
        Client.run_callbacks()), since a blocking client has no loop of its own."""
        self.client._add_callback(self, fn)

    def cancel(self, message: Optional[str] = None) -> bool:
        return self.client.cancel(self.id, message)


class Client:
    """A blocking connection to corod (default: the socket coroctl uses). Errors raise
    CorodError subclasses; a lost connection ConnectionLost. Not for several threads at
    once: one client per thread."""

    def __init__(self, path: Optional[str] = None, timeout: Optional[float] = None):
        self.path = path or p.default_socket()
        self._s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._s.connect(self.path)
        except OSError:
            self._s.close()
            raise
        self._s.settimeout(timeout)
        self._u = p.unpacker()
        self._pack = p.packer().pack
        self._msgid = 0
        self._answers: Dict[int, Any] = {}  # answers read while waiting for another
        self._notes: List[Record] = []       # task.done notes, {sub, task}
        self._callbacks: Dict[int, List[Callable[[], None]]] = {}
        self._cb_sub: Optional[int] = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._s.close()

    # ---- the wire ----

    def _read_one(self) -> None:
        try:
            data = self._s.recv(1 << 16)
        except socket.timeout:
            raise
        except OSError as e:
            raise ConnectionLost(f"the connection failed: {e}") from e
        if not data:
            raise ConnectionLost("the daemon closed the connection (it stopped, or dropped this client)")
        self._u.feed(data)
        for m in self._u:
            if isinstance(m, list) and m and m[0] == 1 and len(m) == 4:
                self._answers[m[1]] = m
            elif isinstance(m, list) and m and m[0] == 2 and m[1] == "task.done":
                self._notes.extend(m[2] or [])

    def request(self, method: str, params: Optional[Dict[str, Any]] = None) -> int:
        """Send a request without waiting: its msgid, for answer()."""
        self._msgid = self._msgid % 0xFFFFFFFF + 1
        try:
            self._s.sendall(self._pack([0, self._msgid, method, [] if params is None else [params]]))
        except OSError as e:
            raise ConnectionLost(f"cannot send: {e}") from e
        return self._msgid

    def answer(self, msgid: int) -> Any:
        """The result of request `msgid` (answers may come out of order: others are kept)."""
        while msgid not in self._answers:
            self._read_one()
        m = self._answers.pop(msgid)
        if m[2] is not None:
            raise from_wire(m[2])
        return m[3]

    def call(self, method: str, params: Optional[Dict[str, Any]] = None) -> Any:
        return self.answer(self.request(method, params))

    # ---- tasks ----

    def task(self, task_id: int) -> Task:
        return Task(self, task_id)

    def submit(self, spec: Dict[str, Any]) -> Task:
        return Task(self, self.call("submit", spec)["id"])

    def submit_exec(self, argv: Sequence[Union[str, bytes]], **opts: Any) -> Task:
        return self.submit(p.exec_spec(argv, **opts))

    def sleep(self, seconds: float, result: Any = None, **opts: Any) -> Task:
        return self.submit(p.sleep_spec(seconds, result, **opts))

    def gather(self, tasks: Iterable[Any], return_exceptions: bool = False, **opts: Any) -> Task:
        return self.submit(p.gather_spec(tasks, return_exceptions, **opts))

    def _add_callback(self, t: Task, fn: Callable[[Task], Any]) -> None:
        if self._cb_sub is None:  # one subscription to every task of ours, made once
            self._cb_sub = self.call("subscribe", {"all": True})["sub"]
        self._callbacks.setdefault(t.id, []).append(lambda: fn(t))
        for rec in self.call("wait", {"ids": [t.id], "timeout": 0})["done"]:  # ended already
            self._notes.append({"sub": self._cb_sub, "task": rec})

    def dispatch(self, timeout: Optional[float] = 0) -> int:
        """Run the done-callbacks of tasks that have ended; wait up to `timeout` seconds
        for one (None: until one). How many ran."""
        if not self._notes and timeout != 0:
            old = self._s.gettimeout()
            self._s.settimeout(timeout)
            try:
                self._read_one()
            except socket.timeout:
                pass
            finally:
                self._s.settimeout(old)
        ran = 0
        notes, self._notes = self._notes, []
        for n in notes:
            rec = n.get("task") or {}
            for cb in self._callbacks.pop(rec.get("id"), []):
                ran += 1
                cb()
        return ran

    # ---- the methods ----

    def hello(self, client: Optional[str] = "corod-python") -> Dict[str, Any]:
        return self.call("hello", p.params(client=client))

    def cancel(self, task: Any, message: Optional[str] = None) -> bool:
        return self.call("cancel", p.params(id=p.task_id(task), message=message))["cancelled"]

    def get(self, task: Any) -> Record:
        return self.call("get", {"id": p.task_id(task)})

    def list(self, **filters: Any) -> Iterator[Record]:
        after = None
        while True:
            page = self.call("list", p.params(after=after, **filters))
            yield from page["tasks"]
            after = page.get("next")
            if not after:
                return

    def wait(self, tasks: Iterable[Any], mode: Optional[str] = None, timeout: Optional[float] = None) -> Dict[str, Any]:
        return self.call("wait", p.params(ids=[p.task_id(t) for t in tasks], mode=mode, timeout=timeout))

    def subscribe(self, tasks: Optional[Iterable[Any]] = None) -> int:
        return self.call("subscribe", {"ids": [p.task_id(t) for t in tasks]} if tasks is not None else {"all": True})["sub"]

    def unsubscribe(self, sub: int) -> None:
        self.call("unsubscribe", {"sub": sub})

    def notifications(self) -> List[Record]:
        """task.done notes read so far ({sub, task}), taken."""
        notes, self._notes = self._notes, []
        return notes

    def output(self, task: Any, stream: str = "stdout", offset: int = 0, max: Optional[int] = None,
               wait: Optional[float] = None) -> Dict[str, Any]:
        return self.call("output", p.params(id=p.task_id(task), stream=stream, offset=offset, max=max, wait=wait))

    def follow(self, task: Any, stream: str = "stdout") -> Iterator[bytes]:
        off = 0
        while True:
            r = self.output(task, stream, off, wait=30)
            if r["data"]:
                yield r["data"]
            off = r["next"]
            if r["eof"]:
                return

    def send(self, task: Any, data: Union[bytes, str] = b"", eof: bool = False) -> int:
        return self.call("send", p.params(id=p.task_id(task), data=data or None, eof=eof or None))["written"]

    def signal(self, task: Any, signal: Union[int, str]) -> None:
        self.call("signal", {"id": p.task_id(task), "signal": signal})

    def edit(self, task: Any, **changes: Any) -> Record:
        return self.call("edit", p.params(id=p.task_id(task), **changes))

    def spec(self, task: Any) -> Dict[str, Any]:
        return self.call("spec", {"id": p.task_id(task)})["spec"]

    def set_group(self, name: str, **settings: Any) -> None:
        self.call("set_group", p.params(name=name, **settings))

    def remove_group(self, name: str) -> None:
        self.call("remove_group", {"name": name})

    def groups(self) -> List[Dict[str, Any]]:
        return self.call("groups")["groups"]

    def clean(self, **filters: Any) -> int:
        removed, after = 0, None
        while True:
            r = self.call("clean", p.params(after=after, **filters))
            removed += r["removed"]
            after = r.get("next")
            if not after:
                return removed

    def restart(self, tasks: Optional[Iterable[Any]] = None, **filters: Any) -> List[Task]:
        prm = p.params(**filters)
        if tasks is not None:
            prm["ids"] = [p.task_id(t) for t in tasks]
        made: List[Task] = []
        while True:
            r = self.call("restart", prm)
            made += [Task(self, i) for i in r["ids"]]
            if tasks is not None or not r.get("next"):
                return made
            prm["after"] = r["next"]
