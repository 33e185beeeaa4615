"""A worker frozen while it waits for work still takes the next job (its blocking pop stays
open in Redis): housekeeping re-drives the task to an idle worker, and the frozen one, once
it wakes, finds the task taken and leaves it. Real workers and the scheduler on a Redis of
the test's own; the task runs on libvirt's test driver, which ends it without a migration."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue, Worker
from rq.job import JobStatus

from migrations_app.choices import FINAL_STATES, EventKind, TaskState
from migrations_app.engine.enqueue import JOB_TIMEOUT_SECONDS, RUN_MIGRATION
from migrations_app.models import MigrationTask
from tests import processes
from tests.processes import wait_until
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db(transaction=True)

REDRIVE_AFTER = 5



def log_of(name: str) -> str:
    return Path(f"/tmp/vmotion-test-{name}.log").read_text()


def idle_workers(redis: Redis) -> set[int]:
    return {worker.pid for worker in Worker.all(connection=redis) if worker.get_state() == "idle"}


def test_a_task_taken_by_a_frozen_worker_is_re_driven_to_an_idle_one_and_run_once(own_redis):
    redis = Redis.from_url(own_redis.url)
    names = [f"redrive-worker{index}-{os.getpid()}" for index in range(2)]
    started = []
    try:
        # The first worker blocks on the queues first, so Redis hands it the next job.
        for name in names:
            started.append(processes.start_manage(
                "rqworker", "high", "default", "low", "--worker-class", "migrations_app.engine.worker.VmotionWorker",
                log_name=name, REDIS_URL=own_redis.url,
            ))
            wait_until(lambda: started[-1].pid in idle_workers(redis), 60, f"{name} waits for work")
            time.sleep(0.5)
        frozen, other = started
        started.append(processes.start_manage(
            "scheduler", log_name=f"redrive-scheduler-{os.getpid()}", REDIS_URL=own_redis.url,
            MIGRATION_REDRIVE_AFTER=str(REDRIVE_AFTER), MIGRATION_HOUSEKEEPING_INTERVAL="0.5",
            INVENTORY_SYNC_INTERVAL="3600", EVACUATION_INTERVAL="60", SCHEDULE_INTERVAL="60", HEALTH_INTERVAL="60", BALANCING_INTERVAL="60",
        ))
        os.kill(frozen.pid, signal.SIGSTOP)

        source, destination = HostFactory(uri="test:///default"), HostFactory(uri="test:///default")
        task = MigrationTask.objects.create(vm=VirtualMachineFactory(host=source), source=source, destination=destination)
        queue = Queue(task.queue_name, connection=redis)
        job = queue.enqueue(RUN_MIGRATION, task.pk, job_id=f"migration-task-{task.pk}", job_timeout=JOB_TIMEOUT_SECONDS, result_ttl=3600)
        submitted = time.monotonic()
        wait_until(lambda: queue.count == 0, 10, "the frozen worker's open pop takes the job")
        assert job.get_status(refresh=True) == JobStatus.QUEUED

        task = wait_until(lambda: MigrationTask.objects.filter(pk=task.pk, state__in=FINAL_STATES).first(), REDRIVE_AFTER + 20, "another worker runs the task")
        assert time.monotonic() - submitted < REDRIVE_AFTER + 15
        assert task.worker.endswith(f":{other.pid}"), task.worker
        redriven = task.events.filter(kind=EventKind.INFO, message__startswith="Re-driven after")
        assert redriven.count() == 1, [event.message for event in task.events.all()]
        assert "never started it" in redriven.get().message

        events_before = list(task.events.values_list("pk", "message"))
        os.kill(frozen.pid, signal.SIGCONT)
        wait_until(lambda: f"migration task {task.pk} not run by this job" in log_of(names[0]), 30, "the woken worker sees the task taken")
        time.sleep(1)
        assert list(task.events.values_list("pk", "message")) == events_before, "the woken worker wrote to the task's timeline"
        assert task.events.filter(to_state=TaskState.CHECKING).count() == 1
        assert MigrationTask.objects.get(pk=task.pk).worker == task.worker
        assert frozen.poll() is None and other.poll() is None
    finally:
        for process in started:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
        processes.stop_all(started)
