"""corod: a client for the corod task daemon, over its Unix socket (MessagePack-RPC,
PROTOCOL.md). `Client` blocks; `AsyncClient` is asyncio's, pipelined, with task handles
to await. Both speak every method of the protocol with keyword arguments, and raise a
CorodError subclass per error code."""
from ._proto import SYSTEM_SOCKET, default_socket, exec_spec, gather_spec, sleep_spec, spec
from .aio import AsyncClient, AsyncTask
from .client import Client, Task
from .errors import (BadRequest, ConnectionLost, CorodError, Internal, InvalidState, NotFound, PermissionDenied,
                     QuotaExceeded, ShuttingDown, TaskCancelled, TaskFailed, TooLarge, Unavailable, UnknownMethod)

__version__ = "0.1.0"
__all__ = ["AsyncClient", "AsyncTask", "Client", "Task", "default_socket", "SYSTEM_SOCKET", "spec", "exec_spec",
           "sleep_spec", "gather_spec", "CorodError", "BadRequest", "UnknownMethod", "NotFound", "PermissionDenied",
           "TooLarge", "QuotaExceeded", "InvalidState", "ShuttingDown", "Internal", "Unavailable", "ConnectionLost",
           "TaskFailed", "TaskCancelled"]
