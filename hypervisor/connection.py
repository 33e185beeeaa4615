"""Connections to libvirt, and a time limit on every call.

A libvirt call to a host that stopped answering can block forever, so each runs in a
worker thread and the caller gives up after `timeout` seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import libvirt

from .errors import HypervisorError, HypervisorTimeout
from .uris import redact

T = TypeVar("T")

# libvirt prints every error to stderr unless a handler takes it; ours are raised instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def call_with_timeout(func: Callable[[], T], timeout: float, what: str) -> T:
    """Run `func`, turning libvirt errors into HypervisorError and a hang into HypervisorTimeout."""
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["value"] = func()
        except BaseException as exc:  # handed to the caller's thread below
            result["error"] = exc

    # A daemon thread, not a pool: a call that never returns must not hold a pool slot.
    worker = threading.Thread(target=run, name=f"libvirt-call {what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise HypervisorTimeout(f"{what} did not answer within {timeout:g} s")
    if "error" in result:
        error = result["error"]
        if isinstance(error, libvirt.libvirtError):
            raise HypervisorError(describe(error)) from error
        raise error  # type: ignore[misc]
    return result["value"]  # type: ignore[return-value]


def describe(error: libvirt.libvirtError) -> str:
    return (error.get_error_message() or str(error)).strip()


def with_connection(uri: str, timeout: float, work: Callable[[libvirt.virConnect], T]) -> T:
    """One connection for one piece of work, closed afterwards."""

    def connect_and_work() -> T:
        conn = libvirt.open(uri)
        try:
            return work(conn)
        finally:
            try:
                conn.close()
            except libvirt.libvirtError:
                pass

    return call_with_timeout(connect_and_work, timeout, what=f"libvirt at {redact(uri)}")


class Connection:
    """A connection held open for a series of short calls (a monitor loop, a reconciliation)."""

    def __init__(self, uri: str, timeout: float):
        self.uri, self.timeout = uri, timeout
        self._conn: libvirt.virConnect | None = None

    def __enter__(self) -> "Connection":
        self._conn = call_with_timeout(lambda: libvirt.open(self.uri), self.timeout, what=f"libvirt at {redact(self.uri)}")
        return self

    def __exit__(self, *exc) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                call_with_timeout(conn.close, self.timeout, what=f"libvirt at {redact(self.uri)}")
            except HypervisorError:
                pass

    def call(self, work: Callable[[libvirt.virConnect], T], what: str, extra_seconds: float = 0) -> T:
        if self._conn is None:
            raise HypervisorError(f"not connected to {redact(self.uri)}")
        conn = self._conn
        return call_with_timeout(lambda: work(conn), self.timeout + extra_seconds, what=f"{what} at {redact(self.uri)}")
