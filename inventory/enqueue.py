"""Putting inventory work on its queue, from any process, and asking a worker for an answer.

The jobs are named by their dotted path, not imported: they open libvirt connections, and the
web server, which holds no hypervisor credentials, never loads that code. The jobs themselves
are in `jobs`, which only workers import. Every host is read by a job of its own on the
`inventory` queue, which its own workers serve: a slow or dead host (each libvirt call may
wait out its timeout) never delays the others, and a sync never waits behind migrations,
which hold their workers for minutes. A host whose sync is still queued or running is not
queued again; and a job is enqueued once the transaction that asked for it has committed, so
a fast worker never reads the rows as they were before.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import django_rq
from django.db import transaction
from rq import Queue, Worker
from rq.job import Job, JobStatus

from .models import Host

log = logging.getLogger(__name__)

QUEUE = "inventory"
POLL_SECONDS = 0.1
# How long a page waits for a worker's answer: an action on a host (a few libvirt calls)...
ACTION_WAIT_SECONDS = 10
# ...and a measurement of guests, each sampled for a second, eight at a time.
MEASUREMENT_WAIT_SECONDS = 5
NO_WORKER = "no inventory worker is running"
_PENDING = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}

# The jobs, by the names RQ stores with each queued job (renaming one strands those queued).
SYNC_HOST = "inventory.jobs.sync_host_job"
MEASURE_GUESTS = "inventory.jobs.measure_guests_job"
READ_HOST_CPU = "inventory.jobs.read_host_cpu_job"
SET_NAMED_CPU_BASELINE = "inventory.jobs.set_named_cpu_baseline_job"
SET_VM_CPU_TO_BASELINE = "inventory.jobs.set_vm_cpu_to_baseline_job"


def job_id(host_id: int) -> str:
    return f"inventory-sync-host-{host_id}"


def enqueue_host_sync(host: Host) -> None:
    """Read one host now (an operator asked, or an administrator changed it)."""
    host_id = host.pk
    transaction.on_commit(lambda: _enqueue([host_id]))


def enqueue_sync_all() -> None:
    """Queue a sync of every host whose previous one has finished."""
    transaction.on_commit(_enqueue_round)


def _enqueue_round() -> None:
    host_ids = list(Host.objects.values_list("pk", flat=True))
    pending = len(host_ids) - _enqueue(host_ids)
    if pending:
        # The last round has not ended: these hosts are read less often than the interval says.
        log.warning(
            "%d of %d hosts are still queued or being read since the last inventory round: "
            "run more inventory workers or a longer INVENTORY_SYNC_INTERVAL", pending, len(host_ids)
        )


def _enqueue(host_ids: list[int]) -> int:
    queue = django_rq.get_queue(QUEUE)
    ids = [job_id(host_id) for host_id in host_ids]
    previous = Job.fetch_many(ids, connection=queue.connection)
    due = [
        host_id for host_id, job in zip(host_ids, previous)
        if job is None or job.get_status(refresh=False) not in _PENDING
    ]
    with queue.connection.pipeline() as pipe:
        queue.enqueue_many(
            [queue.prepare_data(SYNC_HOST, (host_id,), job_id=job_id(host_id), timeout=120, result_ttl=60, failure_ttl=3600) for host_id in due],
            pipeline=pipe,
        )
        # The id is the previous job's, whose key still expires `result_ttl` after it ended,
        # and RQ sets no expiry on a job without `ttl`, nor clears one: left alone, the new
        # job vanishes unrun if it waits in the queue longer than that.
        for host_id in due:
            pipe.persist(Job.key_for(job_id(host_id)))
        pipe.execute()
    return len(due)


@dataclass(frozen=True)
class Answer:
    """What a worker answered within the wait, or why there is no answer (yet)."""

    value: Any = None
    done: bool = False
    why_not: str = ""


def ask(function: str, *args, key: str, wait_seconds: float, again: bool = False, keep_seconds: int = 300) -> Answer:
    """Run `function(*args)` in an inventory worker and wait at most `wait_seconds` for it.

    `key` names the question: asking again while its job is queued or running waits for that
    job instead of queueing another, and its answer is kept `keep_seconds`, so a form saved
    again a little later finds it; `again` asks afresh even so (an action, not a reading)."""
    queue = asking_queue()
    if not workers_alive(queue):
        return Answer(why_not=NO_WORKER)
    ident = _ask_id(queue, function, key)
    job = Job.fetch_many([ident], connection=queue.connection)[0]
    status = job.get_status(refresh=False) if job is not None else None
    if status not in _PENDING and (again or status != JobStatus.FINISHED):
        job = queue.enqueue(function, *args, job_id=ident, job_timeout=120, result_ttl=keep_seconds, failure_ttl=keep_seconds)
        queue.connection.persist(job.key)  # as in `_enqueue`: the previous job's expiry must not take it
    return answer_of(job, wait_seconds)


def asking_queue() -> Queue:
    return django_rq.get_queue(QUEUE)


def workers_alive(queue: Queue) -> int:
    """The workers serving the queue now: a dead one's registration outlives it a while."""
    return len(Worker.all(queue=queue))


def answer_of(job: Job, wait_seconds: float) -> Answer:
    deadline = time.monotonic() + wait_seconds
    while (status := job.get_status(refresh=True)) not in (JobStatus.FINISHED, JobStatus.FAILED) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    if status == JobStatus.FINISHED:
        return Answer(job.return_value(), done=True)
    if status == JobStatus.FAILED:
        return Answer(why_not="the inventory worker's job failed")
    if wait_seconds <= 0:  # asked without waiting: the answer is for a later reading
        return Answer(why_not="an inventory worker has been asked to measure it")
    return Answer(why_not=f"an inventory worker has not answered within {wait_seconds:g} s")


def _ask_id(queue: Queue, function: str, key: str) -> str:
    return f"{queue.name}-ask-{hashlib.sha256(f'{function}:{key}'.encode()).hexdigest()[:24]}"


def forget(function: str, key: str) -> None:
    """Drop a kept answer, so that the next question is asked afresh."""
    queue = asking_queue()
    job = Job.fetch_many([_ask_id(queue, function, key)], connection=queue.connection)[0]
    if job is not None and job.get_status(refresh=False) not in _PENDING:
        job.delete()
