"""Measuring guests now, for a forecast that found no recent measurement: each running
guest's dirty rate sampled for a second through libvirt and kept on the VM, as the
inventory's background measurements are, so the page that asked (and the next) reads it
with its age. Runs in an inventory worker."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.utils import timezone

from hypervisor import HypervisorError
from hypervisor.connection import Connection
from hypervisor.guest import Guest
from hypervisor.sampling import DIRTY_RATE_SAMPLE_SECONDS

from .choices import PowerState
from .models import VirtualMachine

# Guests measured at once: each waits a second for its rate.
PARALLEL_MEASUREMENTS = 8


def measure_guests(vm_ids: list[int]) -> int:
    """Measure each running guest of `vm_ids`; how many were measured."""
    vms = list(VirtualMachine.objects.select_related("host").filter(pk__in=vm_ids, power_state=PowerState.RUNNING, host__isnull=False))
    with ThreadPoolExecutor(max_workers=PARALLEL_MEASUREMENTS) as pool:
        rates = list(pool.map(lambda vm: _dirty_rate(vm.host.uri, str(vm.uuid)), vms))
    now = timezone.now()
    measured = []
    for vm, rate in zip(vms, rates):
        if rate is not None:
            vm.dirty_rate_bytes_s, vm.dirty_rate_read_at = rate, now
            measured.append(vm)
    # A metric, as the sync writes it: one update, no audit entry.
    VirtualMachine.objects.bulk_update(measured, ["dirty_rate_bytes_s", "dirty_rate_read_at"])
    return len(measured)


def _dirty_rate(uri: str, uuid: str) -> int | None:
    try:
        with Connection(uri, settings.LIBVIRT_CALL_TIMEOUT_SECONDS) as connection:
            return Guest(connection, uuid).measure_dirty_rate(seconds=DIRTY_RATE_SAMPLE_SECONDS)
    except HypervisorError:
        return None  # the forecast says it is not measured yet; the next sync may measure it
