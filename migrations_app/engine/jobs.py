"""The queue side of migrations: the jobs RQ runs, which only workers and the scheduler
import (tasks are put on the queue by `enqueue`).

The database is the source of truth. Every job is enqueued once its transaction has
committed, under the task's own job id; a task that waits for a worker but whose job
Redis lost (Redis restarted without persistence) is queued again by housekeeping.
"""

from __future__ import annotations

from datetime import timedelta

import django_rq
from django.db.models import Q
from django.utils import timezone
from rq.job import JobStatus

from migrations_app.engine import run as engine
from migrations_app.engine import recovery
from migrations_app.engine import slots
from migrations_app.choices import TaskState
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


def housekeeping_job() -> dict:
    """End tasks whose worker is gone, queue again what Redis lost, hand free slots on."""
    return {
        "reconciled": recovery.reconcile_orphaned_tasks(),
        "settled": recovery.settle_unconfirmed_tasks(),
        "requeued": requeue_lost_jobs(),
        "queued": hand_on_slots(),
    }
