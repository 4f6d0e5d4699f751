"""Typed errors: one class per error code of the protocol (PROTOCOL.md, "Error codes")."""
from typing import Any, Dict, Optional


class CorodError(Exception):
    """The daemon answered with an error: `code`, `message`, and the rest of the error map
    in `details` (a task's error carries more: exit_code, signal, dependency...)."""

    code = "error"

    def __init__(self, message: str, code: Optional[str] = None, details: Optional[Dict[str, Any]] = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class BadRequest(CorodError):
    code = "bad_request"


class UnknownMethod(CorodError):
    code = "unknown_method"


class NotFound(CorodError):
    code = "not_found"


class PermissionDenied(CorodError):
    code = "permission_denied"


class TooLarge(CorodError):
    code = "too_large"


class QuotaExceeded(CorodError):
    code = "quota_exceeded"


class InvalidState(CorodError):
    code = "invalid_state"


class ShuttingDown(CorodError):
    code = "shutting_down"


class Internal(CorodError):
    code = "internal"


class Unavailable(CorodError):
    code = "unavailable"


class ConnectionLost(CorodError):
    """The connection closed (the daemon stopped or restarted, or dropped this client)
    with requests unanswered. Connect again: a task's record survives a restart."""

    code = "connection_lost"


class TaskFailed(CorodError):
    """A task awaited through a handle ended `failed` or `cancelled`: `code` and `message`
    are its error's (`exit_status`, `timeout`, `cancelled`...), `details` the whole error
    map, `record` the task's record."""

    def __init__(self, record: Dict[str, Any]):
        err = record.get("error") or {}
        super().__init__(err.get("message", record.get("state", "failed")), err.get("code", record.get("state")), err)
        self.record = record


class TaskCancelled(TaskFailed):
    """A task that ended `cancelled`."""


_BY_CODE = {c.code: c for c in (BadRequest, UnknownMethod, NotFound, PermissionDenied, TooLarge, QuotaExceeded,
                                InvalidState, ShuttingDown, Internal, Unavailable)}


def from_wire(err: Any) -> CorodError:
    """The exception for an error map as the daemon sends it."""
    if not isinstance(err, dict):
        return CorodError(repr(err))
    code = str(err.get("code", "error"))
    cls = _BY_CODE.get(code, CorodError)
    details = {k: v for k, v in err.items() if k not in ("code", "message")}
    return cls(str(err.get("message", "")), code, details)


def task_error(record: Dict[str, Any]) -> TaskFailed:
    return TaskCancelled(record) if record.get("state") == "cancelled" else TaskFailed(record)
