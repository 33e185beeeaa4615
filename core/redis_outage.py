"""Riding out a Redis outage in a long-running process (an RQ worker, the scheduler).

redis-py retries a command that failed for want of Redis a few times within seconds; a
Redis restarted by its supervisor, or a network blip, lasts longer. RQ's worker catches such
errors only around its blocking pop: one raised while it marks a job started or finished, or
in the heartbeat after a job, ends the worker. `OutageRetry` makes every command of a client
(and every reconnection) wait for Redis to answer again, up to a bound, so the worker's whole
loop rides out the outage; past the bound the error is raised as before and the process's
supervisor starts a fresh one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from redis import Redis
from redis.backoff import ConstantBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

log = logging.getLogger(__name__)

T = TypeVar("T")

# How often a command is tried again while Redis does not answer.
POLL_SECONDS = 0.5


class OutageRetry(Retry):
    """Tries a command again every POLL_SECONDS until Redis answers, for at most `tolerance_seconds`
    after its first failure; says once that Redis is gone and once that it is back."""

    def __init__(self, tolerance_seconds: float, poll_seconds: float = POLL_SECONDS, clock: Callable[[], float] = time.monotonic):
        # OSError: a new connection's connect() is retried with the socket's own error (refused).
        super().__init__(ConstantBackoff(poll_seconds), retries=-1, supported_errors=(ConnectionError, TimeoutError, OSError))
        self.tolerance_seconds = tolerance_seconds
        self.poll_seconds = poll_seconds
        self.clock = clock

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutageRetry) and self.tolerance_seconds == other.tolerance_seconds and self.poll_seconds == other.poll_seconds

    __hash__ = Retry.__hash__

    def call_with_retry(self, do: Callable[[], T], fail: Callable[[Exception], object]) -> T:
        first_failure = None
        while True:
            try:
                result = do()
            except self._supported_errors as error:
                fail(error)  # drops the connection; raises WatchError for a transaction to start over
                now = self.clock()
                if first_failure is None:
                    first_failure = now
                    log.warning("Redis does not answer (%s): waiting up to %g s for it", error, self.tolerance_seconds)
                if now - first_failure >= self.tolerance_seconds:
                    log.error("Redis did not answer for %g s: giving up", self.tolerance_seconds)
                    raise
                time.sleep(self.poll_seconds)
                continue
            if first_failure is not None:
                log.warning("Redis answers again after %.1f s", self.clock() - first_failure)
            return result


def ride_out_outages(client: Redis, tolerance_seconds: float) -> Redis:
    """Make `client`'s commands, those of its connections already open included, wait for
    Redis for up to `tolerance_seconds`."""
    client.set_retry(OutageRetry(tolerance_seconds))
    return client
