"""The scheduler process: queues periodic work for the RQ workers at set intervals.

Each app registers its periodic work from its `AppConfig.ready()` with `register_periodic`;
the scheduler command runs whatever is registered and knows no app.
"""

import importlib
import importlib.util
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

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
    (Redis restarting, say) must not end the scheduler. A Redis that does not answer a task
    is said once for that task, not with a traceback at every tick until it is back.
    """
    wait = wait or stop.wait
    redis_silent_since: dict[str, float] = {}  # by task
    while not stop.is_set():
        now = clock()
        for task in tasks:
            if now >= task.next_run:
                task.next_run = now + task.interval_seconds
                try:
                    before_each()
                    task.action()
                except (RedisConnectionError, RedisTimeoutError) as error:
                    if task.name not in redis_silent_since:
                        redis_silent_since[task.name] = clock()
                        log.warning("periodic task %s: Redis does not answer (%s); tried again at each interval", task.name, error)
                    continue
                except Exception:
                    log.exception("periodic task %s failed", task.name)
                if task.name in redis_silent_since:
                    log.warning("periodic task %s: Redis answers again after %.1f s", task.name, clock() - redis_silent_since.pop(task.name))
        next_due = min(task.next_run for task in tasks)
        wait(max(0.05, next_due - clock()))


@dataclass(frozen=True)
class RegisteredTask:
    name: str
    interval: str | float  # the name of a setting, read at each start, or seconds
    action: str  # the dotted path of a function that takes no argument

    def interval_seconds(self) -> float:
        return float(getattr(settings, self.interval) if isinstance(self.interval, str) else self.interval)


# In the order registered: apps in INSTALLED_APPS order, each app's tasks in its own order.
periodic_registry: dict[str, RegisteredTask] = {}


def register_periodic(name: str, interval: str | float, action: str) -> None:
    """Have the scheduler run `action` (a dotted path) every `interval` (a setting's name or
    seconds). Called from an app's `ready()`; a setting or function that does not exist fails
    there, as the process starts.

    The function is named, not imported: `ready()` runs in the web server too, which must not
    load the code that the scheduler's work reaches (the hypervisors' connections among it).
    """
    if isinstance(interval, str) and not hasattr(settings, interval):
        raise ImproperlyConfigured(f"periodic task {name!r}: no setting {interval}")
    if not defines(action):
        raise ImproperlyConfigured(f"periodic task {name!r}: no function {action}")
    task = RegisteredTask(name, interval, action)
    # ready() runs again when the app registry is built again (a test's override of
    # INSTALLED_APPS); only a different task under a name already taken is a mistake.
    if periodic_registry.setdefault(name, task) != task:
        raise ImproperlyConfigured(f"periodic task {name!r} is registered twice: {periodic_registry[name].action} and {action}")


def defines(dotted_path: str) -> bool:
    """Whether the module of `dotted_path` defines its last name at top level (a def, a class
    or an assignment), read from the module's source without running it. A regular expression,
    not the ast module: parsing the apps' modules cost a tenth of a process's start."""
    module_name, _, attribute = dotted_path.rpartition(".")
    try:
        spec = importlib.util.find_spec(module_name) if module_name else None
    except ModuleNotFoundError:
        return False
    if spec is None:
        return False
    if not (spec.origin or "").endswith(".py"):  # installed without its source: only running it can tell
        return hasattr(importlib.import_module(module_name), attribute)
    name = re.escape(attribute)
    binding = rf"^(?:(?:async\s+)?def\s+{name}\s*\(|class\s+{name}\b|{name}\s*[:=])"
    return re.search(binding, Path(spec.origin).read_text(), re.MULTILINE) is not None


def periodic_tasks() -> list[PeriodicTask]:
    """The registered tasks, their functions imported and their intervals read from settings now."""
    return [PeriodicTask(task.name, task.interval_seconds(), import_string(task.action)) for task in periodic_registry.values()]
