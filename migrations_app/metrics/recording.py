"""What processes observe about migrations, recorded once a task's end is committed: how
many ended and why, how long they took and paused, and how far the prediction was off.

Whichever process ends a task (a worker, recovery in the scheduler, an
operator's cancel in the web server) records it, in its own metric files when a directory
is set (core/metric_files.py), so one scrape of any web process adds up every process's.

Every metric has labels: prometheus_client then creates a process's values, and its file,
only once it records something, so processes that never end a task leave no files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.dispatch import receiver
from prometheus_client import CollectorRegistry, Counter, Histogram

from migrations_app.choices import EndReason, TaskState
from migrations_app.models import MigrationTask
from migrations_app.signals import task_ended

# This process's values, which a scrape reads when no directory of metric files is set
# (runserver, a single process).
REGISTRY = CollectorRegistry()

# From a few hundred milliseconds for a small idle guest to the ten minutes past which a
# migration is rare (the completion timeout scales with memory).
DURATION_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
# Post-copy switches in a few milliseconds; pre-copy pauses up to the SLO (300 ms by
# default) and beyond when forced or when the host was too slow.
DOWNTIME_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10)
# Actual over predicted: 1 is exact, 2 took twice as long as predicted.
PREDICTION_BUCKETS = (0.25, 0.5, 0.67, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2, 3, 5)

MIGRATIONS = Counter(
    "vmotion_migrations", "Migration tasks that ended, by result (their final state) and reason.",
    ["result", "reason"], registry=REGISTRY,
)
DURATION = Histogram(
    "vmotion_migration_duration_seconds",
    "How long migrations that moved memory took: libvirt's figure for the completed job, else from the start of the copy to the end.",
    ["result"], buckets=DURATION_BUCKETS, registry=REGISTRY,
)
DOWNTIME = Histogram(
    "vmotion_migration_downtime_seconds", "The final pause of succeeded migrations, as libvirt measured it, by copy mode.",
    ["mode"], buckets=DOWNTIME_BUCKETS, registry=REGISTRY,
)
PREDICTION_RATIO = Histogram(
    "vmotion_migration_prediction_ratio", "Actual over predicted duration or downtime, of succeeded migrations that had a prediction.",
    ["figure"], buckets=PREDICTION_BUCKETS, registry=REGISTRY,
)


@dataclass(frozen=True)
class Ending:
    """A task's end with the figures the metrics read from its row."""

    result: str
    reason: str
    post_copy: bool
    started_at: datetime | None
    finished_at: datetime | None
    total_ms: int | None
    downtime_ms: int | None
    predicted_total_ms: int | None
    predicted_downtime_ms: int | None

    @property
    def duration_seconds(self) -> float | None:
        if self.total_ms:
            return self.total_ms / 1000
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None  # it never started to copy memory


@receiver(task_ended, dispatch_uid="vmotion-metrics-task-ended")
def record_task_end(sender, task_id: int, state: str, end_reason: str, post_copy: bool, **kwargs) -> None:
    fields = ("started_at", "finished_at", "total_ms", "downtime_ms", "predicted_total_ms", "predicted_downtime_ms")
    row = MigrationTask.objects.filter(pk=task_id).values(*fields).first()
    if row is not None:
        record(Ending(result=state, reason=end_reason, post_copy=post_copy, **row))


def record(ending: Ending) -> None:
    # A reason outside the set would make a new series: the label stays bounded.
    reason = ending.reason if ending.reason in EndReason.values else EndReason.OTHER
    MIGRATIONS.labels(result=ending.result, reason=reason).inc()
    duration = ending.duration_seconds
    if duration is not None:
        DURATION.labels(result=ending.result).observe(duration)
    if ending.result != TaskState.SUCCEEDED:
        return
    if ending.downtime_ms is not None:
        DOWNTIME.labels(mode="postcopy" if ending.post_copy else "precopy").observe(ending.downtime_ms / 1000)
    if ending.total_ms and ending.predicted_total_ms:
        PREDICTION_RATIO.labels(figure="duration").observe(ending.total_ms / ending.predicted_total_ms)
    if ending.downtime_ms is not None and ending.predicted_downtime_ms:
        PREDICTION_RATIO.labels(figure="downtime").observe(ending.downtime_ms / ending.predicted_downtime_ms)
