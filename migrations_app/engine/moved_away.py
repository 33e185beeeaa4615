"""A task whose VM no longer runs where the task expects it, ended saying where it is."""

from __future__ import annotations

from django.db.models import Q

from hypervisor.states import DomainState
from inventory import sync
from inventory.models import Host

from migrations_app.choices import EndReason, TaskState
from migrations_app.engine.conclusion import finish
from migrations_app.models import MigrationTask


def fail_as_moved(task: MigrationTask, state: DomainState) -> None:
    """The VM is not running on the source as the task expects: say where it is, read afresh
    from the hosts it could have gone to (its cluster's, and the destination)."""
    nearby = Host.objects.filter(Q(pk__in=(task.source_id, task.destination_id)) | Q(cluster_id=task.source.cluster_id, cluster__isnull=False))
    for host in nearby.order_by("name"):
        sync.sync_host(host)
    task.vm.refresh_from_db()
    vm, source = task.vm.name, task.source.name
    if state == DomainState.UNREACHABLE:
        finish(task, TaskState.FAILED, EndReason.LOST_CONTACT, error=f"{source} did not answer; nothing moved.")
        return
    if state == DomainState.MIGRATING:
        error = f"{vm} is already being migrated from {source} by something other than vmotion; nothing was started."
    elif state in (DomainState.PAUSED, DomainState.STOPPED):
        error = f"{vm} is {state} on {source}, no longer running as when it was submitted; nothing moved."
    elif task.vm.host_id in (None, task.source_id):
        error = f"{vm} no longer runs on {source}, and none of the hosts it could have moved to runs it."
    else:
        error = f"{vm} now runs on {task.vm.host.name}, not on {source} as when it was submitted."
    finish(task, TaskState.FAILED, EndReason.VM_MOVED, error=error)
