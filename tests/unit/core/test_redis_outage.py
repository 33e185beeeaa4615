"""RQ workers and the scheduler ride out a Redis outage: real processes on a Redis of the
test's own, which the test shuts down (keeping its data, as a Redis that saves does) or freezes
for ten seconds while a worker waits for work, runs a job, and finishes one."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue, Worker
from rq.job import Job, JobStatus

from core.redis_outage import OutageRetry
from migrations_app.models import MigrationTask
from tests import processes
from tests.processes import wait_until
from tests.factories import HostFactory, VirtualMachineFactory

OUTAGE_SECONDS = 10
NAP = "tests.queue_jobs.nap"



def log_path(name: str) -> Path:
    return Path(f"/tmp/vmotion-test-{name}.log")


def start_worker(redis_url: str, name: str):
    return processes.start_manage(
        "rqworker", "high", "default", "low", "--worker-class", "migrations_app.engine.worker.VmotionWorker",
        log_name=name, REDIS_URL=redis_url,
    )


def result_of(job: Job, timeout: float = 60) -> str:
    wait_until(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, timeout, f"job {job.id} recorded as finished")
    return job.return_value(refresh=True)


def shut_down_for(server, seconds: float = OUTAGE_SECONDS) -> datetime:
    """Redis refuses connections for `seconds`, then comes back with its data; returns when."""
    server.stop()
    time.sleep(seconds)
    server.start()
    return datetime.now(UTC)


class TestOutageRetry:
    def test_a_command_waits_for_redis_to_answer_again(self):
        attempts = []

        def command():
            attempts.append(1)
            if len(attempts) < 4:
                raise RedisConnectionError("refused")
            return "OK"

        assert OutageRetry(5, poll_seconds=0.01).call_with_retry(command, lambda error: None) == "OK"
        assert len(attempts) == 4

    def test_past_its_tolerance_the_error_is_raised(self):
        clock = iter(range(0, 100, 10))

        def command():
            raise RedisConnectionError("refused")

        with pytest.raises(RedisConnectionError):
            OutageRetry(25, poll_seconds=0, clock=lambda: next(clock)).call_with_retry(command, lambda error: None)


@pytest.mark.django_db(transaction=True)
def test_a_worker_rides_out_redis_shut_down_while_idle_mid_job_and_as_a_job_ends(own_redis):
    own_redis.persist = True
    redis = Redis.from_url(own_redis.url)
    queue = Queue("default", connection=redis)
    name = f"outage-worker-{os.getpid()}"
    worker = start_worker(own_redis.url, name)
    try:
        wait_until(lambda: [w for w in Worker.all(connection=redis) if w.get_state() == "idle"], 60, "the worker waits for work")

        shut_down_for(own_redis)  # its blocking pop
        assert result_of(queue.enqueue(NAP, 0.5, "first", result_ttl=600)) == "first done"

        second = queue.enqueue(NAP, OUTAGE_SECONDS + 6, "second", result_ttl=600)
        wait_until(lambda: second.get_status(refresh=True) == JobStatus.STARTED, 30, "the second job starts")
        time.sleep(2)
        shut_down_for(own_redis)  # while the job runs
        assert result_of(second) == "second done"

        third = queue.enqueue(NAP, 3, "third", result_ttl=600)
        wait_until(lambda: third.get_status(refresh=True) == JobStatus.STARTED, 30, "the third job starts")
        back = shut_down_for(own_redis)  # the job ends 3 s into it: started, finished and its result wait for Redis
        assert result_of(third) == "third done"
        third.refresh()
        assert third.ended_at < back, "the third job did not end during the outage, so its end went untested"
        assert queue.finished_job_registry.get_job_ids() and third.id in queue.finished_job_registry.get_job_ids()

        assert result_of(queue.enqueue(NAP, 0, "fourth", result_ttl=600)) == "fourth done"
        assert worker.poll() is None, log_path(name).read_text()
        assert "Redis answers again" in log_path(name).read_text()
    finally:
        processes.stop(worker)


@pytest.mark.django_db(transaction=True)
def test_a_worker_rides_out_redis_frozen_as_a_job_ends(own_redis):
    redis = Redis.from_url(own_redis.url)
    queue = Queue("default", connection=redis)
    name = f"frozen-redis-worker-{os.getpid()}"
    worker = start_worker(own_redis.url, name)
    try:
        job = queue.enqueue(NAP, 2, "job", result_ttl=600)
        wait_until(lambda: job.get_status(refresh=True) == JobStatus.STARTED, 60, "the job starts")
        own_redis.freeze()
        time.sleep(OUTAGE_SECONDS)
        own_redis.thaw()
        assert result_of(job) == "job done"
        assert result_of(queue.enqueue(NAP, 0, "next", result_ttl=600)) == "next done"
        assert worker.poll() is None, log_path(name).read_text()
    finally:
        processes.stop(worker)


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_rides_out_redis_restarted_without_its_data_and_queues_again_after_it(own_redis):
    name = f"outage-scheduler-{os.getpid()}"
    scheduler = processes.start_manage(
        "scheduler", log_name=name, REDIS_URL=own_redis.url,
        MIGRATION_HOUSEKEEPING_INTERVAL="0.5", INVENTORY_SYNC_INTERVAL="1", EVACUATION_INTERVAL="1", SCHEDULE_INTERVAL="1",
        HEALTH_INTERVAL="1", BALANCING_INTERVAL="1",
    )
    try:
        wait_until(lambda: "scheduler:" in log_path(name).read_text(), 60, "the scheduler starts")
        time.sleep(2)
        own_redis.stop()
        # Submitted while Redis is down: its job never reached Redis.
        source, destination = HostFactory(uri="test:///default"), HostFactory(uri="test:///default")
        task = MigrationTask.objects.create(
            vm=VirtualMachineFactory(host=source), source=source, destination=destination, created_at=timezone.now() - timedelta(minutes=1),
        )
        time.sleep(OUTAGE_SECONDS)
        own_redis.start()
        queue = Queue(task.queue_name, connection=Redis.from_url(own_redis.url))
        wait_until(lambda: queue.fetch_job(f"migration-task-{task.pk}"), 30, "housekeeping queues the task's job once Redis is back")
        assert scheduler.poll() is None, log_path(name).read_text()
        # Said once the round that queued it ends.
        wait_until(lambda: "periodic task migration housekeeping: Redis answers again" in log_path(name).read_text(), 30, "the scheduler says Redis is back")
        said = log_path(name).read_text()
        assert said.count("periodic task migration housekeeping: Redis does not answer") == 1, said
    finally:
        processes.stop(scheduler)
