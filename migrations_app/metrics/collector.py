"""The gauges of /metrics, read at scrape time from the database (Redis for the queues):
the database is the source of truth, so no process keeps a gauge up to date, and no gauge
goes stale when the process that set it dies."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import django_rq
from django.conf import settings
from django.db.models import Count, OuterRef, Subquery
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from redis.exceptions import RedisError

from core import metric_files
from inventory.models import Host

from migrations_app.metrics import recording as metrics
from migrations_app.engine import slots
from migrations_app.choices import TaskState
from migrations_app.models import MigrationLimits, MigrationTask, ProgressSample

log = logging.getLogger(__name__)

RUNNING_STATES = (TaskState.MIGRATING, TaskState.POST_COPY)
MIGRATION_LABELS = ["vm", "source", "destination"]


def scrape_registry() -> CollectorRegistry:
    """Everything one scrape shows: what every process recorded, and the state now."""
    registry = CollectorRegistry()
    path = metric_files.directory()
    registry.register(metric_files.ProcessFilesCollector(path) if path else metrics.REGISTRY)
    registry.register(StateCollector())
    return registry


class StateCollector:
    def collect(self) -> Iterator[Metric]:
        yield from tasks_by_state()
        yield from running_migrations()
        yield from migration_slots()
        yield from queue_depths()
        yield from inventory_syncs()


def tasks_by_state() -> Iterator[Metric]:
    counts = dict(MigrationTask.objects.order_by().values("state").annotate(tasks=Count("pk")).values_list("state", "tasks"))
    tasks = GaugeMetricFamily("vmotion_migration_tasks", "Migration tasks in each state.", labels=["state"])
    for state in TaskState.values:
        tasks.add_metric([state], counts.get(state, 0))
    yield tasks
    yield GaugeMetricFamily(
        "vmotion_migrations_in_running_phase", "Migrations copying memory now, pre-copy or post-copy.",
        value=sum(counts.get(state, 0) for state in RUNNING_STATES),
    )


def running_migrations() -> Iterator[Metric]:
    """libvirt's figures from the latest progress sample of each running migration."""
    latest = ProgressSample.objects.filter(task=OuterRef("pk")).order_by("-elapsed_ms", "-pk").values("pk")[:1]
    running = list(
        MigrationTask.objects.filter(state__in=RUNNING_STATES)
        .annotate(sample_id=Subquery(latest))
        .exclude(sample_id=None)
        .values_list("vm__name", "source__name", "destination__name", "sample_id")
    )
    samples = ProgressSample.objects.in_bulk([sample_id for *_, sample_id in running])
    families = {
        "data_remaining": GaugeMetricFamily(
            "vmotion_migration_data_remaining_bytes", "Memory still to copy to the destination.", labels=MIGRATION_LABELS,
        ),
        "data_processed": GaugeMetricFamily(
            "vmotion_migration_data_processed_bytes", "Memory copied to the destination so far.", labels=MIGRATION_LABELS,
        ),
        "dirty_rate_bytes_s": GaugeMetricFamily(
            "vmotion_migration_dirty_memory_rate_bytes", "How fast the guest dirties memory, in bytes per second.", labels=MIGRATION_LABELS,
        ),
        "throughput_bytes_s": GaugeMetricFamily(
            "vmotion_migration_memory_transfer_rate_bytes", "How fast memory moves to the destination, in bytes per second.",
            labels=MIGRATION_LABELS,
        ),
    }
    for vm, source, destination, sample_id in running:
        sample = samples[sample_id]
        for field, family in families.items():
            family.add_metric([vm, source, destination], getattr(sample, field))
    yield from families.values()


def migration_slots() -> Iterator[Metric]:
    outgoing, incoming = slots.slots_in_use()
    in_use = GaugeMetricFamily(
        "vmotion_migration_slots_in_use", "Migration slots held on each host, as source (outgoing) or destination (incoming).",
        labels=["host", "direction"],
    )
    for host_id, name in Host.objects.values_list("pk", "name"):
        in_use.add_metric([name, "outgoing"], outgoing[host_id])
        in_use.add_metric([name, "incoming"], incoming[host_id])
    yield in_use
    limits = MigrationLimits.objects.filter(pk=1).first() or MigrationLimits()  # a scrape writes nothing
    limit = GaugeMetricFamily("vmotion_migration_slots_limit", "The migration limits: per host each way, and in all.", labels=["scope"])
    limit.add_metric(["outgoing_per_host"], limits.max_outgoing_per_host)
    limit.add_metric(["incoming_per_host"], limits.max_incoming_per_host)
    limit.add_metric(["concurrent"], limits.max_concurrent)
    yield limit


def queue_depths() -> Iterator[Metric]:
    depth = GaugeMetricFamily("vmotion_workqueue_depth", "Jobs waiting on each RQ queue.", labels=["queue"])
    try:
        for name in settings.RQ_QUEUES:
            depth.add_metric([name], django_rq.get_queue(name).count)
    except RedisError as error:
        # The rest of the scrape still holds: the series go missing, for an absent() alert.
        log.warning("metrics: cannot read the queues from Redis: %s", error)
        return
    yield depth


def inventory_syncs() -> Iterator[Metric]:
    synced = GaugeMetricFamily(
        "vmotion_inventory_last_sync_timestamp_seconds", "When libvirt last answered each host's inventory sync (Unix time).",
        labels=["host"],
    )
    for name, last_seen in Host.objects.exclude(last_seen=None).values_list("name", "last_seen"):
        synced.add_metric([name], last_seen.timestamp())
    yield synced
