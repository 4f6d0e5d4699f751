"""The asyncio client: one connection, pipelined — any number of requests in flight,
their answers matched by msgid — and task handles that resolve from `task.done`
notifications, not from polling.

    async with await corod.AsyncClient.connect() as c:
        job = await c.submit_exec(["make", "-j4"], cwd="/src")
        nap = await c.sleep(1, result="done")
        out = await asyncio.gather(job, nap, some_local_coroutine())
"""
import asyncio
from typing import Any, AsyncIterator, Callable, Dict, Iterable, List, Optional, Sequence, Union

from . import _proto as p
from .errors import ConnectionLost, CorodError, from_wire, task_error

Record = Dict[str, Any]


class AsyncTask:
    """A task of corod's. `await task` gives its result (a job's: {exit_code, duration,
    ...}) or raises TaskFailed / TaskCancelled with its error; `record` is the whole record
    once it has ended."""

    def __init__(self, client: "AsyncClient", task_id: int):
        self.client = client
        self.id = task_id
        self.record: Optional[Record] = None
        self._fut: Optional[asyncio.Future] = None

    def __repr__(self) -> str:
        return f"<corod task {self.id}{' ' + self.record['state'] if self.record else ''}>"

    def _future(self) -> asyncio.Future:
        if self._fut is None:
            self._fut = self.client._watch_task(self)
        return self._fut

    def __await__(self):
        return self._future().__await__()

    async def result(self, timeout: Optional[float] = None) -> Any:
        """Its result once it ends (asyncio.TimeoutError after `timeout` seconds)."""
        return await asyncio.wait_for(asyncio.shield(self._future()), timeout)

    def done(self) -> bool:
        return self.record is not None

    def add_done_callback(self, fn: Callable[["AsyncTask"], Any]) -> None:
        """fn(task) once it has ended, on the event loop (task.record says how)."""
        self._future().add_done_callback(lambda f: fn(self))

    async def cancel(self, message: Optional[str] = None) -> bool:
        return await self.client.cancel(self.id, message)

    async def get(self) -> Record:
        return await self.client.get(self.id)


class _Batch:
    """The answers of a batch of requests, into one future: slot() stands where a call's
    future would (_handle calls done, set_result, set_exception on it)."""

    def __init__(self, fut: asyncio.Future):
        self.fut, self.results, self.n, self.left = fut, [], 0, 0

    def slot(self) -> "_Slot":
        self.results.append(None)
        self.n += 1
        self.left += 1
        return _Slot(self, self.n - 1)

    def fail(self, e: BaseException) -> None:
        if not self.fut.done():
            self.fut.set_exception(e)


class _Slot:
    __slots__ = ("batch", "i")

    def __init__(self, batch: _Batch, i: int):
        self.batch, self.i = batch, i

    def done(self) -> bool:
        return self.batch.fut.done()

    def set_result(self, r: Any) -> None:
        b = self.batch
        b.results[self.i] = r
        b.left -= 1
        if not b.left and not b.fut.done():
            b.fut.set_result(b.results)

    def set_exception(self, e: BaseException) -> None:
        self.batch.fail(e)


class AsyncClient:
    """A connection to corod. Use AsyncClient.connect(path) (default: the socket coroctl
    uses), and close() it — or `async with`. Every protocol method is a coroutine with
    keyword arguments; errors raise CorodError subclasses (NotFound, QuotaExceeded...),
    a lost connection ConnectionLost."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._r, self._w = reader, writer
        self._msgid = 0
        self._calls: Dict[int, asyncio.Future] = {}
        self._subs: Dict[int, Callable[[Record], None]] = {}
        self._early: Dict[int, List[Record]] = {}  # notes for a sub whose answer is not handled yet
        self._done_sub: Optional[asyncio.Future] = None  # the all-tasks subscription handles rely on
        self._waiting: Dict[int, List[AsyncTask]] = {}
        self._closed: Optional[CorodError] = None
        self._out: List[bytes] = []  # requests of this turn of the loop, written in one go
        self._pack = p.packer().pack
        self._loop = asyncio.get_running_loop()
        self._reader = self._loop.create_task(self._read_loop())

    @classmethod
    async def connect(cls, path: Optional[str] = None) -> "AsyncClient":
        reader, writer = await asyncio.open_unix_connection(path or p.default_socket(), limit=1 << 24)
        return cls(reader, writer)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        self._lost(ConnectionLost("the client closed the connection"))
        self._w.close()
        try:
            await self._w.wait_closed()
        except OSError:
            pass
        self._reader.cancel()

    # ---- the wire ----

    async def _read_loop(self) -> None:
        u = p.unpacker()
        why: CorodError = ConnectionLost("the daemon closed the connection (it stopped, or dropped this client)")
        try:
            while True:
                data = await self._r.read(1 << 16)
                if not data:
                    break
                u.feed(data)
                for m in u:
                    self._handle(m)
        except asyncio.CancelledError:
            return
        except Exception as e:  # a broken stream: nothing more can be read on it
            why = ConnectionLost(f"the connection failed: {e!r}")
        self._lost(why)

    def _handle(self, m: Any) -> None:
        if not isinstance(m, list) or not m:
            return
        if m[0] == 1 and len(m) == 4:
            fut = self._calls.pop(m[1], None)
            if fut is None or fut.done():
                return
            if m[2] is not None:
                fut.set_exception(from_wire(m[2]))
            else:
                fut.set_result(m[3])
        elif m[0] == 2 and len(m) == 3 and m[1] == "task.done":
            for note in m[2] or []:
                sub, rec = note.get("sub"), note.get("task")
                handler = self._subs.get(sub)
                if handler:
                    handler(rec)
                else:  # its subscribe's answer is read but not yet handled: keep it
                    self._early.setdefault(sub, []).append(rec)

    def _lost(self, why: CorodError) -> None:
        if self._closed:
            return
        self._closed = why
        for fut in list(self._calls.values()):
            if not fut.done():
                fut.set_exception(why)
        self._calls.clear()
        for tasks in self._waiting.values():
            for t in tasks:
                if t._fut and not t._fut.done():
                    t._fut.set_exception(why)
        self._waiting.clear()
        if self._done_sub and not self._done_sub.done():
            self._done_sub.set_exception(why)

    def request(self, method: str, params: Optional[Dict[str, Any]] = None) -> asyncio.Future:
        """Send a request now; the future gets its result (pipelining: send many, then
        await them)."""
        fut = self._loop.create_future()
        if self._closed:
            fut.set_exception(self._closed)
            return fut
        self._msgid = self._msgid % 0xFFFFFFFF + 1
        self._calls[self._msgid] = fut
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(self._pack([0, self._msgid, method, [] if params is None else [params]]))
        return fut

    def _flush(self) -> None:
        if not self._out:
            return
        data, self._out = b"".join(self._out), []
        if not self._closed:
            self._w.write(data)

    async def call(self, method: str, params: Optional[Dict[str, Any]] = None) -> Any:
        fut = self.request(method, params)
        if self._w.transport.get_write_buffer_size() > (1 << 20):
            await self._w.drain()
        return await fut

    # ---- tasks ----

    def task(self, task_id: int) -> AsyncTask:
        """A handle on a task that exists (submitted earlier, or by another client)."""
        return AsyncTask(self, task_id)

    async def submit(self, spec: Dict[str, Any]) -> AsyncTask:
        """Any task spec (PROTOCOL.md, "Task specs")."""
        return AsyncTask(self, (await self.call("submit", spec))["id"])

    async def submit_many(self, specs: Iterable[Dict[str, Any]]) -> List[AsyncTask]:
        """Many specs, pipelined: all sent at once, their handles in order — with one
        future for them all, not one each (asyncio.gather over submit() makes an asyncio
        task of each). The first refusal is raised (the others may have been accepted:
        list shows them)."""
        batch = _Batch(self._loop.create_future())
        for s in specs:
            self._msgid = self._msgid % 0xFFFFFFFF + 1
            self._calls[self._msgid] = batch.slot()
            self._out.append(self._pack([0, self._msgid, "submit", [s]]))
        if batch.n == 0:
            return []
        if self._closed:
            batch.fail(self._closed)
        else:
            self._flush()
            await self._w.drain()
        return [AsyncTask(self, r["id"]) for r in await batch.fut]

    async def submit_exec(self, argv: Sequence[Union[str, bytes]], **opts: Any) -> AsyncTask:
        """Run a program (see corod._proto.exec_spec for the options)."""
        return await self.submit(p.exec_spec(argv, **opts))

    async def sleep(self, seconds: float, result: Any = None, **opts: Any) -> AsyncTask:
        return await self.submit(p.sleep_spec(seconds, result, **opts))

    async def gather(self, tasks: Iterable[Any], return_exceptions: bool = False, **opts: Any) -> AsyncTask:
        return await self.submit(p.gather_spec(tasks, return_exceptions, **opts))

    def _watch_task(self, t: AsyncTask) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        if self._closed:
            fut.set_exception(self._closed)
            return fut
        self._waiting.setdefault(t.id, []).append(t)
        t._fut = fut
        asyncio.get_running_loop().create_task(self._check_done(t))
        return fut

    async def _check_done(self, t: AsyncTask) -> None:
        """Every task of ours that ends is told on one subscription (all: true), made
        before the first handle asks; a task that had ended before is found by a wait with
        no timeout, asked after that subscription is in place."""
        try:
            if self._done_sub is None:
                self._done_sub = asyncio.get_running_loop().create_future()
                try:
                    sub = (await self.call("subscribe", {"all": True}))["sub"]
                    self._on_sub(sub, self._task_ended)
                    self._done_sub.set_result(sub)
                except CorodError as e:
                    self._done_sub.set_exception(e)
                    self._done_sub = None
                    raise
            else:
                await asyncio.shield(self._done_sub)
            r = await self.call("wait", {"ids": [t.id], "timeout": 0})
            for rec in r["done"]:
                self._task_ended(rec)
        except CorodError as e:
            if t._fut and not t._fut.done():
                t._fut.set_exception(e)

    def _on_sub(self, sub: int, handler: Callable[[Record], None]) -> None:
        self._subs[sub] = handler
        for rec in self._early.pop(sub, []):
            handler(rec)

    def _task_ended(self, rec: Record) -> None:
        for t in self._waiting.pop(rec.get("id"), []):
            t.record = rec
            if t._fut.done():
                continue
            if rec.get("state") == "succeeded":
                t._fut.set_result(rec.get("result"))
            else:
                t._fut.set_exception(task_error(rec))

    # ---- the methods ----

    async def hello(self, client: Optional[str] = "corod-python") -> Dict[str, Any]:
        return await self.call("hello", p.params(client=client))

    async def cancel(self, task: Any, message: Optional[str] = None) -> bool:
        return (await self.call("cancel", p.params(id=p.task_id(task), message=message)))["cancelled"]

    async def get(self, task: Any) -> Record:
        return await self.call("get", {"id": p.task_id(task)})

    async def list(self, **filters: Any) -> AsyncIterator[Record]:
        """Every record matching the filters (state, group, kind, name, owner, since,
        until, order, limit), page after page."""
        after = None
        while True:
            page = await self.call("list", p.params(after=after, **filters))
            for rec in page["tasks"]:
                yield rec
            after = page.get("next")
            if not after:
                return

    async def wait(self, tasks: Iterable[Any], mode: Optional[str] = None,
                   timeout: Optional[float] = None) -> Dict[str, Any]:
        return await self.call("wait", p.params(ids=[p.task_id(t) for t in tasks], mode=mode, timeout=timeout))

    async def subscribe(self, tasks: Optional[Iterable[Any]], handler: Callable[[Record], Any]) -> int:
        """handler(record) on the loop for each of these tasks as it ends (None: every task
        of yours from now on); the subscription's number, for unsubscribe."""
        prm = {"ids": [p.task_id(t) for t in tasks]} if tasks is not None else {"all": True}
        sub = (await self.call("subscribe", prm))["sub"]
        self._on_sub(sub, handler)
        return sub

    async def unsubscribe(self, sub: int) -> None:
        self._subs.pop(sub, None)
        await self.call("unsubscribe", {"sub": sub})
        self._early.pop(sub, None)

    async def watch(self, tasks: Optional[Iterable[Any]] = None) -> AsyncIterator[Record]:
        """Records as the tasks end: these, or every task of yours (root: every task)."""
        q: asyncio.Queue = asyncio.Queue()
        prm = {"ids": [p.task_id(t) for t in tasks]} if tasks is not None else {"all": True}
        sub = (await self.call("subscribe", prm))["sub"]
        self._on_sub(sub, q.put_nowait)
        left = len(prm["ids"]) if tasks is not None else None
        try:
            while left is None or left > 0:
                get = asyncio.ensure_future(q.get())
                lost = self._reader
                done, _ = await asyncio.wait({get, lost}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    raise self._closed or ConnectionLost("the connection closed")
                yield get.result()
                if left is not None:
                    left -= 1
        finally:
            self._subs.pop(sub, None)
            if not self._closed:
                try:
                    await self.call("unsubscribe", {"sub": sub})
                except CorodError:
                    pass
            self._early.pop(sub, None)  # notes that were on their way

    async def output(self, task: Any, stream: str = "stdout", offset: int = 0, max: Optional[int] = None,
                     wait: Optional[float] = None) -> Dict[str, Any]:
        """{data, next, eof}; with `wait`, answered once there are bytes or the task ends."""
        return await self.call("output", p.params(id=p.task_id(task), stream=stream, offset=offset, max=max,
                                                  wait=wait))

    async def follow(self, task: Any, stream: str = "stdout") -> AsyncIterator[bytes]:
        """A job's output as it is written, to its end, without polling."""
        off = 0
        while True:
            r = await self.output(task, stream, off, wait=30)
            if r["data"]:
                yield r["data"]
            off = r["next"]
            if r["eof"]:
                return

    async def send(self, task: Any, data: Union[bytes, str] = b"", eof: bool = False) -> int:
        """Into a running stdin_pipe job's stdin (64 KiB a call)."""
        return (await self.call("send", p.params(id=p.task_id(task), data=data or None, eof=eof or None)))["written"]

    async def signal(self, task: Any, signal: Union[int, str]) -> None:
        await self.call("signal", {"id": p.task_id(task), "signal": signal})

    async def edit(self, task: Any, **changes: Any) -> Record:
        """name, group, priority, delay of a task not yet started."""
        return await self.call("edit", p.params(id=p.task_id(task), **changes))

    async def spec(self, task: Any) -> Dict[str, Any]:
        return (await self.call("spec", {"id": p.task_id(task)}))["spec"]

    async def set_group(self, name: str, **settings: Any) -> None:
        await self.call("set_group", p.params(name=name, **settings))

    async def remove_group(self, name: str) -> None:
        await self.call("remove_group", {"name": name})

    async def groups(self) -> List[Dict[str, Any]]:
        return (await self.call("groups"))["groups"]

    async def clean(self, **filters: Any) -> int:
        removed, after = 0, None
        while True:
            r = await self.call("clean", p.params(after=after, **filters))
            removed += r["removed"]
            after = r.get("next")
            if not after:
                return removed

    async def restart(self, tasks: Optional[Iterable[Any]] = None, **filters: Any) -> List[AsyncTask]:
        """Ended tasks again, as new tasks: these, or those matching the filters."""
        prm = p.params(**filters)
        if tasks is not None:
            prm["ids"] = [p.task_id(t) for t in tasks]
        made: List[AsyncTask] = []
        while True:
            r = await self.call("restart", prm)
            made += [AsyncTask(self, i) for i in r["ids"]]
            if tasks is not None or not r.get("next"):
                return made
            prm["after"] = r["next"]
