"""Read models for the pages: each asks here, in a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import OuterRef, QuerySet, Subquery

from .choices import ACTIVE_STATES, TaskState
from .models import MigrationTask, ProgressSample


def tasks() -> QuerySet[MigrationTask]:
    return MigrationTask.objects.select_related("vm", "source", "destination", "requested_by")


@dataclass(frozen=True)
class RunningMigration:
    task: MigrationTask
    percent: int  # of the guest's memory on the destination, from the latest sample


def running_migrations(limit: int = 50) -> list[RunningMigration]:
    """Active tasks, oldest first, each with how far its copy has come."""
    latest = ProgressSample.objects.filter(task=OuterRef("pk")).order_by("-elapsed_ms")
    active = (
        tasks()
        .filter(state__in=ACTIVE_STATES)
        .annotate(copy_total=Subquery(latest.values("data_total")[:1]), copy_remaining=Subquery(latest.values("data_remaining")[:1]))
        .order_by("created_at")[:limit]
    )
    return [RunningMigration(task, _percent(task.copy_total, task.copy_remaining)) for task in active]


def recent_failures(limit: int = 5) -> QuerySet[MigrationTask]:
    return tasks().filter(state=TaskState.FAILED).order_by("-finished_at")[:limit]


def _percent(total: int | None, remaining: int | None) -> int:
    if not total or remaining is None:
        return 0
    return min(max(int(100 * (total - remaining) / total), 0), 99)
