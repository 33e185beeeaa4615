"""Scheduled migrations: creating a schedule, firing each due run exactly once, and closing
migration windows.

Exactly once: a due schedule is taken under a row lock that other schedulers skip, and its run
is a row unique per schedule and due time, written in the same transaction that moves the
schedule's next run on. A run whose time passed while no scheduler ran fires once if a
scheduler returns within the grace period; later, it is recorded as missed. Either way the
next run is the first one after now: never a burst of catch-up runs.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.roles import Role, has_role
from inventory.models import Host, VirtualMachine

from migrations_app.placement import store as assistant
from migrations_app.automation import maintenance
from migrations_app.choices import ACTIVE_STATES, EndReason, EventKind, RecurrenceKind, ScheduleAction, ScheduleRunState, TaskState
from migrations_app.errors import MigrationRequestError, RoleRefused
from migrations_app.models import InvalidTransition, MigrationBatch, MigrationTask, Schedule, ScheduleRun
from migrations_app.automation.recurrence import RecurrenceError
from migrations_app.services import Refusal, planned_of, refusals_of, submit_migration

log = logging.getLogger(__name__)
# As a batch from the wizard or the API: each run submits them all at once.
MAX_VMS = 50


def create(schedule: Schedule) -> Schedule:
    """Validate and save a new schedule (unsaved in, saved out). Raises MigrationRequestError
    and saves nothing when anything is wrong."""
    validate(schedule)
    schedule.next_run_at = schedule.when().next_after(timezone.now())
    schedule.save()
    return schedule


def role_for(action: str) -> Role:
    """The role a schedule's action needs, to create it and to change it in any way."""
    return Role.ADMINISTRATOR if action == ScheduleAction.EVACUATE else Role.OPERATOR


def check_may_change(schedule: Schedule, editor, new_action: str | None = None) -> None:
    """Enabling, disabling, editing and deleting need the role of the schedule's stored action,
    and of the new one for an edit: an Operator may neither touch an Administrator's
    evacuation nor turn it into a move. `editor` None is the server's command line."""
    if editor is None:
        return
    stored = Schedule.objects.filter(pk=schedule.pk).values_list("action", flat=True).first() or schedule.action
    needed = max(role_for(stored), role_for(new_action or stored))
    if not has_role(editor, needed):
        why = "it evacuates a host" if role_for(stored) == needed else "the change makes it evacuate a host"
        raise RoleRefused(f"Only a user with the {needed.group_name} role may change this schedule: {why}.")


def update(schedule: Schedule, editor) -> Schedule:
    """Save an edited schedule; its next run follows from the new times."""
    check_may_change(schedule, editor, schedule.action)
    validate(schedule)
    schedule.next_run_at = schedule.when().next_after(timezone.now()) if schedule.enabled else schedule.next_run_at
    schedule.save()
    return schedule


def validate(schedule: Schedule) -> None:
    user = schedule.created_by
    needed = role_for(schedule.action)
    if user is None or not has_role(user, needed):
        raise RoleRefused(f"Only a user with the {needed.group_name} role may schedule this.")
    if not schedule.name.strip():
        raise MigrationRequestError("A schedule needs a name.")
    try:
        schedule.when().validate(timezone.now())
    except RecurrenceError as error:
        raise MigrationRequestError(str(error)) from error
    minimum = timedelta(minutes=settings.SCHEDULE_MIN_INTERVAL_MINUTES)
    gap = schedule.when().fires_within(minimum, timezone.now())
    if gap is not None:
        raise MigrationRequestError(
            f"{schedule.cron!r} runs {_minutes(gap)} apart at times; a schedule runs at most every {_minutes(minimum)} (SCHEDULE_MIN_INTERVAL_MINUTES)."
        )
    if len(schedule.vm_names) > MAX_VMS:
        raise MigrationRequestError(f"A schedule moves at most {MAX_VMS} VMs; it names {len(schedule.vm_names)}. Split it into several.")
    if schedule.window_minutes is not None and schedule.window_minutes < 1:
        raise MigrationRequestError("A migration window must last at least a minute; leave it empty for none.")
    schedule.options().validate()
    if schedule.action == ScheduleAction.EVACUATE:
        if not Host.objects.filter(name=schedule.host_name).exists():
            raise MigrationRequestError(f"No host named {schedule.host_name!r}.")
        return
    if not schedule.vm_names:
        raise MigrationRequestError("Name at least one VM to move.")
    unknown = sorted(set(schedule.vm_names) - set(VirtualMachine.objects.filter(name__in=schedule.vm_names).values_list("name", flat=True)))
    if unknown:
        raise MigrationRequestError(f"No VM named {', '.join(unknown)} in the inventory.")
    if schedule.destination_name and not Host.objects.filter(name=schedule.destination_name).exists():
        raise MigrationRequestError(f"No host named {schedule.destination_name!r}.")


def _minutes(span: timedelta) -> str:
    minutes = span.total_seconds() / 60
    return f"{minutes:g} minute{'s' if minutes != 1 else ''}"


def set_enabled(schedule: Schedule, enabled: bool, editor) -> None:
    """Enabling again starts from the next run: runs missed while disabled are not caught up."""
    check_may_change(schedule, editor)
    schedule.enabled = enabled
    if enabled:
        schedule.next_run_at = schedule.when().next_after(timezone.now())
    schedule.save(update_fields=["enabled", "next_run_at"])


def delete(schedule: Schedule, editor) -> str:
    """Remove the schedule and its runs' history; migrations it submitted run on."""
    check_may_change(schedule, editor)
    name = schedule.name
    schedule.delete()
    return f"Schedule “{name}” deleted."


def fire_due(now=None) -> list[ScheduleRun]:
    """Claim and run every due schedule; returns the runs this call claimed."""
    now = now or timezone.now()
    claimed = []
    for schedule_id in Schedule.objects.filter(enabled=True, next_run_at__lte=now).values_list("pk", flat=True):
        run = _claim(schedule_id, now)
        if run is None:
            continue
        if run.state == ScheduleRunState.RUNNING:
            _carry_out(run)
        claimed.append(run)
    return claimed


def _claim(schedule_id: int, now) -> ScheduleRun | None:
    with transaction.atomic():
        schedule = Schedule.objects.select_for_update(skip_locked=True).filter(pk=schedule_id, enabled=True, next_run_at__lte=now).first()
        if schedule is None:
            return None  # another scheduler has it, or it ran meanwhile
        due = schedule.next_run_at
        late = now - due
        once = schedule.recurrence == RecurrenceKind.ONCE
        schedule.next_run_at = None if once else schedule.when().next_after(max(now, due))
        schedule.save(update_fields=["next_run_at"])
        if ScheduleRun.objects.filter(schedule=schedule, due_at=due).exists():
            return None
        if late > timedelta(seconds=settings.SCHEDULE_GRACE_SECONDS):
            return ScheduleRun.objects.create(
                schedule=schedule, due_at=due, state=ScheduleRunState.MISSED, finished_at=now,
                result=f"Missed: no scheduler ran at {due:%Y-%m-%d %H:%M} UTC, and {late.total_seconds() / 60:.0f} min later is past the {settings.SCHEDULE_GRACE_SECONDS / 60:.0f} min grace period.",
            )
        window = timedelta(minutes=schedule.window_minutes) if schedule.window_minutes else None
        return ScheduleRun.objects.create(schedule=schedule, due_at=due, started_at=now, window_ends_at=due + window if window else None)


def _carry_out(run: ScheduleRun) -> None:
    schedule = run.schedule
    try:
        _check_creator(schedule)
        if schedule.action == ScheduleAction.EVACUATE:
            _evacuate(run)
        else:
            _move(run)
    except MigrationRequestError as error:
        _finish(run, ScheduleRunState.FAILED, str(error))
    except Exception as error:  # a run must end with a reason, and the scheduler must go on
        log.exception("schedule run %s failed", run.pk)
        _finish(run, ScheduleRunState.FAILED, f"The run failed unexpectedly: {error}")


def _check_creator(schedule: Schedule) -> None:
    """A schedule acts with its creator's rights as they are at run time, not as they were."""
    creator = schedule.created_by
    if creator is None:
        raise RoleRefused("Not run: the user who created this schedule no longer exists.")
    creator.refresh_from_db(fields=["is_active", "is_superuser"])
    if not creator.is_active:
        raise RoleRefused(f"Not run: {creator.get_username()}, who created this schedule, is deactivated.")
    needed = role_for(schedule.action)
    if not has_role(creator, needed):
        raise RoleRefused(f"Not run: {creator.get_username()}, who created this schedule, no longer has the {needed.group_name} role it needs.")


def _evacuate(run: ScheduleRun) -> None:
    schedule = run.schedule
    host = Host.objects.filter(name=schedule.host_name).first()
    if host is None:
        raise MigrationRequestError(f"Host {schedule.host_name!r} is no longer in the inventory.")
    evacuation = maintenance.enter(host, requested_by=schedule.created_by, options=schedule.options())
    run.evacuation, run.batch = evacuation, evacuation.batch
    run.result = f"Evacuating {host.name} (evacuation #{evacuation.pk})."
    run.save(update_fields=["evacuation", "batch", "result"])


def _move(run: ScheduleRun) -> None:
    """Check everything again now; the VMs that pass move, the others are recorded with why."""
    schedule = run.schedule
    vms = list(VirtualMachine.objects.select_related("host", "host__cluster").filter(name__in=schedule.vm_names).order_by("name"))
    gone = sorted(set(schedule.vm_names) - {vm.name for vm in vms})
    destination = Host.objects.filter(name=schedule.destination_name).first() if schedule.destination_name else None
    if schedule.destination_name and destination is None:
        raise MigrationRequestError(f"Host {schedule.destination_name!r} is no longer in the inventory.")
    if destination is not None:
        moves = [(vm, destination) for vm in vms]
    else:
        moves = [(move.vm, move.destination) for move in assistant.plan_moves(vms)]
    refusals = refusals_of(moves) + [Refusal(None, f"{name} is no longer in the inventory.") for name in gone]
    refused = {refusal.vm.pk for refusal in refusals if refusal.vm is not None}
    options = schedule.options()
    who = schedule.created_by.get_username() if schedule.created_by else "a deleted user"
    submitted = []
    planned = planned_of([(vm, target) for vm, target in moves if vm.pk not in refused])
    with transaction.atomic():  # nothing submitted: the batch goes too
        batch = MigrationBatch.objects.create(requested_by=schedule.created_by, reason=options.reason)
        for vm, target in moves:
            if vm.pk in refused:
                continue
            try:
                task = submit_migration(vm, target, options, requested_by=schedule.created_by, batch=batch, planned=planned)
            except MigrationRequestError as error:
                refusals.append(Refusal(vm, str(error)))
                continue
            task.log(EventKind.INFO, f"Requested by schedule “{schedule.name}” (#{schedule.pk}), created by {who}.")
            submitted.append(task)
        reasons = " ".join(refusal.reason for refusal in refusals)
        if not submitted:
            raise MigrationRequestError(f"Nothing could move. {reasons}".strip())
    run.batch = batch
    run.result = f"{len(submitted)} of {len(schedule.vm_names)} submitted." + (f" Not moved: {reasons}" if reasons else "")
    run.save(update_fields=["batch", "result"])


def settle(now=None) -> int:
    """Close the windows that ended (queued moves cancelled with that reason; running ones
    finish) and end the runs whose moves have all ended. Returns how many runs ended."""
    now = now or timezone.now()
    ended = 0
    for run in ScheduleRun.objects.select_related("schedule", "batch").filter(state=ScheduleRunState.RUNNING):
        if run.window_ends_at and run.window_ends_at <= now and run.batch:
            _close_window(run)
        if run.evacuation_id:
            run.evacuation.refresh_from_db()
            if run.evacuation.state != "running":
                _finish(run, ScheduleRunState.DONE, f"{run.result} {run.evacuation.message}".strip())
                ended += 1
            continue
        tasks = list(run.batch.tasks.all()) if run.batch else []
        if all(task.state not in ACTIVE_STATES for task in tasks):
            _finish(run, ScheduleRunState.DONE, f"{run.result} {_outcome(run, tasks, now)}".strip())
            ended += 1
    return ended


def _close_window(run: ScheduleRun) -> None:
    closed_at = timezone.localtime(run.window_ends_at)
    for task in run.batch.tasks.filter(state__in=(TaskState.QUEUED, TaskState.WAITING)):
        try:
            task.transition(
                TaskState.CANCELLED, f"The migration window of schedule “{run.schedule.name}” closed at {closed_at:%H:%M}; nothing moved.",
                end_reason=EndReason.WINDOW_CLOSED,
            )
        except InvalidTransition:
            pass  # a worker started it meanwhile: a running migration finishes


def _outcome(run: ScheduleRun, tasks: list[MigrationTask], now) -> str:
    moved = sum(task.state == TaskState.SUCCEEDED for task in tasks)
    cancelled = sum(task.state == TaskState.CANCELLED for task in tasks)
    failed = sum(task.state == TaskState.FAILED for task in tasks)
    parts = [f"{moved} moved"]
    if cancelled:
        closed = run.window_ends_at is not None and run.window_ends_at <= now
        parts.append(f"{cancelled} cancelled" + (" when the window closed" if closed else ""))
    if failed:
        parts.append(f"{failed} failed")
    return ", ".join(parts) + "."


def _finish(run: ScheduleRun, state: str, result: str) -> None:
    run.state, run.result, run.finished_at = state, result, timezone.now()
    run.save(update_fields=["state", "result", "finished_at"])


def tick() -> dict:
    """The scheduler's periodic call."""
    return {"fired": len(fire_due()), "settled": settle()}

