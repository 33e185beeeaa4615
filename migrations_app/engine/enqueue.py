"""Putting migration tasks on RQ, from any process: the pages, the API and the command line
submit, workers and housekeeping run. The job is named by its dotted path, not imported: it
drives libvirt, and the web server, which holds no hypervisor credentials, never loads that
code. Every job is enqueued once its transaction has committed, under the task's own job id.
"""

from __future__ import annotations

import django_rq
from django.db import transaction
from rq import Queue
from rq.job import get_current_job

from migrations_app.models import MigrationTask

# The job, by the name RQ stores with each queued job (renaming it strands those queued).
RUN_MIGRATION = "migrations_app.engine.jobs.run_migration_job"
# Generous: the convergence policy's completion timeout ends a migration long before this.
JOB_TIMEOUT_SECONDS = 3 * 3600


def job_id(task: MigrationTask) -> str:
    return f"migration-task-{task.pk}"


def queue_for(name: str) -> Queue:
    """The queue `name`; in a job, on its worker's connection, which rides out a Redis outage
    (core.redis_outage): a migration that ends while Redis restarts still queues what it granted."""
    job = get_current_job()
    return django_rq.get_queue(name, connection=job.connection) if job is not None else django_rq.get_queue(name)


def enqueue_task(task: MigrationTask) -> None:
    """Queue the task on the queue of its priority once the current transaction commits."""

    def enqueue() -> None:
        queue_for(task.queue_name).enqueue(
            RUN_MIGRATION, task.pk,
            job_id=job_id(task), job_timeout=JOB_TIMEOUT_SECONDS, result_ttl=3600, failure_ttl=7 * 86400,
        )

    transaction.on_commit(enqueue)


def enqueue_tasks(tasks: list[MigrationTask]) -> None:
    for task in tasks:
        enqueue_task(task)
