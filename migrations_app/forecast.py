"""The forecast of one move, from the guest as it is now: memory in use and the rate it
dirties pages, measured through libvirt, replayed by `prediction.predict`. The wizard shows
it before anything is submitted; the worker takes it again just before it starts. The
dirty rate is the inventory's recent background measurement where there is one."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Case, OuterRef, Q, Subquery, Value, When
from django.utils import timezone

from hypervisor import HypervisorError
from hypervisor.connection import Connection
from hypervisor.guest import Guest
from inventory.dirty_rate import recent_dirty_rate, recent_working_set
from inventory.models import Host, VirtualMachine

from .choices import TaskState
from .models import MigrationTask
from .options import MigrationOptions
from .policy import MB, MIB, ConvergenceInputs, ConvergencePolicy
from .prediction import SETUP_MS, Prediction, predict

POLICY = ConvergencePolicy()
# A guest without a recent rate is sampled for a second; a batch measures this many at once.
PARALLEL_MEASUREMENTS = 8


@dataclass(frozen=True)
class Forecast:
    prediction: Prediction
    inputs: ConvergenceInputs  # with what was measured, as the policy then steers by it
    resident_bytes: int
    dirty_rate_bytes_s: int | None  # None when the hypervisor cannot measure it
    link_bytes_s: int
    sampled_now: bool = True  # False: the inventory's recent background measurement

    def summary(self) -> str:
        rate = f"{self.dirty_rate_bytes_s / MB:.0f} MB/s" if self.dirty_rate_bytes_s is not None else "an unmeasured rate"
        if not self.sampled_now:
            rate += " as last sampled by the inventory"
        return (
            f"{self.prediction.strategy}, about {self.prediction.total_ms / 1000:.1f} s with a {self.prediction.downtime_ms} ms "
            f"pause ({self.resident_bytes / MIB:.0f} MiB in use, dirtied at {rate}, {self.link_bytes_s / MIB:.0f} MiB/s)."
        )


def expected_link_bytes_s(source: Host, destination: Host, bandwidth_mib_s: int | None) -> int:
    """The rate the copy between these hosts should reach: what the last uncapped migration
    between them, or else near them, achieved (else the assumed link speed), and no more than
    the cap. QEMU's
    copy can be CPU-bound below a fast link's cap, so the cap alone may promise too much."""
    achieved = _last_uncapped_rate(source, destination)
    if bandwidth_mib_s:
        return min(bandwidth_mib_s * MIB, achieved) if achieved else bandwidth_mib_s * MIB
    return achieved or settings.MIGRATION_ASSUMED_BANDWIDTH_MIB_S * MIB


def last_moved_bytes(vm: VirtualMachine) -> int | None:
    """What the VM's last successful migration moved, or None."""
    return last_moved_bytes_of([vm]).get(vm.pk)


def last_moved_bytes_of(vms: list[VirtualMachine]) -> dict[int, int]:
    """What each VM's last successful migration moved, by VM id, in one query; a VM never
    moved is left out."""
    last = (
        MigrationTask.objects.filter(vm=OuterRef("pk"), state=TaskState.SUCCEEDED, bytes_transferred__gt=0)
        .order_by("-finished_at")
        .values("bytes_transferred")[:1]
    )
    moved = VirtualMachine.objects.filter(pk__in=[vm.pk for vm in vms]).annotate(moved=Subquery(last)).values_list("pk", "moved")
    return {pk: bytes_moved for pk, bytes_moved in moved if bytes_moved}


def _last_uncapped_rate(source: Host, destination: Host) -> int | None:
    """Bytes per second of the copy itself, without the fixed cost of setting it up, in the
    last uncapped migration between these hosts; else the other way between them (links are
    mostly symmetric); else from or to either of them (one end's network and CPU set the pace)."""
    ends = (source.pk, destination.pk)
    nearness = Case(
        When(source=source, destination=destination, then=Value(0)),
        When(source=destination, destination=source, then=Value(1)),
        default=Value(2),
    )
    last = (
        MigrationTask.objects.filter(Q(source__in=ends) | Q(destination__in=ends))
        .filter(state=TaskState.SUCCEEDED, bandwidth_mib_s__isnull=True, bytes_transferred__gt=0, total_ms__gt=0)
        .annotate(nearness=nearness)
        .order_by("nearness", "-finished_at")
        .values_list("bytes_transferred", "total_ms")
        .first()
    )
    if last is None:
        return None
    moved, total_ms = last
    return round(moved * 1000 / max(total_ms - SETUP_MS, total_ms / 2))


def forecast(
    guest: Guest, memory_bytes: int, inputs: ConvergenceInputs, link_bytes_s: int,
    recent_dirty_rate: int | None = None, moved_before: int | None = None, working_set: int | None = None,
) -> Forecast:
    """Replay the migration from the guest's memory in use and its dirty rate: the recent
    one given, else measured now for a second. Raises HypervisorError.

    Memory in use: QEMU's resident set, which also holds QEMU's own memory, or what the
    guest's last migration moved if less: a first pass sends every page the guest uses.
    The working set, the pages it keeps rewriting, is the inventory's measurement too."""
    resident = guest.resident_bytes() or memory_bytes
    if moved_before:
        resident = min(resident, moved_before)
    sampled_now = recent_dirty_rate is None
    dirty_rate = guest.measure_dirty_rate(seconds=1) if sampled_now else recent_dirty_rate
    inputs = dataclasses.replace(inputs, measured_dirty_rate_bytes_s=dirty_rate or 0, expected_link_bytes_s=link_bytes_s)
    prediction = predict(resident, dirty_rate or 0, link_bytes_s, inputs, POLICY, working_set)
    return Forecast(prediction, inputs, resident, dirty_rate, link_bytes_s, sampled_now)


@dataclass(frozen=True)
class MoveForecast:
    forecast: Forecast | None
    error: str = ""  # why there is no forecast


def forecast_moves(moves: list[tuple[VirtualMachine, Host]], options: MigrationOptions) -> list[MoveForecast]:
    """A forecast for each (VM, destination) under the operator's options, measured in parallel.
    What the database knows is read once per host pair and once for all VMs, not per move."""
    now = timezone.now()
    links = {pair: expected_link_bytes_s(*pair, options.bandwidth_mib_s) for pair in {(vm.host, destination) for vm, destination in moves}}
    moved_before = last_moved_bytes_of([vm for vm, _ in moves])
    jobs = [
        (vm.host.uri, str(vm.uuid), vm.memory_bytes, options.convergence_inputs(vm.memory_bytes),
         links[vm.host, destination], recent_dirty_rate(vm, now), moved_before.get(vm.pk), recent_working_set(vm, now))
        for vm, destination in moves
    ]
    with ThreadPoolExecutor(max_workers=PARALLEL_MEASUREMENTS) as pool:
        return list(pool.map(lambda job: _measure(*job), jobs))


def _measure(
    uri: str, uuid: str, memory_bytes: int, inputs: ConvergenceInputs, link_bytes_s: int,
    dirty_rate: int | None, moved_before: int | None, working_set: int | None,
) -> MoveForecast:
    try:
        with Connection(uri, settings.LIBVIRT_CALL_TIMEOUT_SECONDS) as connection:
            return MoveForecast(forecast(Guest(connection, uuid), memory_bytes, inputs, link_bytes_s, dirty_rate, moved_before, working_set))
    except HypervisorError as error:
        return MoveForecast(None, f"Could not measure the guest: {error}")
