"""The queue side of migrations: the jobs RQ runs, which only workers and the scheduler
import (tasks are put on the queue by `enqueue`).

The database is the source of truth. Every job is enqueued once its transaction has
committed, under the task's own job id; a task that waits for a worker but whose job
Redis lost (Redis restarted without persistence) is queued again by housekeeping, and so is
one whose job a worker took but never started (a worker frozen while it waited for work:
Redis hands it the job all the same).
"""

from __future__ import annotations

from datetime import timedelta

import django_rq
from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from rq import Worker
from rq.job import JobStatus
from rq.worker import WorkerStatus

from migrations_app.engine import run as engine
from migrations_app.engine import recovery
from migrations_app.engine import slots
from migrations_app.choices import EventKind, TaskState
from migrations_app.engine.enqueue import JOB_TIMEOUT_SECONDS, enqueue_task, enqueue_tasks, job_id  # noqa: F401  their home before `enqueue`
from migrations_app.models import MigrationTask

# A task younger than this may still be on its way to Redis (its transaction just committed).
LOST_JOB_GRACE = timedelta(seconds=5)
_JOB_ALIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


def run_migration_job(task_id: int) -> None:
    try:
        engine.run_task(task_id, queue_granted=enqueue_tasks)
    finally:
        hand_on_slots()  # the slot this task held, or a place in line, may let others run


def hand_on_slots() -> int:
    """Grant free slots to waiting tasks, best first, and queue them. Returns how many."""
    granted = slots.grant_waiting_slots()
    enqueue_tasks(granted)
    return len(granted)


def requeue_lost_jobs() -> list[int]:
    """Queue again every task that waits for a worker but whose job Redis no longer has."""
    settled = timezone.now() - LOST_JOB_GRACE
    waiting_for_worker = MigrationTask.objects.filter(
        Q(state=TaskState.QUEUED, created_at__lt=settled)
        | Q(state=TaskState.WAITING, slot_granted_at__lt=settled)
    )
    requeued = []
    for task in waiting_for_worker:
        queue = django_rq.get_queue(task.queue_name)
        job = queue.fetch_job(job_id(task))
        if job is not None and job.get_status(refresh=False) in _JOB_ALIVE:
            continue
        enqueue_task(task)
        requeued.append(task.pk)
    return requeued


def redrive_stalled_jobs() -> list[int]:
    """Queue again every task whose job a worker took from the queue but has not started for
    MIGRATION_REDRIVE_AFTER, while a worker of its queue is idle: the worker that took it is
    frozen or stopped. Whichever runs the task first claims it; the other sees it taken."""
    bound = settings.MIGRATION_REDRIVE_AFTER_SECONDS
    since = timezone.now() - timedelta(seconds=bound)
    stalled = MigrationTask.objects.filter(Q(state=TaskState.QUEUED, created_at__lt=since) | Q(state=TaskState.WAITING, slot_granted_at__lt=since))
    redriven = []
    for task in stalled:
        queue = django_rq.get_queue(task.queue_name)
        job = queue.fetch_job(job_id(task))
        # A job still in its list merely waits for a worker; only a taken one can be stalled.
        if job is None or job.get_status(refresh=False) != JobStatus.QUEUED or queue.connection.lpos(queue.key, job.id) is not None:
            continue
        idle = [worker.name for worker in Worker.all(queue=queue) if worker.get_state() == WorkerStatus.IDLE]
        # Once per bound: the worker that takes the job again needs a moment to start it.
        if not idle or not queue.connection.set(f"vmotion:redriven:{job.id}", 1, nx=True, ex=max(1, int(bound))):
            continue
        waited = (timezone.now() - (task.slot_granted_at if task.state == TaskState.WAITING else task.created_at)).total_seconds()
        task.log(
            EventKind.INFO,
            f"Re-driven after {waited:.0f} s: a worker took this task's job from the queue but never started it (stopped or frozen); "
            f"it is queued again for an idle worker. Should the first worker wake, it finds the task taken and leaves it.",
        )
        enqueue_task(task)
        redriven.append(task.pk)
    return redriven


def housekeeping_job() -> dict:
    """End tasks whose worker is gone, queue again what Redis lost or a stalled worker holds,
    hand free slots on."""
    return {
        "reconciled": recovery.reconcile_orphaned_tasks(),
        "settled": recovery.settle_unconfirmed_tasks(),
        "requeued": requeue_lost_jobs(),
        "redriven": redrive_stalled_jobs(),
        "queued": hand_on_slots(),
    }
