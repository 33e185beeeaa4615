"""The pre-flight check a worker makes through libvirt just before a migration: whether the
destination's hypervisor can offer the VM's CPU, as libvirt itself compares them. Pages and
the API judge the CPUs from the inventory (`checks.check_cpu_compatible`)."""

from __future__ import annotations

from django.conf import settings

from hypervisor import HypervisorError
from hypervisor.connection import Connection
from hypervisor.guest import Guest, offers_cpu
from inventory.models import Host, VirtualMachine

from migrations_app.checks import rules
from migrations_app.checks.report import CheckResult
from migrations_app.checks.rules import fail, ok, warn


def check_cpu_compatible(vm: VirtualMachine, source: Host, destination: Host) -> CheckResult:
    """libvirt compares the VM's CPU with what the destination's hypervisor can offer."""
    if not (source.is_reachable and destination.is_reachable):
        return warn("cpu_compatible", "CPU compatibility could not be checked while a host is unreachable.")
    timeout = settings.LIBVIRT_CALL_TIMEOUT_SECONDS
    try:
        with Connection(source.uri, timeout) as connection:
            cpu = Guest(connection, str(vm.uuid)).cpu()
        if not cpu.xml:
            return ok("cpu_compatible", "The VM uses the hypervisor's default CPU, which every host offers.")
        with Connection(destination.uri, timeout) as connection:
            offer = offers_cpu(connection, cpu)
    except HypervisorError as error:
        return fail("cpu_compatible", f"Could not compare the VM's CPU with {destination.name}: {error}")
    model = vm.cpu_model or vm.cpu_mode or "its CPU"
    return rules.cpu_offered(destination.name, model, offer.compatible, offer.missing, offer.detail)
