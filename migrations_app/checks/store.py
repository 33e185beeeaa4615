"""Pre-flight checks: everything that must hold before a VM may move, each with a sentence
an operator can act on. Run at submission and again by the worker just before migrating.
They read the inventory; only the worker's CPU comparison asks libvirt (`live_checks`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from django.conf import settings
from django.db.models import Sum

from inventory.choices import CLOSED_HOST_STATES, PowerState
from inventory.cpu_compat import HOST_CPU_MODES, listed
from inventory.models import Cluster, DatastoreMount, Host, NetworkAttachment, VirtualMachine

from migrations_app.affinity import store as affinity_rules
from migrations_app.checks import rules
from migrations_app.affinity.rules import breaches
from migrations_app.checks.report import CheckReport, CheckResult
from migrations_app.storage.placement import DiskPlacement
from migrations_app.storage.store import DiskChoice, placements
from migrations_app.checks.rules import fail, ok, warn
from migrations_app.choices import ACTIVE_STATES
from migrations_app.models import MigrationTask

CpuCheck = Callable[[VirtualMachine, Host, Host], CheckResult]


def preflight(
    vm: VirtualMachine, destination: Host, *, exclude_task_id: int | None = None, planned: Mapping[int, int] | None = None,
    cpu_check: CpuCheck | None = None, disks: DiskChoice | None = None,
) -> CheckReport:
    """`planned` (VM id to host id): the other moves submitted with this one, which the
    affinity rules count as made. `cpu_check`: how the CPUs are compared; by default from
    the inventory, as pages have no libvirt connection (the worker passes libvirt's).
    `disks`: where disks the destination cannot reach are copied to; none, they must not be."""
    source = vm.host
    results = [check_vm_runs(vm), check_distinct_hosts(source, destination)]
    if source is None or source == destination:
        return CheckReport(tuple(results))
    results += [
        check_host_connected(source, "source"),
        check_host_connected(destination, "destination"),
        check_destination_open(destination),
        (cpu_check or check_cpu_compatible)(vm, source, destination),
        check_disk_placement(vm, destination, disks) if disks is not None and not disks.empty else check_storage_shared(vm, destination),
        check_networks_present(vm, destination),
        check_memory_free(vm, destination, exclude_task_id),
        check_affinity(vm, destination, planned),
        check_encryption(source, destination),
    ]
    return CheckReport(tuple(results))


def storage_preflight(vm: VirtualMachine, disks: DiskChoice) -> CheckReport:
    """The checks of a storage-only move: the VM runs on a connected host, and each disk
    that goes has a datastore of that host to go to, in a format QEMU copies, with room."""
    results = [check_vm_runs(vm)]
    if vm.host is None:
        return CheckReport(tuple(results))
    results += [check_host_connected(vm.host, "source"), check_disks_change_datastore(vm, disks)]
    return CheckReport(tuple(results))


def check_disks_change_datastore(vm: VirtualMachine, choice: DiskChoice) -> CheckResult:
    moving, problems = _copies(vm, vm.host, choice)
    if problems:
        return fail("storage_move", problems)
    if not moving:
        return fail("storage_move", f"Every disk of {vm.name} already is on the datastore chosen for it: nothing to move.")
    copies = "; ".join(f"{p.disk.target} from {p.disk.datastore_name or p.disk.source} to {p.store.name} ({p.disk.copied_bytes / 1024**3:.1f} GiB)" for p in moving)
    return ok("storage_move", f"Disks copied on {vm.host.name}: {copies}.")


def _copies(vm: VirtualMachine, host: Host, choice: DiskChoice) -> tuple[list[DiskPlacement], str]:
    """The disks `choice` copies to datastores of `host`, and what keeps them from it."""
    placed, problems = placements(vm, host, choice)
    return [p for p in placed if p.moves], " ".join(problems)


def check_vm_runs(vm: VirtualMachine) -> CheckResult:
    if vm.host is None:
        return fail("vm_runs", f"{vm.name} is not on any known host.")
    if vm.power_state == PowerState.RUNNING:
        return ok("vm_runs", f"{vm.name} runs on {vm.host.name}.")
    if vm.power_state == PowerState.PAUSED:
        return warn("vm_runs", f"{vm.name} is paused on {vm.host.name}; it will arrive paused.")
    return fail("vm_runs", f"{vm.name} is {vm.get_power_state_display().lower()}, not running: only a running VM can be live-migrated.")


def check_distinct_hosts(source: Host | None, destination: Host) -> CheckResult:
    return rules.distinct_hosts(source.pk if source else None, destination.pk, destination.name)


def check_host_connected(host: Host, role: str) -> CheckResult:
    return rules.host_connected(host.name, role, host.is_reachable, host.last_error)


def check_destination_open(destination: Host) -> CheckResult:
    closed = destination.state in CLOSED_HOST_STATES
    if destination.is_degraded and not closed:
        return rules.destination_open(destination.name, True, f"degraded ({destination.degraded_reason})")
    return rules.destination_open(destination.name, closed, destination.get_state_display())


def check_cpu_compatible(vm: VirtualMachine, source: Host, destination: Host) -> CheckResult:
    """From the inventory: the features the VM's CPU asks for (its model's, or its host's for a
    guest that takes its host's CPU) against those of the destination's CPU, as the last
    syncs read them. The worker asks libvirt itself just before the move (`live_checks`),
    and only libvirt refuses: a feature the host's CPU lacks may be one QEMU emulates."""
    if vm.cpu_mode in HOST_CPU_MODES:
        wanted, model = source.cpu_features, f"{source.name}'s CPU ({vm.cpu_mode})"
    elif not vm.cpu_model:
        return ok("cpu_compatible", "The VM uses the hypervisor's default CPU, which every host offers.")
    else:
        wanted, model = vm.cpu_features, vm.cpu_model
    if wanted is None or destination.cpu_features is None:
        unread = model if wanted is None else destination.name
        return warn("cpu_compatible", f"vmotion has not read the CPU features of {unread} yet: libvirt compares the CPUs just before the move starts.")
    missing = tuple(sorted(set(wanted) - set(destination.cpu_features)))
    if not missing:
        return rules.cpu_offered(destination.name, model, True, (), "")
    # The host's CPU is not all the hypervisor can offer (QEMU emulates some features): only
    # libvirt can refuse, and the worker asks it before anything moves.
    return warn("cpu_compatible", (
        f"{destination.name}'s CPU, as the inventory read it, lacks {listed(missing)}, which {model} uses; "
        "libvirt compares the CPUs just before the move starts and refuses it then if the hypervisor cannot offer them."
    ))


def check_storage_shared(vm: VirtualMachine, destination: Host) -> CheckResult:
    mounted = set(DatastoreMount.objects.filter(host=destination, active=True).values_list("datastore_id", flat=True))
    return rules.storage_shared(vm.host.name, destination.name, disks_of(vm), mounted)


def check_disk_placement(vm: VirtualMachine, destination: Host, choice: DiskChoice) -> CheckResult:
    """The storage check of a move that may copy disks (the `storage_shared` check's place)."""
    moving, problems = _copies(vm, destination, choice)
    if problems:
        return fail("storage_shared", problems)
    if not moving:
        return ok("storage_shared", f"Every disk is on a datastore {destination.name} mounts.")
    copies = "; ".join(f"{p.disk.target} to {p.store.name} ({p.disk.copied_bytes / 1024**3:.1f} GiB)" for p in moving)
    return ok("storage_shared", f"Disks copied with the VM: {copies}.")


def check_networks_present(vm: VirtualMachine, destination: Host) -> CheckResult:
    present = set(NetworkAttachment.objects.filter(host=destination, active=True).values_list("network_id", flat=True))
    return rules.networks_present(destination.name, nics_of(vm), present)


def check_memory_free(vm: VirtualMachine, destination: Host, exclude_task_id: int | None) -> CheckResult:
    incoming = (
        MigrationTask.objects.filter(destination=destination, state__in=ACTIVE_STATES)
        .exclude(pk=exclude_task_id)
        .exclude(vm=vm)
        .aggregate(total=Sum("vm__memory_bytes"))["total"]
        or 0
    )
    reserve = settings.MIGRATION_MEMORY_RESERVE_BYTES
    return rules.memory_free(destination.name, destination.memory_free_bytes, incoming, vm.memory_bytes, reserve)


def check_affinity(vm: VirtualMachine, destination: Host, planned: Mapping[int, int] | None = None) -> CheckResult:
    vm_rules = affinity_rules.rules_by_vm([vm.pk]).get(vm.pk, ())
    where = affinity_rules.where_they_run(vm_rules, planned)
    return rules.affinity_kept(destination.name, breaches(vm.pk, destination.pk, destination.name, vm_rules, where))


def check_encryption(source: Host, destination: Host) -> CheckResult:
    mode, setter = encryption_setting(source, destination)
    return rules.encryption(mode, setter, *tls_ends(source, destination))


def encryption_setting(source: Host, destination: Host) -> tuple[str, str]:
    """The migration encryption a move obeys, and whose setting it is (the stricter of the
    two hosts' clusters)."""
    return rules.strictest_encryption(cluster_encryption(host.cluster) for host in (source, destination))


def cluster_encryption(cluster: Cluster | None) -> tuple[str, str] | None:
    return (cluster.migration_encryption, f"cluster {cluster.name}") if cluster else None


def tls_ends(source: Host, destination: Host) -> tuple[rules.HostTls, rules.HostTls]:
    return rules.HostTls(source.name, "source", source.migration_tls), rules.HostTls(destination.name, "destination", destination.migration_tls)


def disks_of(vm: VirtualMachine) -> list[rules.DiskOnDatastore]:
    return [
        rules.DiskOnDatastore(disk.target, disk.source, disk.datastore_id, disk.datastore.name if disk.datastore else "")
        for disk in vm.disks.select_related("datastore")
    ]


def nics_of(vm: VirtualMachine) -> list[rules.NicOnNetwork]:
    return [
        rules.NicOnNetwork(nic.network_id, nic.network.name if nic.network else nic.network_name)
        for nic in vm.nics.select_related("network")
    ]
