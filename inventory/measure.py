"""Measuring guests now, for a forecast that found no recent measurement: each running
guest's dirty rate sampled for a second through libvirt, twice, and its non-zero memory where no
recent sample of it stands, kept on the VM as the inventory's background measurements are,
so the page that asked (and the next) reads them with their age. Runs in an inventory worker."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from hypervisor import HypervisorError
from hypervisor.connection import Connection
from hypervisor.guest import Guest
from hypervisor.sampling import DIRTY_RATE_SAMPLE_SECONDS

from .choices import PowerState
from .dirty_rate import record_dirty_rate, record_nonzero_memory, recent_nonzero_memory
from .models import VirtualMachine

# Guests measured at once: each waits a second for each of its readings.
PARALLEL_MEASUREMENTS = 8
# 1 s readings taken one after the other, all kept: page sampling hashes 512 pages per GiB, so
# one reading of a 128 MiB guest counts 2 MB/s per changed page. In the lab a guest rewriting
# 1 MB/s read 4 MB/s in one second, and its forecast came out 28 % long; the mean of two
# halves that step, and both still fit the page's wait for an answer.
READINGS_NOW = 2


def measure_guests(vm_ids: list[int]) -> int:
    """Measure each running guest of `vm_ids`, and sample the memory of those without a recent
    sample of their non-zero memory, side by side; how many had their rate measured."""
    vms = list(VirtualMachine.objects.select_related("host").filter(pk__in=vm_ids, power_state=PowerState.RUNNING, host__isnull=False))
    unsampled = [vm for vm in vms if recent_nonzero_memory(vm) is None]
    with ThreadPoolExecutor(max_workers=PARALLEL_MEASUREMENTS) as pool:
        readings = pool.map(lambda vm: _measured(vm, dirty_rate_readings) or [], vms)
        nonzero = pool.map(lambda vm: _measured(vm, Guest.nonzero_memory_bytes), unsampled)
        readings, nonzero = list(readings), list(nonzero)
    now = timezone.now()
    measured = []
    for vm, taken in zip(vms, readings):
        for rate, read_at in taken:
            record_dirty_rate(vm, rate, read_at)
        if taken:
            measured.append(vm)
    sampled = []
    for vm, in_use in zip(unsampled, nonzero):
        if in_use is not None:
            record_nonzero_memory(vm, in_use, now)
            sampled.append(vm)
    # Metrics, as the sync writes them: no audit entry, and only what was measured now, so a
    # sync's newer reading of the rest stands.
    VirtualMachine.objects.bulk_update(measured, ["dirty_rate_bytes_s", "dirty_rate_read_at", "dirty_rate_readings"])
    VirtualMachine.objects.bulk_update(sampled, ["nonzero_memory_bytes", "nonzero_memory_read_at"])
    return len(measured)


def dirty_rate_readings(guest: Guest) -> list[tuple[int, datetime]]:
    """Up to `READINGS_NOW` 1 s readings of the guest's dirty rate, each with when it ended:
    those taken before one found the rate unmeasurable. Raises HypervisorError."""
    readings = []
    for _ in range(READINGS_NOW):
        rate = guest.measure_dirty_rate(seconds=DIRTY_RATE_SAMPLE_SECONDS)
        if rate is None:
            break
        readings.append((rate, timezone.now()))
    return readings


def _measured(vm: VirtualMachine, measure: Callable, **arguments):
    try:
        with Connection(vm.host.uri, settings.LIBVIRT_CALL_TIMEOUT_SECONDS) as connection:
            return measure(Guest(connection, str(vm.uuid)), **arguments)
    except HypervisorError:
        return None  # the forecast says it is not measured yet; the next sync may measure it
