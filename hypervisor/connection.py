"""Connections to libvirt, and a time limit on every call.

A libvirt call to a host that stopped answering can block forever, so each runs in a
worker thread and the caller gives up after `timeout` seconds. A URI can carry a password:
what these calls say (errors, thread names) names it redacted.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import libvirt

from . import uri_policy
from .errors import HypervisorError, HypervisorTimeout, UriRefusedError, connection_failure
from .uris import redact, redact_text

T = TypeVar("T")

# libvirt prints every error to stderr unless a handler takes it; ours are raised instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def call_with_timeout(func: Callable[[], T], timeout: float, what: str, uris: tuple[str, ...] = ()) -> T:
    """Run `func`, turning libvirt errors into HypervisorError and a hang into HypervisorTimeout.

    `what` names the call in messages; libvirt's message is passed on with `uris` redacted.
    """
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
            raise hypervisor_error(error, *uris)
        raise error  # type: ignore[misc]
    return result["value"]  # type: ignore[return-value]


def describe(error: libvirt.libvirtError, *uris: str) -> str:
    """libvirt's message, which may quote a URI it was given, with each of `uris` redacted."""
    text = (error.get_error_message() or str(error)).strip()
    for uri in uris:
        text = redact_text(text, uri)
    return text


def hypervisor_error(error: libvirt.libvirtError, *uris: str) -> HypervisorError:
    """Our error for libvirt's. Chained to it (for a traceback) unless libvirt's own words held
    a secret, which a logged traceback would then print."""
    shown = HypervisorError(describe(error, *uris))
    if str(shown) == describe(error):
        shown.__cause__ = error
    return shown


def open_connection(uri: str, timeout: float | None = None) -> libvirt.virConnect:
    """libvirt.open, with a refusal (an unknown SSH host key, a certificate from another CA)
    explained in a sentence an operator can act on. A URI that breaks the URI rule is never
    opened, even one stored before the rule: libvirt would act on its parameters first.

    With `timeout`, the caller's limit: while an earlier opening of `uri` has gone unanswered
    for longer than that, this one is not tried (it would only wait behind a daemon that has
    stopped answering) and fails at once, saying so."""
    refuse_unless_allowed(uri)
    if timeout is not None:
        waiting = _openings.oldest(uri)
        if waiting is not None and waiting > timeout:
            raise HypervisorTimeout(
                f"libvirt at {redact(uri)} did not answer within {timeout:g} s (not asked again: a connection "
                f"asked for {waiting:.0f} s ago is still unanswered)"
            )
    with _openings.opening(uri):
        try:
            return libvirt.open(uri)
        except libvirt.libvirtError as error:
            raise HypervisorError(connection_failure(uri, describe(error))) from error


class _Openings:
    """Connections being opened, by URI: one that never returns marks its daemon as silent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: dict[str, dict[int, float]] = {}
        self._count = 0

    @contextlib.contextmanager
    def opening(self, uri: str):
        with self._lock:
            self._count += 1
            token = self._count
            self._started.setdefault(uri, {})[token] = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                started = self._started.get(uri, {})
                started.pop(token, None)
                if not started:
                    self._started.pop(uri, None)

    def oldest(self, uri: str) -> float | None:
        """Seconds since the oldest unanswered opening of `uri` was asked for; None if none."""
        with self._lock:
            started = list(self._started.get(uri, {}).values())
        return time.monotonic() - min(started) if started else None


_openings = _Openings()


def refuse_unless_allowed(uri: str, what: str = "libvirt URI") -> None:
    """HypervisorError (saying why) unless the URI rule allows `uri`."""
    reason = uri_policy.refusal(uri, uri_policy.Policy.from_settings())
    if reason:
        raise UriRefusedError(f"vmotion does not open the {what} {redact(uri)}: {reason}")


def with_connection(uri: str, timeout: float, work: Callable[[libvirt.virConnect], T]) -> T:
    """One connection for one piece of work, closed afterwards."""

    def connect_and_work() -> T:
        conn = open_connection(uri, timeout)
        try:
            return work(conn)
        finally:
            try:
                conn.close()
            except libvirt.libvirtError:
                pass

    return call_with_timeout(connect_and_work, timeout, what=f"libvirt at {redact(uri)}", uris=(uri,))


class Connection:
    """A connection held open for a series of short calls (a monitor loop, a reconciliation).

    A call past its deadline is abandoned on its thread; until that call returns, the next
    ones fail at once instead of each waiting out the deadline again behind it: libvirt has
    stopped answering this connection, and the caller hears so without delay."""

    def __init__(self, uri: str, timeout: float):
        self.uri, self.timeout = uri, timeout
        self._conn: libvirt.virConnect | None = None
        self._lock = threading.Lock()
        self._in_flight: dict[int, tuple[str, float, float]] = {}  # call -> (what, started, deadline)
        self._calls = 0

    def __enter__(self) -> "Connection":
        self._conn = call_with_timeout(lambda: open_connection(self.uri, self.timeout), self.timeout, what=self._what("libvirt"), uris=(self.uri,))
        return self

    def __exit__(self, *exc) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self.unanswered() is not None:
            # Closing waits for the abandoned call: leave that to a thread nobody waits for.
            threading.Thread(target=_close_quietly, args=(conn,), name=f"libvirt-close {redact(self.uri)}", daemon=True).start()
            return
        try:
            call_with_timeout(conn.close, self.timeout, what=self._what("libvirt"), uris=(self.uri,))
        except HypervisorError:
            pass

    def call(self, work: Callable[[libvirt.virConnect], T], what: str, extra_seconds: float = 0) -> T:
        if self._conn is None:
            raise HypervisorError(f"not connected to {redact(self.uri)}")
        stuck = self.unanswered()
        if stuck is not None:
            earlier, seconds = stuck
            raise HypervisorTimeout(f"{self._what(what)}: not asked, libvirt has not answered {earlier} for {seconds:.0f} s")
        conn, limit = self._conn, self.timeout + extra_seconds
        with self._lock:
            self._calls += 1
            call_id = self._calls
            started = time.monotonic()
            self._in_flight[call_id] = (what, started, started + limit)

        def tracked() -> T:
            try:
                return work(conn)
            finally:
                with self._lock:
                    self._in_flight.pop(call_id, None)

        return call_with_timeout(tracked, limit, what=self._what(what), uris=(self.uri,))

    def unanswered(self) -> tuple[str, float] | None:
        """The oldest call abandoned past its deadline that has not returned yet, as (what it
        was, seconds since it was made); None when libvirt has answered every call."""
        now = time.monotonic()
        with self._lock:
            overdue = [(started, what) for what, started, deadline in self._in_flight.values() if deadline <= now]
        if not overdue:
            return None
        started, what = min(overdue)
        return what, now - started

    def _what(self, call: str) -> str:
        return f"{call} at {redact(self.uri)}"


def _close_quietly(conn: libvirt.virConnect) -> None:
    try:
        conn.close()
    except libvirt.libvirtError:
        pass


def close_soon(conn: libvirt.virConnect, *, waiting: bool) -> None:
    """Close `conn`; where a call on it may still be waiting on the host, on a thread nobody
    waits for, as closing waits for that call."""
    if waiting:
        threading.Thread(target=_close_quietly, args=(conn,), name="libvirt-close", daemon=True).start()
    else:
        _close_quietly(conn)
