"""Measuring guests now, for a forecast that found no recent measurement: each running
guest's dirty rate sampled for a second through libvirt, and its non-zero memory where no
recent sample of it stands, kept on the VM as the inventory's background measurements are,
so the page that asked (and the next) reads them with their age. Runs in an inventory worker."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.utils import timezone

from hypervisor import HypervisorError
from hypervisor.connection import Connection
from hypervisor.guest import Guest
from hypervisor.sampling import DIRTY_RATE_SAMPLE_SECONDS

from .choices import PowerState
from .dirty_rate import record_dirty_rate, record_nonzero_memory, recent_nonzero_memory
from .models import VirtualMachine

# Guests measured at once: each waits a second for its rate.
PARALLEL_MEASUREMENTS = 8


def measure_guests(vm_ids: list[int]) -> int:
    """Measure each running guest of `vm_ids`, and sample the memory of those without a recent
    sample of their non-zero memory, side by side; how many had their rate measured."""
    vms = list(VirtualMachine.objects.select_related("host").filter(pk__in=vm_ids, power_state=PowerState.RUNNING, host__isnull=False))
    unsampled = [vm for vm in vms if recent_nonzero_memory(vm) is None]
    with ThreadPoolExecutor(max_workers=PARALLEL_MEASUREMENTS) as pool:
        rates = pool.map(lambda vm: _measured(vm, Guest.measure_dirty_rate, seconds=DIRTY_RATE_SAMPLE_SECONDS), vms)
        nonzero = pool.map(lambda vm: _measured(vm, Guest.nonzero_memory_bytes), unsampled)
        rates, nonzero = list(rates), list(nonzero)
    now = timezone.now()
    measured = []
    for vm, rate in zip(vms, rates):
        if rate is not None:
            record_dirty_rate(vm, rate, now)
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


def _measured(vm: VirtualMachine, measure: Callable[..., int | None], **arguments) -> int | None:
    try:
        with Connection(vm.host.uri, settings.LIBVIRT_CALL_TIMEOUT_SECONDS) as connection:
            return measure(Guest(connection, str(vm.uuid)), **arguments)
    except HypervisorError:
        return None  # the forecast says it is not measured yet; the next sync may measure it
