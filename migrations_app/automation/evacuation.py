"""Moving evacuations on, in the scheduler: once no move of an evacuation is active, its host
is read again from libvirt, then `maintenance.settle` finishes, retries or stops it."""

from __future__ import annotations

from hypervisor import HypervisorError
from inventory import sync
from inventory.models import Host

from migrations_app.automation import maintenance
from migrations_app.choices import ACTIVE_STATES, EvacuationState
from migrations_app.models import Evacuation
from migrations_app.options import MigrationOptions


def advance_all() -> int:
    """Advance every running evacuation; how many there were."""
    evacuations = list(Evacuation.objects.select_related("host", "batch", "requested_by").filter(state=EvacuationState.RUNNING))
    for evacuation in evacuations:
        advance(evacuation)
    return len(evacuations)


def advance(evacuation: Evacuation, *, options: MigrationOptions | None = None) -> None:
    """Once no move of the evacuation is active: finish it if no VM runs on the host (libvirt
    read again), else retry or stop. `options`: what it was entered with, when no move of it
    has recorded them yet."""
    if evacuation.batch.tasks.filter(state__in=ACTIVE_STATES).exists():
        return
    try:
        sync.sync_host(Host.objects.get(pk=evacuation.host.pk))
    except HypervisorError:
        return  # the sync records why; the next round tries again
    maintenance.settle(evacuation, options=options)
