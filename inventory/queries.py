"""Read models for the pages: each page asks here, in a fixed number of queries."""

from django.db.models import Count, Prefetch, Q, QuerySet

from .choices import ACTIVE_POWER_STATES, HostState
from .models import DatastoreMount, Host, VirtualMachine


def hosts_with_vms() -> QuerySet[Host]:
    return (
        Host.objects.select_related("cluster")
        .prefetch_related(Prefetch("vms", queryset=VirtualMachine.objects.order_by("name")))
        .annotate(running_vms=Count("vms", filter=Q(vms__power_state__in=ACTIVE_POWER_STATES)))
        .order_by("name")
    )


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
