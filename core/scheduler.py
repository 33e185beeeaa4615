"""The scheduler process: queues periodic work for the RQ workers at set intervals."""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class PeriodicTask:
    name: str
    interval_seconds: float
    action: Callable[[], object]
    next_run: float = 0.0


def run_periodic(
    tasks: list[PeriodicTask], stop: threading.Event, clock=time.monotonic, wait=None, before_each: Callable[[], object] = lambda: None
) -> None:
    """Run each task whenever its interval has passed, until `stop` is set; `before_each`
    runs before each task's turn.

    A task that raises is logged and tried again at its next interval: one bad tick
    (Redis restarting, say) must not end the scheduler.
    """
    wait = wait or stop.wait
    while not stop.is_set():
        now = clock()
        for task in tasks:
            if now >= task.next_run:
                task.next_run = now + task.interval_seconds
                try:
                    before_each()
                    task.action()
                except Exception:
                    log.exception("periodic task %s failed", task.name)
        next_due = min(task.next_run for task in tasks)
        wait(max(0.05, next_due - clock()))
