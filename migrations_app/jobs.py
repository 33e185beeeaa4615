"""The queue side of migrations: putting tasks on RQ and the jobs RQ runs.

The database is the source of truth. Every job is enqueued once its transaction has
committed, under the task's own job id; a task that waits for a worker but whose job
Redis lost (Redis restarted without persistence) is queued again by housekeeping.
"""

from __future__ import annotations

from datetime import timedelta

import django_rq
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from rq.job import JobStatus

from . import engine, recovery, slots
from .choices import TaskState
from .models import MigrationTask

# Generous: the convergence policy's completion timeout ends a migration long before this.
JOB_TIMEOUT_SECONDS = 3 * 3600
# A task younger than this may still be on its way to Redis (its transaction just committed).
LOST_JOB_GRACE = timedelta(seconds=5)
_JOB_ALIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


def job_id(task: MigrationTask) -> str:
    return f"migration-task-{task.pk}"


def enqueue_task(task: MigrationTask) -> None:
    """Queue the task on the queue of its priority once the current transaction commits."""

    def enqueue() -> None:
        django_rq.get_queue(task.queue_name).enqueue(
            run_migration_job, task.pk,
            job_id=job_id(task), job_timeout=JOB_TIMEOUT_SECONDS, result_ttl=3600, failure_ttl=7 * 86400,
        )

    transaction.on_commit(enqueue)


def enqueue_tasks(tasks: list[MigrationTask]) -> None:
    for task in tasks:
        enqueue_task(task)


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
        "requeued": requeue_lost_jobs(),
        "queued": hand_on_slots(),
    }
