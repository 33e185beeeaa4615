"""Connections to libvirt, and a time limit on every call.

A libvirt call to a host that stopped answering can block forever, so each runs in a
worker thread and the caller gives up after `timeout` seconds. A URI can carry a password:
what these calls say (errors, thread names) names it redacted.
"""

from __future__ import annotations

import threading
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


def open_connection(uri: str) -> libvirt.virConnect:
    """libvirt.open, with a refusal (an unknown SSH host key, a certificate from another CA)
    explained in a sentence an operator can act on. A URI that breaks the URI rule is never
    opened, even one stored before the rule: libvirt would act on its parameters first."""
    refuse_unless_allowed(uri)
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as error:
        raise HypervisorError(connection_failure(uri, describe(error))) from error


def refuse_unless_allowed(uri: str, what: str = "libvirt URI") -> None:
    """HypervisorError (saying why) unless the URI rule allows `uri`."""
    reason = uri_policy.refusal(uri, uri_policy.Policy.from_settings())
    if reason:
        raise UriRefusedError(f"vmotion does not open the {what} {redact(uri)}: {reason}")


def with_connection(uri: str, timeout: float, work: Callable[[libvirt.virConnect], T]) -> T:
    """One connection for one piece of work, closed afterwards."""

    def connect_and_work() -> T:
        conn = open_connection(uri)
        try:
            return work(conn)
        finally:
            try:
                conn.close()
            except libvirt.libvirtError:
                pass

    return call_with_timeout(connect_and_work, timeout, what=f"libvirt at {redact(uri)}", uris=(uri,))


class Connection:
    """A connection held open for a series of short calls (a monitor loop, a reconciliation)."""

    def __init__(self, uri: str, timeout: float):
        self.uri, self.timeout = uri, timeout
        self._conn: libvirt.virConnect | None = None

    def __enter__(self) -> "Connection":
        self._conn = call_with_timeout(lambda: open_connection(self.uri), self.timeout, what=self._what("libvirt"), uris=(self.uri,))
        return self

    def __exit__(self, *exc) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                call_with_timeout(conn.close, self.timeout, what=self._what("libvirt"), uris=(self.uri,))
            except HypervisorError:
                pass

    def call(self, work: Callable[[libvirt.virConnect], T], what: str, extra_seconds: float = 0) -> T:
        if self._conn is None:
            raise HypervisorError(f"not connected to {redact(self.uri)}")
        conn = self._conn
        return call_with_timeout(lambda: work(conn), self.timeout + extra_seconds, what=self._what(what), uris=(self.uri,))

    def _what(self, call: str) -> str:
        return f"{call} at {redact(self.uri)}"
