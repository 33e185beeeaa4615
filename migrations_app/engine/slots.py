"""Migration slots: per-host outgoing and incoming limits and a global one, shared by every
worker process through the database. Slots go by priority, then first come first served.

Every decision is made while holding a row lock on MigrationLimits, so two workers never
grant the same slot; a slot is freed when its task reaches a final state.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from migrations_app.choices import ACTIVE_STATES, TaskState
from migrations_app.models import MigrationLimits, MigrationTask


@dataclass(frozen=True)
class SlotDecision:
    granted: bool
    position: int = 0  # among tasks waiting for a slot, 1 = next
    blocked_by: str = ""  # which limit is full, for the timeline


def request_slot(task: MigrationTask) -> tuple[SlotDecision, list[MigrationTask]]:
    """Grant `task` a slot now if the limits and the tasks ahead of it allow.

    Also returns waiting tasks that were granted a slot in the same pass: the caller
    queues them, since a granted task must not wait for the next scheduler tick.
    """
    with transaction.atomic():
        granted, decisions = _allocate(_locked_limits(), extra=task)
        now = timezone.now()
        if task.pk in granted:
            MigrationTask.objects.filter(pk=task.pk).update(slot_granted_at=now)
            task.slot_granted_at = now
        others = _mark_granted(granted - {task.pk}, now)
        return decisions[task.pk], others


def grant_waiting_slots() -> list[MigrationTask]:
    """Grant slots to waiting tasks, best first, as far as the limits allow; returns them."""
    with transaction.atomic():
        granted, _ = _allocate(_locked_limits())
        return _mark_granted(granted, timezone.now())


def _mark_granted(task_ids: set[int], now) -> list[MigrationTask]:
    if not task_ids:
        return []
    MigrationTask.objects.filter(pk__in=task_ids, state=TaskState.WAITING).update(slot_granted_at=now)
    return list(MigrationTask.objects.filter(pk__in=task_ids, state=TaskState.WAITING))


def _locked_limits() -> MigrationLimits:
    MigrationLimits.current()
    return MigrationLimits.objects.select_for_update().get(pk=1)


def slots_in_use() -> tuple[Counter, Counter]:
    """The slots held now, by host id: outgoing (as source) and incoming (as destination)."""
    holders = _holders()
    return Counter(holders.values_list("source_id", flat=True)), Counter(holders.values_list("destination_id", flat=True))


def _holders():
    # A slot is held from its grant until the task reaches a final state.
    return MigrationTask.objects.filter(state__in=ACTIVE_STATES, slot_granted_at__isnull=False)


def _allocate(limits: MigrationLimits, extra: MigrationTask | None = None) -> tuple[set[int], dict[int, SlotDecision]]:
    outgoing, incoming = slots_in_use()
    running = sum(outgoing.values())

    # Tasks still queued or being checked stand in line too: they cannot take a slot yet, but
    # a lower-priority task must not take the one they are about to ask for.
    in_line = list(
        MigrationTask.objects.filter(state__in=(TaskState.QUEUED, TaskState.CHECKING, TaskState.WAITING), slot_granted_at__isnull=True)
        .select_related("source", "destination")
    )
    if extra is not None and extra.slot_granted_at is None and all(t.pk != extra.pk for t in in_line):
        in_line.append(extra)
    in_line.sort(key=lambda t: (t.priority, t.created_at, t.pk))

    granted: set[int] = set()
    decisions: dict[int, SlotDecision] = {}
    position = 0
    # A task that waits for one of its hosts keeps its place on the other: a task of lower
    # priority must not take the slot there that it needs once its full host frees up.
    kept_out: list[tuple[int, int]] = []  # (host, priority of the task keeping it)
    kept_in: list[tuple[int, int]] = []
    for task in in_line:
        out_here = outgoing + Counter(host for host, priority in kept_out if priority < task.priority)
        in_here = incoming + Counter(host for host, priority in kept_in if priority < task.priority)
        full = _full_limit(limits, task, out_here, in_here, running)
        if full:
            position += 1
            decisions[task.pk] = SlotDecision(False, position, full)
            if out_here[task.source_id] >= limits.max_outgoing_per_host:
                kept_in.append((task.destination_id, task.priority))
            elif in_here[task.destination_id] >= limits.max_incoming_per_host:
                kept_out.append((task.source_id, task.priority))
            continue
        if task.state == TaskState.WAITING or (extra is not None and task.pk == extra.pk):
            granted.add(task.pk)
            decisions[task.pk] = SlotDecision(True)
        outgoing[task.source_id] += 1
        incoming[task.destination_id] += 1
        running += 1
    if extra is not None and extra.slot_granted_at is not None:
        decisions[extra.pk] = SlotDecision(True)
    return granted, decisions


def _full_limit(limits: MigrationLimits, task: MigrationTask, outgoing: Counter, incoming: Counter, running: int) -> str:
    if running >= limits.max_concurrent:
        return f"all {limits.max_concurrent} migration slots are in use"
    if outgoing[task.source_id] >= limits.max_outgoing_per_host:
        return f"{task.source.name} already sends {outgoing[task.source_id]} of its {limits.max_outgoing_per_host} outgoing migrations"
    if incoming[task.destination_id] >= limits.max_incoming_per_host:
        return f"{task.destination.name} already receives {incoming[task.destination_id]} of its {limits.max_incoming_per_host} incoming migrations"
    return ""
