"""The forecast of one move, from the guest as it is now: memory in use and the rate it
dirties pages, measured through libvirt, replayed by `prediction.predict`. The wizard shows
it before anything is submitted; the worker takes it again just before it starts. The
dirty rate is the inventory's recent background measurement where there is one."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from hypervisor import HypervisorError
from hypervisor.connection import Connection
from hypervisor.guest import Guest
from inventory.dirty_rate import recent_dirty_rate, recent_working_set
from inventory.models import Host, VirtualMachine

from .history import FirstPassHint, LinkRates, expected_link_rates, first_pass_hints
from .options import MigrationOptions
from .policy import MB, MIB, ConvergenceInputs, ConvergencePolicy
from .prediction import Prediction, predict

POLICY = ConvergencePolicy()
# A guest without a recent rate is sampled for a second; a batch measures this many at once.
PARALLEL_MEASUREMENTS = 8


@dataclass(frozen=True)
class Forecast:
    prediction: Prediction
    inputs: ConvergenceInputs  # with what was measured, as the policy then steers by it
    resident_bytes: int  # QEMU's resident set
    first_pass_bytes: int  # what of it the first pass is expected to send
    dirty_rate_bytes_s: int | None  # None when the hypervisor cannot measure it
    link: LinkRates
    sampled_now: bool = True  # False: the inventory's recent background measurement

    def summary(self) -> str:
        rate = f"{self.dirty_rate_bytes_s / MB:.0f} MB/s" if self.dirty_rate_bytes_s is not None else "an unmeasured rate"
        if not self.sampled_now:
            rate += " as last sampled by the inventory"
        return (
            f"{self.prediction.strategy}, about {self.prediction.total_ms / 1000:.1f} s with a {self.prediction.downtime_ms} ms "
            f"pause ({self.first_pass_bytes / MIB:.0f} MiB in use, dirtied at {rate}, {self.link.first_pass_bytes_s / MIB:.0f} MiB/s)."
        )


def forecast(
    guest: Guest, memory_bytes: int, inputs: ConvergenceInputs, link: LinkRates,
    recent_dirty_rate: int | None = None, first_pass: FirstPassHint | None = None, working_set: int | None = None,
) -> Forecast:
    """Replay the migration from the guest's memory in use and its dirty rate: the recent
    one given, else measured now for a second. Raises HypervisorError.

    Memory in use: what a first pass sends, every page the guest uses. QEMU's resident set
    holds that and QEMU's own memory, which past migrations tell apart (`first_pass`).
    The working set, the pages it keeps rewriting, is the inventory's measurement too."""
    resident = guest.resident_bytes() or memory_bytes
    in_use = first_pass.first_pass_bytes(resident) if first_pass else resident
    sampled_now = recent_dirty_rate is None
    dirty_rate = guest.measure_dirty_rate(seconds=1) if sampled_now else recent_dirty_rate
    # Whether the guest outruns the link is a matter of how fast its dirtied pages are resent.
    inputs = dataclasses.replace(inputs, measured_dirty_rate_bytes_s=dirty_rate or 0, expected_link_bytes_s=link.resend_bytes_s)
    prediction = predict(in_use, dirty_rate or 0, link.first_pass_bytes_s, inputs, POLICY, working_set, link.resend_bytes_s)
    return Forecast(prediction, inputs, resident, in_use, dirty_rate, link, sampled_now)


@dataclass(frozen=True)
class MoveForecast:
    forecast: Forecast | None
    error: str = ""  # why there is no forecast


def forecast_moves(moves: list[tuple[VirtualMachine, Host]], options: MigrationOptions) -> list[MoveForecast]:
    """A forecast for each (VM, destination) under the operator's options, measured in parallel.
    What the database knows is read once per host pair and once for all VMs, not per move."""
    now = timezone.now()
    links = {pair: expected_link_rates(*pair, options.bandwidth_mib_s) for pair in {(vm.host, destination) for vm, destination in moves}}
    hints = first_pass_hints([vm for vm, _ in moves])
    jobs = [
        (vm.host.uri, str(vm.uuid), vm.memory_bytes, options.convergence_inputs(vm.memory_bytes),
         links[vm.host, destination], recent_dirty_rate(vm, now), hints.get(vm.pk), recent_working_set(vm, now))
        for vm, destination in moves
    ]
    with ThreadPoolExecutor(max_workers=PARALLEL_MEASUREMENTS) as pool:
        return list(pool.map(lambda job: _measure(*job), jobs))


def _measure(
    uri: str, uuid: str, memory_bytes: int, inputs: ConvergenceInputs, link: LinkRates,
    dirty_rate: int | None, first_pass: FirstPassHint | None, working_set: int | None,
) -> MoveForecast:
    try:
        with Connection(uri, settings.LIBVIRT_CALL_TIMEOUT_SECONDS) as connection:
            return MoveForecast(forecast(Guest(connection, uuid), memory_bytes, inputs, link, dirty_rate, first_pass, working_set))
    except HypervisorError as error:
        return MoveForecast(None, f"Could not measure the guest: {error}")
