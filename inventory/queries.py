"""Read models for the pages: each page asks here, in a fixed number of queries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Avg, Case, Count, IntegerField, Prefetch, Q, QuerySet, Sum, Value, When

from .choices import ACTIVE_POWER_STATES, CLOSED_HOST_STATES, HostState
from .models import DatastoreMount, Host, VirtualDisk, VirtualMachine


def hosts_with_vms() -> QuerySet[Host]:
    return (
        Host.objects.select_related("cluster")
        .prefetch_related(Prefetch("vms", queryset=VirtualMachine.objects.order_by("name")))
        .annotate(running_vms=Count("vms", filter=Q(vms__power_state__in=ACTIVE_POWER_STATES)))
        .order_by("name")
    )


def hosts_for_dashboard() -> QuerySet[Host]:
    """Hosts that need someone first (unreachable, then degraded or in maintenance), then by name."""
    return (
        Host.objects.select_related("cluster")
        .annotate(
            attention=Case(
                When(Q(state=HostState.DISCONNECTED) | ~Q(last_error=""), then=Value(0)),
                When(Q(state__in=CLOSED_HOST_STATES) | Q(degraded_since__isnull=False), then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
        )
        .order_by("attention", "name", "pk")
    )


def with_vm_counts(hosts: Iterable[Host]) -> list[Host]:
    """The hosts, each with `vm_count` and `running_vms`, counted in one query. Counted for a
    page of hosts after it is cut, so that a deep page costs no more than the first."""
    counted = list(hosts)
    rows = (
        VirtualMachine.objects.filter(host__in=counted)
        .order_by()
        .values("host_id")
        .annotate(total=Count("pk"), running=Count("pk", filter=Q(power_state__in=ACTIVE_POWER_STATES)))
    )
    counts = {row["host_id"]: (row["total"], row["running"]) for row in rows}
    for host in counted:
        host.vm_count, host.running_vms = counts.get(host.pk, (0, 0))
    return counted


@dataclass(frozen=True)
class ClusterSummary:
    """One cluster at a glance. Capacity counts connected hosts only: a disconnected host's
    figures are from its last sync, and a host in maintenance takes no VMs."""

    cluster_id: int | None  # None gathers the hosts in no cluster
    name: str
    hosts: int
    connected: int
    disconnected: int
    in_maintenance: int
    vms_running: int
    memory_free_bytes: int
    memory_total_bytes: int
    cpu_busy: float | None  # mean % busy over the connected hosts that measured it

    @property
    def needs_attention(self) -> bool:
        return bool(self.disconnected or self.in_maintenance)


def cluster_summaries() -> list[ClusterSummary]:
    """Every cluster, and the hosts in none as one more row, in two queries however many hosts."""
    connected = Q(state=HostState.CONNECTED)
    rows = Host.objects.order_by().values("cluster_id", "cluster__name").annotate(
        hosts=Count("pk"),
        connected=Count("pk", filter=connected),
        disconnected=Count("pk", filter=Q(state=HostState.DISCONNECTED)),
        in_maintenance=Count("pk", filter=Q(state__in=CLOSED_HOST_STATES)),
        memory_free=Sum("memory_free_bytes", filter=connected),
        memory_total=Sum("memory_total_bytes", filter=connected),
        cpu_busy=Avg("cpu_utilisation", filter=connected),
    )
    running = dict(
        VirtualMachine.objects.filter(host__isnull=False, power_state__in=ACTIVE_POWER_STATES)
        .order_by()
        .values_list("host__cluster_id")
        .annotate(count=Count("pk"))
    )
    summaries = [
        ClusterSummary(
            cluster_id=row["cluster_id"],
            name=row["cluster__name"] or "No cluster",
            hosts=row["hosts"],
            connected=row["connected"],
            disconnected=row["disconnected"],
            in_maintenance=row["in_maintenance"],
            vms_running=running.get(row["cluster_id"], 0),
            memory_free_bytes=row["memory_free"] or 0,
            memory_total_bytes=row["memory_total"] or 0,
            cpu_busy=row["cpu_busy"],
        )
        for row in rows
    ]
    # Clusters with a disconnected host first, then those with one in maintenance, then the rest.
    return sorted(summaries, key=lambda summary: (not summary.disconnected, not summary.in_maintenance, summary.cluster_id is None, summary.name))


def inventory_totals() -> dict:
    hosts = Host.objects.aggregate(
        total=Count("pk"),
        connected=Count("pk", filter=Q(state=HostState.CONNECTED)),
    )
    vms = VirtualMachine.objects.aggregate(
        total=Count("pk"), running=Count("pk", filter=Q(power_state__in=ACTIVE_POWER_STATES))
    )
    return {"hosts": hosts, "vms": vms}


def mounts_of(host: Host) -> QuerySet[DatastoreMount]:
    return host.datastore_mounts.select_related("datastore").annotate(shared_by=Count("datastore__mounts"))


def vm_with_devices() -> QuerySet[VirtualMachine]:
    """VMs with their host, NICs and disks; each disk's datastore counts the hosts mounting
    it (`mount_count`: 1 for a datastore local to its host)."""
    disks = VirtualDisk.objects.select_related("datastore").annotate(mount_count=Count("datastore__mounts"))
    return VirtualMachine.objects.select_related("host", "host__cluster").prefetch_related(
        Prefetch("disks", queryset=disks), "nics__network",
    )
