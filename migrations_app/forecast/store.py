"""The forecast of one move, replayed by `prediction.predict` from the guest's memory in use
and the rate it dirties pages.

Pages, the API and the command line forecast from what the inventory measured in the
background (`forecast_moves`): the web server opens no libvirt connection. A guest without a
recent measurement is measured by an inventory worker, which the page waits a few seconds
for; else its forecast is "not measured yet". A guest the worker could not measure is
forecast without a dirty rate, as the worker's own forecast does. Every forecast says how
old its measurement is. The worker measures the guest again just before it starts
(`live_forecast`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.utils import timezone

from inventory import enqueue
from inventory.dirty_rate import measured_at, recent_dirty_rate, recent_nonzero_memory, recent_working_set
from inventory.models import Host, VirtualMachine

from migrations_app.forecast.history import FirstPassHint, LinkRates, expected_link_rates, first_pass_hints
from migrations_app.options import MigrationOptions
from migrations_app.storage.store import copied_bytes_of
from migrations_app.convergence.policy import ConvergenceInputs
from migrations_app.forecast.replay import POLICY, Forecast, MoveForecast, replay

__all__ = ["POLICY", "Forecast", "MoveForecast", "forecast_moves", "replay"]

# A measurement a worker took for a page stands for this long for the next pages: no more
# than an inventory round, so a guest it could not measure is asked about again soon.
MEASUREMENT_KEPT_SECONDS = 30


def forecast_moves(
    moves: list[tuple[VirtualMachine, Host]], options: MigrationOptions, wait_seconds: float = enqueue.MEASUREMENT_WAIT_SECONDS,
    disk_bytes: Mapping[int, int] | None = None,
) -> list[MoveForecast]:
    """A forecast for each (VM, destination) under the operator's options, from the
    inventory's measurements. Guests it has no recent rate for are measured by an inventory
    worker first, waited for `wait_seconds` (0: asked, not waited for; the background's
    computations read the measurement at their next turn). `disk_bytes` (by VM id): what each
    move copies of the VM's disks, where datastores were chosen; else what it copies unasked.
    What the database knows is read once per host pair and once for all VMs, not per move."""
    answered, why_not = _measure_the_unmeasured([vm for vm, _ in moves], wait_seconds)
    now = timezone.now()
    links = {pair: expected_link_rates(*pair, options.bandwidth_mib_s) for pair in {(vm.host, destination) for vm, destination in moves}}
    hints = first_pass_hints([vm for vm, _ in moves])
    copied = disk_bytes if disk_bytes is not None else copied_bytes_of(moves)
    return [
        _from_inventory(
            vm, options.convergence_inputs(vm.memory_bytes), links[vm.host, destination], hints.get(vm.pk), now, answered, why_not, copied.get(vm.pk, 0),
        )
        for vm, destination in moves
    ]


def _from_inventory(
    vm: VirtualMachine, inputs: ConvergenceInputs, link: LinkRates, first_pass: FirstPassHint | None, now: datetime, answered: bool, why_not: str,
    disk_bytes: int = 0,
) -> MoveForecast:
    rate = recent_dirty_rate(vm, now)
    if rate is None and not answered:
        return MoveForecast(None, f"Not measured yet: {why_not}.")
    # The resident set every sync reads; the VM's size until one has.
    resident, resident_at = (vm.memory_in_use_bytes, vm.load_sampled_at) if vm.memory_in_use_bytes else (vm.memory_bytes, None)
    # A worker that tried and found no rate (the inventory's longer window under way, or a
    # hypervisor that cannot measure): the forecast does without one rather than wait.
    taken = [moment for moment in (measured_at(vm, now) if rate is not None else now, resident_at) if moment is not None]
    return MoveForecast(replay(
        resident, inputs, link, rate, first_pass, recent_working_set(vm, now), sampled_now=False, measured_at=min(taken),
        nonzero_bytes=recent_nonzero_memory(vm, now), disk_bytes=disk_bytes,
    ))


def _measure_the_unmeasured(vms: list[VirtualMachine], wait_seconds: float) -> tuple[bool, str]:
    """Ask an inventory worker to measure the guests with no recent rate, and read what it
    stored on them: whether it answered, and if not, why."""
    now = timezone.now()
    unmeasured = {vm.pk: vm for vm in vms if recent_dirty_rate(vm, now) is None}
    if not unmeasured:
        return True, ""
    ids = sorted(unmeasured)
    answer = enqueue.ask(
        enqueue.MEASURE_GUESTS, ids, key=",".join(map(str, ids)), wait_seconds=wait_seconds, keep_seconds=MEASUREMENT_KEPT_SECONDS,
    )
    if not answer.done:
        return False, answer.why_not
    for row in VirtualMachine.objects.filter(pk__in=ids).values("pk", *MEASUREMENT_FIELDS):
        for name in MEASUREMENT_FIELDS:
            setattr(unmeasured[row["pk"]], name, row[name])
    return True, ""


MEASUREMENT_FIELDS = (
    "dirty_rate_bytes_s", "dirty_rate_read_at", "dirty_rate_readings", "dirtied_in_window_bytes", "dirtied_in_window_read_at",
    "memory_in_use_bytes", "load_sampled_at", "nonzero_memory_bytes", "nonzero_memory_read_at",
)
