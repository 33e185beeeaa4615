"""Whether a host's libvirtd still answers, asked on a thread of its own.

A frozen libvirtd (stopped, swapping, deadlocked) accepts connections and then answers
nothing; the guests' QEMU run on without it. A domain call that waits on a busy migration job
looks the same from outside, so the question asked here is about the host alone
(`getLibVersion`), on a connection of its own: only a daemon that has stopped answering leaves
it unanswered. The watch never blocks its reader: `silent_for` says how long the question
asked now has gone unanswered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import libvirt

from .connection import open_connection
from .errors import HypervisorError
from .uris import redact


class HostWatch:
    """Asks the host at `uri` a trivial question every `interval` seconds until stopped."""

    def __init__(self, uri: str, interval: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 opener: Callable[[str], libvirt.virConnect] = open_connection):
        self.uri, self.interval, self.clock, self.opener = uri, interval, clock, opener
        self._lock = threading.Lock()
        self._asked_at: float | None = None  # the question in flight, if any
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._ask_forever, name=f"libvirt-watch {redact(uri)}", daemon=True)

    def start(self) -> "HostWatch":
        self._thread.start()
        return self

    def stop(self) -> None:
        """The thread ends once its question is answered; nobody waits for it."""
        self._stop.set()

    def silent_for(self) -> float:
        """Seconds the question in flight has gone unanswered; 0 while the host answers."""
        with self._lock:
            asked_at = self._asked_at
        return 0.0 if asked_at is None else max(0.0, self.clock() - asked_at)

    def _ask_forever(self) -> None:
        conn = None
        while not self._stop.is_set():
            with self._lock:
                self._asked_at = self.clock()
            try:
                if conn is None:
                    conn = self.opener(self.uri)
                conn.getLibVersion()
            except (libvirt.libvirtError, HypervisorError):
                # A refused connection is an answer too (the daemon is down, not frozen): what
                # that means for a migration is libvirt's migrate call's to say.
                conn = _closed(conn)
            with self._lock:
                self._asked_at = None
            self._stop.wait(self.interval)
        _closed(conn)


def _closed(conn: libvirt.virConnect | None) -> None:
    if conn is not None:
        try:
            conn.close()
        except libvirt.libvirtError:
            pass
    return None
