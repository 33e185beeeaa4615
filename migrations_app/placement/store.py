"""The migration assistant: the inventory's facts about a VM and every host, read in a fixed
number of queries however many hosts there are, ranked by `placement.rank`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db.models import BooleanField, Case, Count, ExpressionWrapper, F, Prefetch, Q, Sum, When, prefetch_related_objects

from inventory.choices import CLOSED_HOST_STATES, ClusterCpuMode, HostState
from inventory.models import DatastoreMount, Host, NetworkAttachment, VirtualDisk, VirtualMachine, VirtualNic

from migrations_app.affinity import store as affinity_rules
from migrations_app.placement import rules as placement
from migrations_app.placement import plan as placement_plan
from migrations_app.checks.rules import DiskOnDatastore, NicOnNetwork
from migrations_app.checks.store import check_vm_runs, cluster_encryption
from migrations_app.choices import ACTIVE_STATES
from migrations_app.models import MigrationTask
from migrations_app.placement.plan import PlannedMove
from migrations_app.storage.store import copied_bytes, copied_without_asking, copy_stores, disks_with_reach


def recommend(vm: VirtualMachine) -> list[placement.Placement]:
    """Every other host for `vm`, best first; the hosts that cannot take it last, with why."""
    facts = vm_facts(vm)
    where = affinity_rules.where_they_run(facts.rules)
    return placement.rank(facts, host_facts(exclude_tasks_of=vm), settings.MIGRATION_MEMORY_RESERVE_BYTES, where=where)


def vm_facts(vm: VirtualMachine) -> placement.VmFacts:
    return vm_facts_many([vm])[0]


def vm_facts_many(vms: list[VirtualMachine]) -> list[placement.VmFacts]:
    """`vm_facts` for many VMs, their disks, NICs and affinity rules read in four queries for
    all of them."""
    prefetch_related_objects(
        vms, Prefetch("disks", disks_with_reach(VirtualDisk.objects.all())), Prefetch("nics", VirtualNic.objects.select_related("network")),
        "host__cluster",  # for the encryption their clusters ask
    )
    rules = affinity_rules.rules_by_vm(vm.pk for vm in vms)
    return [
        placement.VmFacts(
            name=vm.name,
            memory_bytes=vm.memory_bytes,
            host_id=vm.host_id,
            host_name=vm.host.name if vm.host else "",
            cluster_id=vm.host.cluster_id if vm.host else None,
            migration_tls=vm.host.migration_tls if vm.host else False,
            encryption=cluster_encryption(vm.host.cluster) if vm.host else None,
            runs=check_vm_runs(vm),
            disks=tuple(
                DiskOnDatastore(
                    d.target, d.source, d.datastore_id, d.datastore.name if d.datastore else "", copyable=copied_without_asking(d),
                    copied_bytes=copied_bytes(d),
                )
                for d in vm.disks.all()
            ),
            nics=tuple(NicOnNetwork(n.network_id, n.network.name if n.network else n.network_name) for n in vm.nics.all()),
            id=vm.pk,
            rules=rules.get(vm.pk, ()),
        )
        for vm in vms
    ]


@dataclass(frozen=True)
class Move:
    vm: VirtualMachine
    planned: PlannedMove
    destination: Host | None  # None when no host can take the VM


def plan_moves(vms: list[VirtualMachine], preferred: Sequence[int | None] = (), every_host: bool = False, blocked_shown: int | None = None) -> list[Move]:
    """A destination for each VM, spread by load (`placement_plan.plan`), with the hosts read;
    `every_host` ranks the hosts that cannot take a VM too, for a page that lists them (the
    first `blocked_shown` of those out of its reach, when given)."""
    facts = vm_facts_many(vms)
    where = affinity_rules.where_they_run({rule for vm in facts for rule in vm.rules})
    planned = placement_plan.plan(
        facts, host_facts(), settings.MIGRATION_MEMORY_RESERVE_BYTES, preferred, every_host=every_host, where=where, blocked_shown=blocked_shown,
    )
    hosts = Host.objects.in_bulk([move.chosen.host.id for move in planned if move.chosen])
    return [Move(vm, move, hosts.get(move.chosen.host.id) if move.chosen else None) for vm, move in zip(vms, planned)]


# The same judgement as `Host.is_reachable`, made in SQL.
_REACHABLE = ExpressionWrapper(Q(last_seen__isnull=False) & Q(last_error=""), output_field=BooleanField())
_NO_IDS: frozenset[int] = frozenset()
# The cluster's baseline in effect, as `Cluster.baseline` chooses it.
_BASELINE = Case(When(cluster__cpu_mode=ClusterCpuMode.NAMED, then=F("cluster__cpu_named_model")), default=F("cluster__cpu_baseline_model"))


def host_facts(exclude_tasks_of: VirtualMachine | None = None, cluster_id: int | None = None) -> list[placement.HostFacts]:
    """Every host's facts, or only those of the hosts of `cluster_id`."""
    hosts = Host.objects.all() if cluster_id is None else Host.objects.filter(cluster_id=cluster_id)
    mounts, attachments = DatastoreMount.objects.filter(active=True), NetworkAttachment.objects.filter(active=True)
    if cluster_id is not None:
        mounts, attachments = mounts.filter(host__cluster_id=cluster_id), attachments.filter(host__cluster_id=cluster_id)
    # Unordered: their models' default order would join and sort thousands of rows for nothing.
    datastores = _ids_by_host(mounts.order_by().values_list("host_id", "datastore_id"))
    networks = _ids_by_host(attachments.order_by().values_list("host_id", "network_id"))
    active = MigrationTask.objects.filter(state__in=ACTIVE_STATES)
    if exclude_tasks_of is not None:
        active = active.exclude(vm=exclude_tasks_of)
    incoming = {row["destination_id"]: row for row in active.values("destination_id").annotate(count=Count("pk"), memory=Sum("vm__memory_bytes"))}
    outgoing = dict(active.values("source_id").annotate(count=Count("pk")).values_list("source_id", "count"))
    state_labels = dict(HostState.choices)
    stores = copy_stores()
    # Plain rows, not model instances: building thousands of Hosts would cost more than ranking them.
    # `Host.is_reachable` is judged by the database, so no timestamp is parsed per host.
    rows = hosts.order_by("name").annotate(reachable=_REACHABLE, baseline=_BASELINE).values_list(
        "pk", "name", "reachable", "last_error", "state", "cluster_id", "cluster__name", "baseline",
        "memory_total_bytes", "memory_free_bytes", "cpu_utilisation", "degraded_reason", "degraded_since",
        "migration_tls", "cluster__migration_encryption",
    )
    no_tasks = {}
    return [
        placement.HostFacts(
            id=pk,
            name=name,
            reachable=reachable,
            last_error=last_error,
            # A degraded host is closed to new VMs too: they would only have to leave it again.
            in_maintenance=state in CLOSED_HOST_STATES or degraded_since is not None,
            state_label=f"degraded ({degraded_reason})" if degraded_since is not None and state not in CLOSED_HOST_STATES else state_labels.get(state, state),
            cluster_id=cluster_id,
            cluster_name=cluster_name or "",
            cpu_baseline=cpu_baseline or "",
            memory_total_bytes=memory_total,
            memory_free_bytes=memory_free,
            cpu_utilisation=cpu_utilisation,
            datastores=datastores.get(pk, _NO_IDS),
            networks=networks.get(pk, _NO_IDS),
            incoming_memory_bytes=incoming.get(pk, no_tasks).get("memory") or 0,
            incoming=incoming.get(pk, no_tasks).get("count", 0),
            outgoing=outgoing.get(pk, 0),
            migration_tls=migration_tls,
            encryption=(encryption, f"cluster {cluster_name}") if cluster_id is not None else None,
            copy_store=stores.get(pk),
        )
        for (
            pk, name, reachable, last_error, state, cluster_id, cluster_name, cpu_baseline, memory_total, memory_free, cpu_utilisation,
            degraded_reason, degraded_since, migration_tls, encryption,
        ) in rows
    ]


def _ids_by_host(pairs: Iterable[tuple[int, int]]) -> dict[int, frozenset[int]]:
    """Each host's datastore or network ids. Hosts of a cluster mostly share theirs, so they
    share one set: thousands fewer objects for the garbage collector to walk on each call."""
    ids = defaultdict(list)
    for host_id, id in pairs:
        ids[host_id].append(id)
    shared: dict[frozenset[int], frozenset[int]] = {}
    by_host = {}
    for host_id, some in ids.items():
        frozen = frozenset(some)
        by_host[host_id] = shared.setdefault(frozen, frozen)
    return by_host
