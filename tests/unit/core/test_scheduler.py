import io
import os
import signal
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from core import scheduler
from core.scheduler import PeriodicTask, register_periodic, run_periodic
from inventory.enqueue import enqueue_sync_all


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_each_task_runs_once_per_interval_and_a_failing_one_does_not_stop_the_others():
    clock, stop, runs = FakeClock(), threading.Event(), []

    def sync():
        runs.append(("sync", clock.now))
        if clock.now >= 20:
            stop.set()

    def broken():
        raise RuntimeError("redis is restarting")

    run_periodic([PeriodicTask("sync", 10, sync), PeriodicTask("broken", 1, broken)], stop, clock=clock, wait=clock.sleep)

    assert [t for _, t in runs] == [0.0, 10.0, 20.0]


def test_a_redis_that_does_not_answer_is_said_once_per_task_and_so_is_its_return(caplog):
    from redis.exceptions import ConnectionError

    clock, stop, runs = FakeClock(), threading.Event(), []

    def enqueue():
        runs.append(clock.now)
        if clock.now < 5:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        if clock.now >= 8:
            stop.set()

    with caplog.at_level("WARNING", logger="core.scheduler"):
        run_periodic([PeriodicTask("sync", 1, enqueue)], stop, clock=clock, wait=clock.sleep)

    assert runs == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert [record.getMessage() for record in caplog.records] == [
        "periodic task sync: Redis does not answer (Error 111 connecting to 127.0.0.1:6379. Connection refused.); tried again at each interval",
        "periodic task sync: Redis answers again after 5.0 s",
    ]


# The registry: apps register their periodic work, the scheduler command runs it.

APPS_TASKS = ["inventory sync", "migration housekeeping", "evacuations", "schedules", "balancing", "balancing recommendations", "host health"]


@pytest.fixture
def registry(monkeypatch):
    """A registry of the test's own, holding what the apps registered as the process started."""
    monkeypatch.setattr(scheduler, "periodic_registry", dict(scheduler.periodic_registry))
    return scheduler.periodic_registry


@pytest.fixture
def scheduler_signals():
    """The command takes over SIGINT and SIGTERM; the test process gets its own back."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


RUNS = []


def note_the_run_and_stop_the_scheduler():
    RUNS.append("ran")
    os.kill(os.getpid(), signal.SIGTERM)  # as an operator stops it


def test_the_scheduler_says_each_registered_task_and_its_interval_read_from_settings_as_it_starts(monkeypatch, settings, scheduler_signals):
    settings.BALANCING_INTERVAL_SECONDS = 42
    seen, out = [], io.StringIO()
    monkeypatch.setattr("core.management.commands.scheduler.run_periodic", lambda tasks, stop, **options: seen.extend(tasks))

    call_command("scheduler", stdout=out)

    assert [task.name for task in seen] == APPS_TASKS
    assert out.getvalue().splitlines() == [f"scheduler: {task.name} every {task.interval_seconds:g} s" for task in seen]
    assert "scheduler: balancing every 42 s" in out.getvalue().splitlines()
    assert {task.name: task.action for task in seen}["inventory sync"] is enqueue_sync_all


def test_a_task_an_app_registers_is_run_by_the_scheduler(registry, scheduler_signals):
    registry.clear()
    RUNS.clear()
    register_periodic("note", 0.01, "tests.unit.core.test_scheduler.note_the_run_and_stop_the_scheduler")
    out = io.StringIO()
    watchdog = threading.Timer(10, os.kill, (os.getpid(), signal.SIGTERM))  # should the task never run
    watchdog.start()

    try:
        call_command("scheduler", stdout=out)
    finally:
        watchdog.cancel()

    assert RUNS == ["ran"] and out.getvalue() == "scheduler: note every 0.01 s\n"


def test_a_function_or_setting_that_does_not_exist_fails_as_it_is_registered(registry):
    with pytest.raises(ImproperlyConfigured, match="no function inventory.enqueue.enqueue_sync_everything"):
        register_periodic("sync", "INVENTORY_SYNC_INTERVAL_SECONDS", "inventory.enqueue.enqueue_sync_everything")
    with pytest.raises(ImproperlyConfigured, match="no function inventory.enqueueing.enqueue_sync_all"):
        register_periodic("sync", "INVENTORY_SYNC_INTERVAL_SECONDS", "inventory.enqueueing.enqueue_sync_all")
    with pytest.raises(ImproperlyConfigured, match="no setting INVENTORY_SYNC_INTERVAL"):
        register_periodic("sync", "INVENTORY_SYNC_INTERVAL", "inventory.enqueue.enqueue_sync_all")
    assert "sync" not in registry


def test_a_name_registered_again_for_other_work_fails_and_the_same_registration_again_is_no_change(registry):
    register_periodic("inventory sync", "INVENTORY_SYNC_INTERVAL_SECONDS", "inventory.enqueue.enqueue_sync_all")

    with pytest.raises(ImproperlyConfigured, match="registered twice"):
        register_periodic("inventory sync", "INVENTORY_SYNC_INTERVAL_SECONDS", "migrations_app.automation.schedules.tick")
    assert list(registry) == APPS_TASKS
