"""Puts tasks on the RQ queue of their priority once they may run."""

import django_rq
from django.db import transaction

from . import slots
from .models import MigrationTask

# Generous: the convergence policy's completion timeout ends a migration long before this.
JOB_TIMEOUT_SECONDS = 3 * 3600


def enqueue_task(task: MigrationTask) -> None:
    from .jobs import run_migration_job

    def enqueue():
        django_rq.get_queue(task.queue_name).enqueue(
            run_migration_job, task.pk, job_timeout=JOB_TIMEOUT_SECONDS, result_ttl=3600, failure_ttl=7 * 86400
        )

    transaction.on_commit(enqueue)


def request_slot(task: MigrationTask) -> slots.SlotDecision:
    decision, also_granted = slots.request_slot(task)
    for other in also_granted:
        enqueue_task(other)
    return decision


def queue_granted_tasks() -> int:
    """Grant free slots to waiting tasks, best first, and queue them. Returns how many."""
    granted = slots.grant_waiting_slots()
    for task in granted:
        enqueue_task(task)
    return len(granted)
