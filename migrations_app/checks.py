"""Pre-flight checks: everything that must hold before a VM may move, each with a sentence
an operator can act on. Run at submission and again by the worker just before migrating."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Sum

from hypervisor import HypervisorError
from hypervisor.connection import Connection
from hypervisor.guest import Guest, offers_cpu
from inventory.choices import HostState, PowerState
from inventory.models import DatastoreMount, Host, NetworkAttachment, VirtualMachine

from .check_report import CheckReport, CheckResult, CheckStatus
from .choices import ACTIVE_STATES
from .models import MigrationTask


def preflight(vm: VirtualMachine, destination: Host, *, exclude_task_id: int | None = None) -> CheckReport:
    source = vm.host
    results = [check_vm_runs(vm), check_distinct_hosts(source, destination)]
    if source is None or source == destination:
        return CheckReport(tuple(results))
    results += [
        check_host_connected(source, "source"),
        check_host_connected(destination, "destination"),
        check_destination_open(destination),
        check_cpu_compatible(vm, source, destination),
        check_storage_shared(vm, destination),
        check_networks_present(vm, destination),
        check_memory_free(vm, destination, exclude_task_id),
    ]
    return CheckReport(tuple(results))


def ok(name: str, message: str) -> CheckResult:
    return CheckResult(name, CheckStatus.OK, message)


def warn(name: str, message: str) -> CheckResult:
    return CheckResult(name, CheckStatus.WARNING, message)


def fail(name: str, message: str) -> CheckResult:
    return CheckResult(name, CheckStatus.FAIL, message)


def check_vm_runs(vm: VirtualMachine) -> CheckResult:
    if vm.host is None:
        return fail("vm_runs", f"{vm.name} is not on any known host.")
    if vm.power_state == PowerState.RUNNING:
        return ok("vm_runs", f"{vm.name} runs on {vm.host.name}.")
    if vm.power_state == PowerState.PAUSED:
        return warn("vm_runs", f"{vm.name} is paused on {vm.host.name}; it will arrive paused.")
    return fail("vm_runs", f"{vm.name} is {vm.get_power_state_display().lower()}, not running: only a running VM can be live-migrated.")


def check_distinct_hosts(source: Host | None, destination: Host) -> CheckResult:
    if source is not None and source.pk == destination.pk:
        return fail("distinct_hosts", f"The VM already runs on {destination.name}: choose another destination.")
    return ok("distinct_hosts", f"Destination {destination.name} differs from the source.")


def check_host_connected(host: Host, role: str) -> CheckResult:
    name = f"{role}_connected"
    if not host.is_reachable:
        reason = host.last_error or "it has never answered"
        return fail(name, f"The {role} host {host.name} is not reachable through libvirt: {reason}")
    return ok(name, f"The {role} host {host.name} is connected.")


def check_destination_open(destination: Host) -> CheckResult:
    if destination.state == HostState.MAINTENANCE:
        return fail("destination_open", f"{destination.name} is {destination.get_state_display().lower()}: it takes no new VMs.")
    return ok("destination_open", f"{destination.name} accepts VMs.")


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
            compatible, detail = offers_cpu(connection, cpu)
    except HypervisorError as error:
        return fail("cpu_compatible", f"Could not compare the VM's CPU with {destination.name}: {error}")
    model = vm.cpu_model or vm.cpu_mode or "its CPU"
    if not compatible:
        return fail("cpu_compatible", f"{destination.name} cannot offer {model}: {detail or 'the CPUs are incompatible'}. Use the cluster's CPU baseline for the VM.")
    return ok("cpu_compatible", f"{destination.name} can offer {model}.")


def check_storage_shared(vm: VirtualMachine, destination: Host) -> CheckResult:
    mounted = set(DatastoreMount.objects.filter(host=destination, active=True).values_list("datastore_id", flat=True))
    problems = []
    for disk in vm.disks.select_related("datastore"):
        if disk.datastore is None:
            problems.append(f"Disk {disk.target} ({disk.source}) is not on a datastore vmotion knows, so it is local to {vm.host.name}.")
        elif disk.datastore_id not in mounted:
            problems.append(f"Disk {disk.target} is on datastore {disk.datastore.name}, which {destination.name} does not mount.")
    if problems:
        return fail("storage_shared", " ".join(problems))
    return ok("storage_shared", f"Every disk is on a datastore {destination.name} mounts.")


def check_networks_present(vm: VirtualMachine, destination: Host) -> CheckResult:
    present = set(NetworkAttachment.objects.filter(host=destination, active=True).values_list("network_id", flat=True))
    missing = sorted({nic.network.name if nic.network else nic.network_name for nic in vm.nics.select_related("network") if nic.network_id not in present})
    if missing:
        return fail("networks_present", f"{destination.name} lacks the network{'s' if len(missing) > 1 else ''} {', '.join(missing)} the VM's NICs use.")
    return ok("networks_present", f"Every network the VM uses exists on {destination.name}.")


def check_memory_free(vm: VirtualMachine, destination: Host, exclude_task_id: int | None) -> CheckResult:
    reserve = settings.MIGRATION_MEMORY_RESERVE_BYTES
    incoming = (
        MigrationTask.objects.filter(destination=destination, state__in=ACTIVE_STATES)
        .exclude(pk=exclude_task_id)
        .exclude(vm=vm)
        .aggregate(total=Sum("vm__memory_bytes"))["total"]
        or 0
    )
    available = destination.memory_free_bytes - incoming
    needed = vm.memory_bytes + reserve
    gib = 1024**3
    if available < needed:
        return fail(
            "memory_free",
            f"{destination.name} has {available / gib:.1f} GiB free (after {incoming / gib:.1f} GiB for migrations on their way), "
            f"the VM needs {vm.memory_bytes / gib:.1f} GiB plus a {reserve / gib:.1f} GiB reserve.",
        )
    return ok("memory_free", f"{destination.name} has {available / gib:.1f} GiB free for the VM's {vm.memory_bytes / gib:.1f} GiB.")
