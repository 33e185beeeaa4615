"""Which tasks housekeeping re-drives: only one whose job a worker took from the queue and has
not started for the bound, while a worker of its queue is idle, and only once per bound. On a
Redis of the test's own, with RQ's own records of jobs and workers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from redis import Redis
from rq import Queue, SimpleWorker

from migrations_app.choices import EventKind, TaskState
from migrations_app.engine import jobs
from migrations_app.engine.enqueue import job_id
from migrations_app.models import MigrationTask
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis(own_redis, monkeypatch, settings) -> Redis:
    settings.MIGRATION_REDRIVE_AFTER_SECONDS = 30
    client = Redis.from_url(own_redis.url)
    monkeypatch.setattr("django_rq.get_queue", lambda name, **options: Queue(name, connection=client))
    return client


@pytest.fixture
def queued_task(django_capture_on_commit_callbacks):
    def submit(age: timedelta) -> MigrationTask:
        source, destination = HostFactory(), HostFactory()
        with django_capture_on_commit_callbacks(execute=True):
            task = MigrationTask.objects.create(
                vm=VirtualMachineFactory(host=source), source=source, destination=destination, created_at=timezone.now() - age,
            )
            jobs.enqueue_task(task)
        return task

    return submit


@pytest.fixture
def redrive(django_capture_on_commit_callbacks):
    def run() -> list[int]:
        with django_capture_on_commit_callbacks(execute=True):
            return jobs.redrive_stalled_jobs()

    return run


def idle_worker(redis: Redis, queue: str) -> SimpleWorker:
    worker = SimpleWorker([queue], connection=redis)
    worker.register_birth()
    worker.set_state("idle")
    return worker


def take(redis: Redis, task: MigrationTask) -> None:
    """What a worker's blocking pop does before the worker marks the job started."""
    assert redis.lrem(f"rq:queue:{task.queue_name}", 0, job_id(task)) == 1


def redrive_events(task: MigrationTask) -> list[str]:
    return list(task.events.filter(kind=EventKind.INFO, message__startswith="Re-driven").values_list("message", flat=True))


def test_a_job_taken_and_not_started_for_the_bound_is_queued_again_once(redis, queued_task, redrive):
    task = queued_task(timedelta(seconds=31))
    idle_worker(redis, task.queue_name)
    take(redis, task)

    assert redrive() == [task.pk]
    assert Queue(task.queue_name, connection=redis).job_ids == [job_id(task)]
    [message] = redrive_events(task)
    assert message.startswith("Re-driven after 31 s: a worker took this task's job from the queue but never started it")

    take(redis, task)  # taken again at once, by a worker about to start it
    assert redrive() == []
    assert len(redrive_events(task)) == 1


def test_a_job_still_in_its_queue_only_waits_for_a_worker(redis, queued_task, redrive):
    task = queued_task(timedelta(minutes=5))
    idle_worker(redis, task.queue_name)
    assert redrive() == []
    assert redrive_events(task) == []


def test_nothing_is_re_driven_within_the_bound_or_with_no_worker_idle(redis, queued_task, redrive):
    young = queued_task(timedelta(seconds=10))
    take(redis, young)
    old = queued_task(timedelta(minutes=5))
    take(redis, old)
    busy = idle_worker(redis, old.queue_name)
    busy.set_state("busy")
    assert redrive() == []

    idle_worker(redis, old.queue_name)
    assert redrive() == [old.pk]


def test_a_waiting_task_without_a_slot_is_not_run_by_a_stale_job(redis, queued_task, monkeypatch):
    """A job of the task's that was re-driven meanwhile may find it waiting for a slot: only a
    granted slot's own job runs it."""
    from migrations_app.engine import run

    task = queued_task(timedelta(0))
    MigrationTask.objects.filter(pk=task.pk).update(state=TaskState.WAITING, slot_granted_at=None)
    monkeypatch.setattr(run, "_check_then_migrate", lambda *args: pytest.fail("a waiting task without a slot was run"))
    run.run_task(task.pk, queue_granted=lambda tasks: None)
    assert MigrationTask.objects.get(pk=task.pk).state == TaskState.WAITING
    assert not task.events.exists()


def test_a_job_queues_on_its_worker_s_connection(own_redis):
    """The worker's connection waits out a Redis outage; one of django_rq's own would not."""
    from rq.job import Job, _job_stack

    from migrations_app.engine.enqueue import queue_for

    worker_connection = Redis.from_url(own_redis.url)
    _job_stack.push(Job.create("tests.queue_jobs.nap", args=(0, "x"), connection=worker_connection))
    try:
        assert queue_for("high").connection is worker_connection
    finally:
        _job_stack.pop()
    assert queue_for("high").connection is not worker_connection
