"""Read models for the pages: each asks here, in a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import OuterRef, Q, QuerySet, Subquery

from migrations_app.choices import ACTIVE_STATES, TaskState
from migrations_app.models import MigrationTask, ProgressSample


def tasks() -> QuerySet[MigrationTask]:
    return MigrationTask.objects.select_related("vm", "source", "destination", "requested_by")


# What a row of the task history shows (migrations_app/_task_table.html).
TASK_ROW_FIELDS = (
    "state", "kind", "priority", "created_at", "total_ms", "downtime_ms", "error",
    "vm__name", "source__name", "destination__name", "requested_by__username",
)


def task_rows() -> QuerySet[MigrationTask]:
    """The task history's rows: the columns the table shows, not every column of each task,
    its VM and its hosts (a host's CPU description among them)."""
    return tasks().only(*TASK_ROW_FIELDS)


@dataclass(frozen=True)
class RunningMigration:
    task: MigrationTask
    percent: int  # of the guest's memory on the destination, from the latest sample


def running_migrations(host_id: int | None = None, limit: int = 50) -> list[RunningMigration]:
    """Active tasks (to or from one host, if given), oldest first, each with how far its copy has come."""
    active = _with_copy_figures(_involving(tasks(), host_id).filter(state__in=ACTIVE_STATES)).order_by("created_at")[:limit]
    return [RunningMigration(task, _percent(task.copy_total, task.copy_remaining)) for task in active]


def batch_tasks(batch) -> list[RunningMigration]:
    """A batch's tasks in the order submitted, each with how far its copy has come (100 once it succeeded)."""
    rows = _with_copy_figures(tasks().filter(batch=batch)).order_by("pk")
    return [RunningMigration(task, 100 if task.state == TaskState.SUCCEEDED else _percent(task.copy_total, task.copy_remaining)) for task in rows]


def recent_failures(host_id: int | None = None, limit: int = 5) -> QuerySet[MigrationTask]:
    return _involving(tasks(), host_id).filter(state=TaskState.FAILED).order_by("-finished_at")[:limit]


def _with_copy_figures(queryset: QuerySet[MigrationTask]) -> QuerySet[MigrationTask]:
    """Each task with its latest sample's copy figures, in the same query."""
    latest = ProgressSample.objects.filter(task=OuterRef("pk")).order_by("-elapsed_ms")
    return queryset.annotate(copy_total=Subquery(latest.values("data_total")[:1]), copy_remaining=Subquery(latest.values("data_remaining")[:1]))


def _involving(queryset: QuerySet[MigrationTask], host_id: int | None) -> QuerySet[MigrationTask]:
    return queryset if host_id is None else queryset.filter(Q(source_id=host_id) | Q(destination_id=host_id))


def _percent(total: int | None, remaining: int | None) -> int:
    if not total or remaining is None:
        return 0
    return min(max(int(100 * (total - remaining) / total), 0), 99)
