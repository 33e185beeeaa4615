"""Riding out a lost database connection while a VM moves.

libvirt moves the VM whether or not vmotion can write to its database, so a connection the
database drops (a restart, a failover, an administrator terminating it) must not end the
watch of a migration: what the migration can do without (a progress sample, the heartbeat,
a look at the cancel flag) is skipped until the database answers again, and what must be
written (where the VM ended up) waits for it, up to DATABASE_OUTAGE_PATIENCE_SECONDS.
Beyond that the task is left to recovery, which ends it from libvirt's word.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

log = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)
T = TypeVar("T")


def drop_connection() -> None:
    """Close a connection the database dropped, as Django does between requests, so the next
    query opens a new one."""
    close_old_connections()


class DatabaseLink:
    """The worker's database during one migration. `noted` is told, once the database answers
    again, how long it did not (and may write that down: the database answers by then)."""

    def __init__(self, noted: Callable[[float], None]) -> None:
        self.noted = noted
        self.lost_at: float | None = None
        self.outages = 0

    def if_answering(self, operation: Callable[[], T], otherwise: T) -> T:
        """`operation`'s result, or `otherwise` while the database does not answer."""
        try:
            result = operation()
        except DATABASE_ERRORS as error:
            self._lost(error)
            return otherwise
        self._answered()
        return result

    def waiting_for_it(self, operation: Callable[[], T]) -> T:
        """`operation`'s result once the database answers, tried once a second; the error
        once it has not answered for DATABASE_OUTAGE_PATIENCE_SECONDS."""
        while True:
            try:
                result = operation()
            except DATABASE_ERRORS as error:
                self._lost(error)
                if time.monotonic() - self.lost_at > settings.DATABASE_OUTAGE_PATIENCE_SECONDS:
                    raise
                time.sleep(1)
                continue
            self._answered()
            return result

    def _lost(self, error: Exception) -> None:
        if self.lost_at is None:
            self.lost_at = time.monotonic()
            self.outages += 1
            log.warning("lost the database connection while a migration runs: %s", str(error).strip())
        drop_connection()

    def _answered(self) -> None:
        if self.lost_at is None:
            return
        seconds, self.lost_at = time.monotonic() - self.lost_at, None
        try:
            self.noted(seconds)
        except DATABASE_ERRORS as error:  # lost again at once: the next answer notes the outage
            self._lost(error)
