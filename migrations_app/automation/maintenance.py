"""Maintenance mode: a host's running VMs moved off it, then the host closed for work.

First a plan (every running VM with its destination and why, those that cannot be placed
with the reason, and the forecast of the whole evacuation); nothing moves until an
administrator enters maintenance. The moves then run as one batch under the normal limits.
The scheduler advances each evacuation (`evacuation.advance`): failed moves are retried a
bounded number of times with a growing wait and the evacuation's own options, and the host
is "in maintenance" only once libvirt shows no VM running on it. A VM with nowhere to go
stops the evacuation with that reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from inventory.choices import ACTIVE_POWER_STATES, CLOSED_HOST_STATES, HostState
from inventory.models import Host, VirtualMachine

from migrations_app.placement import store as assistant
from migrations_app.placement import plan as placement_plan
from migrations_app.choices import ACTIVE_STATES, EvacuationState, EventKind, TaskState
from migrations_app.errors import MigrationRequestError, StateConflict
from migrations_app.automation.evacuation_time import TimedMove, evacuation_ms
from migrations_app.forecast.store import MoveForecast, forecast_moves
from migrations_app.models import Evacuation, MigrationBatch, MigrationLimits
from migrations_app.options import MigrationOptions
from migrations_app.services import cancel_task, planned_of, submit_migration

MAX_ATTEMPTS = 3  # per VM: a move that fails this often stops the evacuation
RETRY_AFTER = timedelta(seconds=15)  # before the second attempt; doubled before each further one


@dataclass(frozen=True)
class PlannedEvacuation:
    vm: VirtualMachine
    move: placement_plan.PlannedMove
    destination: Host | None
    forecast: MoveForecast | None = None


@dataclass(frozen=True)
class EvacuationPlan:
    host: Host
    moves: list[PlannedEvacuation]
    predicted_total_ms: int | None  # None when a guest has not been measured or none can move

    @property
    def placed(self) -> list[PlannedEvacuation]:
        return [move for move in self.moves if move.destination is not None]

    @property
    def unplaceable(self) -> list[PlannedEvacuation]:
        return [move for move in self.moves if move.destination is None]


def running_vms(host: Host) -> list[VirtualMachine]:
    return list(VirtualMachine.objects.select_related("host", "host__cluster").filter(host=host, power_state__in=ACTIVE_POWER_STATES).order_by("name"))


def plan(host: Host, *, measure: bool = True, options: MigrationOptions | None = None) -> EvacuationPlan:
    """Where each VM running on `host` would go, spread by load; with `measure`, the forecast
    of the whole evacuation under the current limits, from the inventory's measurements."""
    planned = [PlannedEvacuation(move.vm, move.planned, move.destination) for move in assistant.plan_moves(running_vms(host))]
    if not measure or not any(item.destination for item in planned):
        return EvacuationPlan(host, planned, None)
    placed = [item for item in planned if item.destination]
    forecasts = forecast_moves([(item.vm, item.destination) for item in placed], options or MigrationOptions())
    by_vm = {item.vm.pk: forecast for item, forecast in zip(placed, forecasts)}
    planned = [PlannedEvacuation(item.vm, item.move, item.destination, by_vm.get(item.vm.pk)) for item in planned]
    return EvacuationPlan(host, planned, _predicted_total_ms(planned))


def _predicted_total_ms(planned: list[PlannedEvacuation]) -> int | None:
    timed = []
    for item in planned:
        if item.destination is None:
            continue
        if item.forecast is None or item.forecast.forecast is None:
            return None
        timed.append(TimedMove(item.destination.pk, item.forecast.forecast.prediction.total_ms))
    limits = MigrationLimits.current()
    return evacuation_ms(timed, limits.max_outgoing_per_host, limits.max_incoming_per_host, limits.max_concurrent)


def enter(host: Host, *, requested_by=None, options: MigrationOptions | None = None, predicted_total_ms: int | None = None) -> Evacuation:
    """Close the host to new VMs and start moving its VMs off it."""
    options = options or MigrationOptions(reason=f"Evacuating {host.name} for maintenance")
    options.validate()
    with transaction.atomic():
        host = Host.objects.select_for_update().get(pk=host.pk)
        if host.state in CLOSED_HOST_STATES:
            raise StateConflict(f"{host.name} is already {host.get_state_display().lower()}.")
        if not host.is_reachable:
            raise MigrationRequestError(f"{host.name} does not answer ({host.last_error or 'never read'}): its VMs cannot be moved live.")
        host.state = HostState.ENTERING_MAINTENANCE
        host.save(update_fields=["state"])  # save(), not update(): the audit trail records it
        batch = MigrationBatch.objects.create(requested_by=requested_by, reason=options.reason)
        evacuation = Evacuation.objects.create(
            host=host, batch=batch, requested_by=requested_by, predicted_total_ms=predicted_total_ms,
            message=f"Moving the VMs off {host.name}.", options=asdict(options),
        )
        placed = plan(host, measure=False).placed
        planned = planned_of([(item.vm, item.destination) for item in placed])
        for item in placed:
            try:
                submit_migration(item.vm, item.destination, options, requested_by=requested_by, batch=batch, planned=planned)
            except MigrationRequestError:
                pass  # nothing was created for it: settling plans it again and stops with the reason
    # Reading the host again takes libvirt, which this process (a page, the API) may not
    # reach: the scheduler advances the evacuation within EVACUATION_INTERVAL. VMs that could
    # not be submitted are retried or stopped now, with the options entered.
    if not evacuation.batch.tasks.filter(state__in=ACTIVE_STATES).exists() and running_vms(host):
        settle(evacuation, options=options)
    return evacuation


def abort(evacuation: Evacuation, *, actor=None) -> str:
    """Stop the evacuation: queued moves are cancelled, running ones finish. The host stays
    closed to new VMs until maintenance is exited."""
    if evacuation.state != EvacuationState.RUNNING:
        raise StateConflict(f"Evacuation #{evacuation.pk} has already {evacuation.get_state_display().lower()}.")
    cancelled = 0
    for task in evacuation.batch.tasks.filter(state__in=(TaskState.QUEUED, TaskState.WAITING)):
        cancel_task(task, actor=actor)
        cancelled += 1
    running = evacuation.batch.tasks.filter(state__in=ACTIVE_STATES).count()
    who = actor.get_username() if actor else "the system"
    _end(evacuation, EvacuationState.ABORTED, f"Aborted by {who}: {cancelled} queued move{'s' if cancelled != 1 else ''} cancelled, {running} running finish. {evacuation.host.name} stays closed to new VMs until maintenance is exited.")
    return evacuation.message


def exit_maintenance(host: Host, *, actor=None) -> str:
    """Return the host to service; an evacuation still running is aborted first."""
    host.refresh_from_db()
    if host.state not in CLOSED_HOST_STATES:
        raise StateConflict(f"{host.name} is not in maintenance.")
    running = Evacuation.objects.filter(host=host, state=EvacuationState.RUNNING).first()
    if running is not None:
        abort(running, actor=actor)
    host.state = HostState.CONNECTED if host.is_reachable else HostState.DISCONNECTED
    host.save(update_fields=["state"])
    return f"{host.name} is back in service and takes VMs again."


def settle(evacuation: Evacuation, *, options: MigrationOptions | None = None) -> None:
    """With no move of the evacuation active and its host read from libvirt (by
    `evacuation.advance`, in the scheduler): finish it if no VM runs there, else retry or
    stop. `options`: what it was entered with, when no move of it has recorded them yet."""
    host = evacuation.host
    remaining = running_vms(host)
    moved = evacuation.batch.tasks.filter(state=TaskState.SUCCEEDED).count()
    if not remaining:
        host.refresh_from_db()  # the sync wrote it meanwhile
        host.state = HostState.MAINTENANCE
        host.save(update_fields=["state"])
        _end(evacuation, EvacuationState.COMPLETED, f"No VM runs on {host.name} any more ({moved} moved): it is in maintenance.")
        return
    _retry_or_stop(evacuation, remaining, moved, options or _options_of(evacuation))


def _options_of(evacuation: Evacuation) -> MigrationOptions:
    """The options the evacuation was entered with (priority, max downtime, bandwidth,
    convergence, reason): every move of it, retries included, is submitted with the same
    ones. An evacuation entered before they were stored takes them from its first move."""
    if evacuation.options:
        return MigrationOptions(**evacuation.options)
    first = evacuation.batch.tasks.order_by("created_at", "pk").first()
    if first is not None:
        return first.options()
    return MigrationOptions(reason=evacuation.batch.reason or f"Evacuating {evacuation.host.name} for maintenance")


def _retry_or_stop(evacuation: Evacuation, remaining: list[VirtualMachine], moved: int, options: MigrationOptions) -> None:
    now = timezone.now()
    due = []
    for vm in remaining:
        attempts = list(evacuation.batch.tasks.filter(vm=vm).order_by("created_at"))
        if len(attempts) >= MAX_ATTEMPTS:
            last = attempts[-1]
            why = last.error or f"its last move ended {last.get_state_display().lower()}"
            _stop(evacuation, moved, f"{vm.name} could not move after {len(attempts)} attempts: {why}")
            return
        if attempts and now < (attempts[-1].finished_at or now) + RETRY_AFTER * 2 ** (len(attempts) - 1):
            continue  # its wait before the next attempt has not passed
        due.append(vm)
    if not due:
        return
    moves = assistant.plan_moves(due)
    stuck = [move for move in moves if move.destination is None]
    if stuck:
        names = "; ".join(f"{move.vm.name}: {move.planned.blocked_reason}" for move in stuck)
        _stop(evacuation, moved, f"Nowhere to go for {names}")
        return
    planned = planned_of([(move.vm, move.destination) for move in moves])
    for move in moves:
        vm = move.vm
        try:
            task = submit_migration(vm, move.destination, options, requested_by=evacuation.requested_by, batch=evacuation.batch, planned=planned)
        except MigrationRequestError as error:
            _stop(evacuation, moved, str(error))
            return
        attempt = evacuation.batch.tasks.filter(vm=vm).count()
        if attempt > 1:
            task.log(EventKind.INFO, f"Attempt {attempt} of {MAX_ATTEMPTS} to move {vm.name} off {evacuation.host.name}.")


def _stop(evacuation: Evacuation, moved: int, why: str) -> None:
    host = evacuation.host.name
    _end(evacuation, EvacuationState.STOPPED, f"Stopped: {why.rstrip('.')}. {moved} VM{'s' if moved != 1 else ''} moved; {host} stays entering maintenance, closed to new VMs.")


def _end(evacuation: Evacuation, state: str, message: str) -> None:
    evacuation.state, evacuation.message, evacuation.finished_at = state, message, timezone.now()
    evacuation.save(update_fields=["state", "message", "finished_at"])
