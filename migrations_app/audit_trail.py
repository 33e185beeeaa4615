"""The audit page's trail: who did what and when, from the two places it is recorded.

django-auditlog records every change to hosts, clusters, limits, users and tasks (with the
signed-in user who made it); the task timeline records operator actions and requests (with
the user a CLI request named). Both are read newest first and merged; a page only needs the
newest rows of each, so the cost stays that of one page however long the trail is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from auditlog.models import LogEntry
from django.db.models import Q, QuerySet

from .choices import EventKind, TaskState
from .models import TaskEvent


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    who: str  # the user, or "system" for the scheduler, the workers and the sync
    what: str  # the object, as an operator names it
    action: str
    url: str = ""


@dataclass(frozen=True)
class AuditFilters:
    user: str = ""
    object: str = ""
    since: date | None = None
    until: date | None = None


def audit_page(filters: AuditFilters, page: int, per_page: int = 50) -> tuple[list[AuditEntry], bool]:
    """The entries of one page, newest first, and whether another page follows."""
    wanted = page * per_page + 1
    merged = sorted([*_changes(filters, wanted), *_actions(filters, wanted)], key=lambda entry: entry.at, reverse=True)
    start = (page - 1) * per_page
    return merged[start : start + per_page], len(merged) > start + per_page


def _changes(filters: AuditFilters, limit: int) -> list[AuditEntry]:
    entries = _by_user_and_date(LogEntry.objects.select_related("actor", "content_type"), filters, moment="timestamp")
    if filters.object:
        entries = entries.filter(Q(object_repr__icontains=filters.object) | Q(content_type__model__iexact=filters.object))
    return [
        AuditEntry(
            at=entry.timestamp,
            who=entry.actor.get_username() if entry.actor else "system",
            what=f"{entry.content_type.name} {entry.object_repr}",
            action=_describe_change(entry),
        )
        for entry in entries[:limit]
    ]


def _actions(filters: AuditFilters, limit: int) -> list[AuditEntry]:
    operator_events = TaskEvent.objects.select_related("actor", "task__vm").filter(
        Q(kind=EventKind.OPERATOR) | Q(actor__isnull=False) | Q(to_state=TaskState.QUEUED)
    )
    events = _by_user_and_date(operator_events, filters, moment="at")
    if filters.object:
        by_vm = Q(task__vm__name__icontains=filters.object)
        number = filters.object.lstrip("#")
        events = events.filter(by_vm | Q(task_id=int(number)) if number.isdigit() else by_vm)
    return [
        AuditEntry(
            at=event.at,
            who=event.actor.get_username() if event.actor else "system",
            what=f"migration task #{event.task_id} ({event.task.vm.name})",
            action=event.message,
            url=event.task.get_absolute_url(),
        )
        for event in events[:limit]
    ]


def _by_user_and_date(rows: QuerySet, filters: AuditFilters, *, moment: str) -> QuerySet:
    """Both sources filter the same way by who acted and when; newest first."""
    if filters.user:
        rows = rows.filter(actor__username__iexact=filters.user)
    if filters.since:
        rows = rows.filter(**{f"{moment}__date__gte": filters.since})
    if filters.until:
        rows = rows.filter(**{f"{moment}__date__lte": filters.until})
    return rows.order_by(f"-{moment}")


def _describe_change(entry: LogEntry) -> str:
    verb = entry.get_action_display().capitalize()
    changes = "; ".join(_describe_field(field, change) for field, change in (entry.changes_dict or {}).items())
    return f"{verb}: {changes}" if changes else verb


def _describe_field(field: str, change) -> str:
    if isinstance(change, dict):  # a many-to-many change: {"operation": "add", "objects": [...]}
        return f"{field}: {change.get('operation', 'changed')} {', '.join(map(str, change.get('objects', [])))}"
    old, new = change
    return f"{field}: {_shown(old)} → {_shown(new)}"


def _shown(value) -> str:
    return "—" if value in (None, "None", "") else str(value)
