"""The audit page's trail: who did what and when, from the two places it is recorded.

django-auditlog records every change to hosts, clusters, limits, users and tasks (with the
signed-in user who made it); the task timeline records operator actions and requests (with
the user a CLI request named). Both are read newest first and merged. Pages go by keyset: the
next page starts after the last entry shown (its cursor), so each page reads at most a page
and one row from each source through their time indexes, however long the trail is and
however far back the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from auditlog.models import LogEntry
from django.db.models import Q, QuerySet

from migrations_app.choices import EventKind, TaskState
from migrations_app.models import TaskEvent


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    who: str  # the user, or "system" for the scheduler, the workers and the sync
    what: str  # the object, as an operator names it
    action: str
    url: str = ""
    key: tuple = field(default=(), compare=False)  # (at, source, id): its place in the trail, newest first


# The two sources, in the order entries at the same moment are shown.
CHANGES, ACTIONS = 1, 0


class BadCursor(ValueError):
    """A page link that names no place in the trail."""


def cursor_of(entry: AuditEntry) -> str:
    at, source, pk = entry.key
    return f"{at.isoformat()}~{source}~{pk}"


def parse_cursor(text: str) -> tuple:
    try:
        at, source, pk = text.split("~")
        moment, source, pk = datetime.fromisoformat(at), int(source), int(pk)
    except (ValueError, OverflowError):
        raise BadCursor("This page link is not valid: start again from the newest entries.") from None
    if moment.tzinfo is None or source not in (CHANGES, ACTIONS) or not 0 < pk < 2**63:
        raise BadCursor("This page link is not valid: start again from the newest entries.")
    return moment, source, pk


@dataclass(frozen=True)
class AuditFilters:
    user: str = ""
    object: str = ""
    since: date | None = None
    until: date | None = None


def audit_page(filters: AuditFilters, after: tuple | None = None, per_page: int = 50) -> tuple[list[AuditEntry], str]:
    """The entries of one page, newest first, from just after the cursor `after` (from the
    newest without one), and the next page's cursor ("" on the last page)."""
    wanted = per_page + 1
    merged = sorted([*_changes(filters, after, wanted), *_actions(filters, after, wanted)], key=lambda entry: entry.key, reverse=True)
    shown = merged[:per_page]
    return shown, cursor_of(shown[-1]) if len(merged) > per_page else ""


def _older_than(after: tuple | None, source: int, moment: str) -> Q:
    """The rows of `source` that come after the cursor, newest first."""
    if after is None:
        return Q()
    at, cursor_source, pk = after
    same_moment = Q(pk__lt=pk) if source == cursor_source else Q() if source < cursor_source else Q(pk__in=[])
    return Q(**{f"{moment}__lt": at}) | (Q(**{moment: at}) & same_moment)


def _changes(filters: AuditFilters, after: tuple | None, limit: int) -> list[AuditEntry]:
    entries = _by_user_and_date(LogEntry.objects.select_related("actor", "content_type"), filters, moment="timestamp")
    entries = entries.filter(_older_than(after, CHANGES, "timestamp"))
    if filters.object:
        entries = entries.filter(Q(object_repr__icontains=filters.object) | Q(content_type__model__iexact=filters.object))
    return [
        AuditEntry(
            at=entry.timestamp,
            who=entry.actor.get_username() if entry.actor else "system",
            what=f"{entry.content_type.name} {entry.object_repr}",
            action=_describe_change(entry),
            key=(entry.timestamp, CHANGES, entry.pk),
        )
        for entry in entries[:limit]
    ]


def _actions(filters: AuditFilters, after: tuple | None, limit: int) -> list[AuditEntry]:
    operator_events = TaskEvent.objects.select_related("actor", "task__vm").filter(
        Q(kind=EventKind.OPERATOR) | Q(actor__isnull=False) | Q(to_state=TaskState.QUEUED)
    )
    events = _by_user_and_date(operator_events, filters, moment="at").filter(_older_than(after, ACTIONS, "at"))
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
            key=(event.at, ACTIONS, event.pk),
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
    return rows.order_by(f"-{moment}", "-pk")


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
