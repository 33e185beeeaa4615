"""RQ entry points for inventory work, and their enqueueing. Each job is safe to run twice
and is enqueued once the transaction that asked for it has committed, so a fast worker never
reads the rows as they were before."""

from dataclasses import asdict

import django_rq
from django.db import transaction
from rq.job import JobStatus

from . import sync
from .models import Host

SYNC_ALL_JOB_ID = "inventory-sync-all"


def sync_host_job(host_id: int) -> dict:
    return asdict(sync.sync_host(Host.objects.get(pk=host_id)))


def sync_all_hosts_job() -> list[dict]:
    return [asdict(outcome) for outcome in sync.sync_all_hosts()]


def enqueue_host_sync(host: Host) -> None:
    host_id = host.pk
    transaction.on_commit(
        lambda: django_rq.get_queue("high").enqueue(sync_host_job, host_id, job_timeout=120, result_ttl=300)
    )


def enqueue_sync_all() -> None:
    """Queue a sync of every host unless one is already waiting or running."""

    def enqueue() -> None:
        queue = django_rq.get_queue("default")
        existing = queue.fetch_job(SYNC_ALL_JOB_ID)
        if existing is not None and existing.get_status(refresh=True) in (JobStatus.QUEUED, JobStatus.STARTED):
            return
        queue.enqueue(sync_all_hosts_job, job_id=SYNC_ALL_JOB_ID, job_timeout=600, result_ttl=60, failure_ttl=3600)

    transaction.on_commit(enqueue)
