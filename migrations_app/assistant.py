"""The migration assistant: the inventory's facts about a VM and every host, read in a fixed
number of queries however many hosts there are, ranked by `placement.rank`."""

from __future__ import annotations

from collections import defaultdict

from django.conf import settings
from django.db.models import Count, Sum

from inventory.choices import HostState
from inventory.models import DatastoreMount, Host, NetworkAttachment, VirtualMachine

from . import placement
from .checks import check_vm_runs, disks_of, nics_of
from .choices import ACTIVE_STATES
from .models import MigrationTask


def recommend(vm: VirtualMachine) -> list[placement.Placement]:
    """Every other host for `vm`, best first; the hosts that cannot take it last, with why."""
    return placement.rank(vm_facts(vm), host_facts(exclude_tasks_of=vm), settings.MIGRATION_MEMORY_RESERVE_BYTES)


def vm_facts(vm: VirtualMachine) -> placement.VmFacts:
    return placement.VmFacts(
        name=vm.name,
        memory_bytes=vm.memory_bytes,
        host_id=vm.host_id,
        host_name=vm.host.name if vm.host else "",
        cluster_id=vm.host.cluster_id if vm.host else None,
        runs=check_vm_runs(vm),
        disks=tuple(disks_of(vm)),
        nics=tuple(nics_of(vm)),
    )


def host_facts(exclude_tasks_of: VirtualMachine | None = None) -> list[placement.HostFacts]:
    datastores, networks = defaultdict(set), defaultdict(set)
    for host_id, datastore_id in DatastoreMount.objects.filter(active=True).values_list("host_id", "datastore_id"):
        datastores[host_id].add(datastore_id)
    for host_id, network_id in NetworkAttachment.objects.filter(active=True).values_list("host_id", "network_id"):
        networks[host_id].add(network_id)
    active = MigrationTask.objects.filter(state__in=ACTIVE_STATES)
    if exclude_tasks_of is not None:
        active = active.exclude(vm=exclude_tasks_of)
    incoming = {row["destination_id"]: row for row in active.values("destination_id").annotate(count=Count("pk"), memory=Sum("vm__memory_bytes"))}
    outgoing = dict(active.values("source_id").annotate(count=Count("pk")).values_list("source_id", "count"))
    hosts = Host.objects.select_related("cluster").order_by("name").only(
        "name", "state", "last_seen", "last_error", "cluster", "memory_total_bytes", "memory_free_bytes",
        "cpu_utilisation", "cluster__name", "cluster__cpu_baseline_model",
    )
    return [
        placement.HostFacts(
            id=host.pk,
            name=host.name,
            reachable=host.is_reachable,
            last_error=host.last_error,
            in_maintenance=host.state == HostState.MAINTENANCE,
            state_label=host.get_state_display(),
            cluster_id=host.cluster_id,
            cluster_name=host.cluster.name if host.cluster else "",
            cpu_baseline=host.cluster.cpu_baseline_model if host.cluster else "",
            memory_total_bytes=host.memory_total_bytes,
            memory_free_bytes=host.memory_free_bytes,
            cpu_utilisation=host.cpu_utilisation,
            datastores=frozenset(datastores[host.pk]),
            networks=frozenset(networks[host.pk]),
            incoming_memory_bytes=incoming.get(host.pk, {}).get("memory") or 0,
            incoming=incoming.get(host.pk, {}).get("count", 0),
            outgoing=outgoing.get(host.pk, 0),
        )
        for host in hosts
    ]
