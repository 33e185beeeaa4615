"""RQ entry points for inventory work, and their enqueueing.

Every host is read by a job of its own on the `inventory` queue, which its own workers serve:
a slow or dead host (each libvirt call may wait out its timeout) never delays the others,
and a sync never waits behind migrations, which hold their workers for minutes. Each job is
safe to run twice; a host whose sync is still queued or running is not queued again; and a
job is enqueued once the transaction that asked for it has committed, so a fast worker never
reads the rows as they were before.
"""

import logging
from dataclasses import asdict

import django_rq
from django.db import transaction
from rq.job import Job, JobStatus

from . import sync
from .models import Host

log = logging.getLogger(__name__)

QUEUE = "inventory"
_PENDING = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


def sync_host_job(host_id: int) -> dict:
    host = Host.objects.select_related("cluster").get(pk=host_id)
    outcome = sync.sync_host(host)
    if host.cluster is not None:
        sync.refresh_cluster_baseline(host.cluster)  # a no-op unless the members' CPUs changed
    return asdict(outcome)


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
            [queue.prepare_data(sync_host_job, (host_id,), job_id=job_id(host_id), timeout=120, result_ttl=60, failure_ttl=3600) for host_id in due],
            pipeline=pipe,
        )
        # The id is the previous job's, whose key still expires `result_ttl` after it ended,
        # and RQ sets no expiry on a job without `ttl`, nor clears one: left alone, the new
        # job vanishes unrun if it waits in the queue longer than that.
        for host_id in due:
            pipe.persist(Job.key_for(job_id(host_id)))
        pipe.execute()
    return len(due)
