"""The forecast a worker takes just before a migration starts, from the guest as it is now:
its resident set read through libvirt, and its dirty rate sampled now (the mean of two 1 s
readings) unless the inventory measured one recently. A guest nothing is known of yet (no migration of it or
from its host, no recent sample of its memory) has its memory sampled now: its resident set
alone counts its zero pages and QEMU's own memory, which the first pass does not send. Only
workers import this; pages forecast from the inventory (`forecast.forecast_moves`)."""

from __future__ import annotations

import statistics

from django.utils import timezone

from hypervisor import HypervisorError
from hypervisor.guest import Guest
from inventory.dirty_rate import record_nonzero_memory, recent_dirty_rate, recent_nonzero_memory, recent_working_set
from inventory.measure import dirty_rate_readings
from inventory.models import VirtualMachine

from migrations_app.forecast.replay import Forecast, replay
from migrations_app.forecast.history import LinkRates, first_pass_hints
from migrations_app.convergence.policy import ConvergenceInputs


def forecast(guest: Guest, vm: VirtualMachine, inputs: ConvergenceInputs, link: LinkRates, disk_bytes: int = 0) -> Forecast:
    """Replay the migration of `vm` from the guest's memory in use and its dirty rate: the
    inventory's recent one, else measured now; `disk_bytes` of disks are copied first.
    Raises HypervisorError."""
    resident = guest.resident_bytes() or vm.memory_bytes
    recent_rate = recent_dirty_rate(vm)
    sampled_now = recent_rate is None
    dirty_rate = _measured_now(guest) if sampled_now else recent_rate
    first_pass = first_pass_hints([vm]).get(vm.pk)
    nonzero = recent_nonzero_memory(vm)
    if first_pass is None and nonzero is None:
        nonzero = _sample_memory(guest, vm)
    return replay(
        resident, inputs, link, dirty_rate, first_pass, recent_working_set(vm), sampled_now=sampled_now,
        measured_at=timezone.now() if sampled_now else None, nonzero_bytes=nonzero, disk_bytes=disk_bytes,
    )


def _measured_now(guest: Guest) -> int | None:
    readings = [rate for rate, _ in dirty_rate_readings(guest)]
    return round(statistics.median(readings)) if readings else None


def _sample_memory(guest: Guest, vm: VirtualMachine) -> int | None:
    """The guest's non-zero memory, sampled now and kept on the VM for the next forecasts;
    None where it could not be read in time (the forecast then starts from the resident set)."""
    try:
        nonzero = guest.nonzero_memory_bytes()
    except HypervisorError:
        return None
    if nonzero is not None:
        record_nonzero_memory(vm, nonzero, timezone.now())
        VirtualMachine.objects.filter(pk=vm.pk).update(nonzero_memory_bytes=nonzero, nonzero_memory_read_at=vm.nonzero_memory_read_at)
    return nonzero

