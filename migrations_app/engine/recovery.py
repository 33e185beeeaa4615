"""Ends tasks whose worker is gone, truthfully: libvirt says where the VM runs.

A worker may die mid-migration (killed, its machine rebooted). libvirt drives a
peer-to-peer migration itself, so the migration may still finish without it; what counts
is where the VM runs once no migration is under way any more.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from hypervisor import HypervisorError
from hypervisor.connection import Connection
from hypervisor.guest import Guest, domain_state
from hypervisor.states import DomainState
from inventory import sync
from inventory.location import record_location
from inventory.models import Host

from migrations_app.convergence import policy
from migrations_app.choices import FINAL_STATES, EndReason, EventKind, TaskState
from migrations_app.engine import storage_move
from migrations_app.engine.handoff import HANDED_TO_RECOVERY
from migrations_app.engine.conclusion import conclude, whereabouts
from migrations_app.engine.verdict import RunsOn, judge
from migrations_app.models import MigrationTask

log = logging.getLogger(__name__)

# States in which a task is held by a worker.
HELD_STATES = (TaskState.CHECKING, TaskState.MIGRATING, TaskState.POST_COPY)
# The worker of an ended task whose VM's host libvirt has not confirmed yet (a host's libvirtd
# stopped answering): recovery confirms it once both hosts answer.
UNCONFIRMED = "unconfirmed"


def leave_unconfirmed(task: MigrationTask, silent_host: str) -> None:
    """The task ended while `silent_host`'s libvirtd did not answer: say that recovery
    confirms where the VM runs once it does."""
    confirm_later(task, f"{silent_host} has not answered yet: once it does, vmotion asks both hosts where {task.vm.name} runs and notes it here.")


def confirm_later(task: MigrationTask, why: str) -> None:
    """An ended task whose VM's whereabouts libvirt cannot confirm yet: the timeline says why,
    and settle_unconfirmed_tasks confirms them once both hosts can tell."""
    task.log(EventKind.INFO, why)
    MigrationTask.objects.filter(pk=task.pk).update(worker=UNCONFIRMED)


def settle_unconfirmed_tasks() -> list[int]:
    """Confirm with libvirt where the VM of each task left unconfirmed runs, once both of its
    hosts answer; returns the ids settled. A host that still does not answer is asked again
    at the next round (after its first unanswered connection, without waiting)."""
    settled = []
    unconfirmed = MigrationTask.objects.filter(state__in=FINAL_STATES, worker=UNCONFIRMED).select_related("vm", "source", "destination")
    for task in unconfirmed:
        uuid, timeout = str(task.vm.uuid), settings.LIBVIRT_CALL_TIMEOUT_SECONDS
        on_source = domain_state(task.source.uri, uuid, timeout)
        on_destination = domain_state(task.destination.uri, uuid, timeout) if on_source != DomainState.UNREACHABLE else DomainState.UNREACHABLE
        verdict = judge(on_source, on_destination, post_copy=False, overdue=True)
        if verdict.runs_on == RunsOn.UNKNOWN:
            continue
        where = whereabouts(task, verdict, on_source, on_destination)
        expected = task.destination if task.state == TaskState.SUCCEEDED else task.source
        host = {RunsOn.SOURCE: task.source, RunsOn.DESTINATION: task.destination}.get(verdict.runs_on)
        agrees = "as this task said" if host == expected else "not as this task said: the inventory now shows where it runs"
        task.log(EventKind.INFO, f"Both hosts answer again; libvirt confirms where the VM runs: {where}, {agrees}.")
        if host is not None:
            record_location(task.vm_id, host)
        MigrationTask.objects.filter(pk=task.pk, worker=UNCONFIRMED).update(worker="")
        for each in (task.source, task.destination):
            sync.sync_host(Host.objects.get(pk=each.pk))
        settled.append(task.pk)
    return settled


def reconcile_orphaned_tasks() -> list[int]:
    """End every task whose worker is gone; returns the ids ended."""
    ended = []
    for task in orphans():
        try:
            if reconcile(task):
                ended.append(task.pk)
        except HypervisorError as error:
            log.warning("task %s: cannot reconcile yet: %s", task.pk, error)
    return ended


def orphans() -> list[MigrationTask]:
    """Held tasks whose worker is gone: handed over, its process dead on this machine, or,
    for a worker elsewhere, silent for longer than MIGRATION_WORKER_LOST_AFTER."""
    stale = timezone.now() - timedelta(seconds=settings.MIGRATION_WORKER_LOST_AFTER_SECONDS)
    held = MigrationTask.objects.filter(state__in=HELD_STATES).select_related("vm", "source", "destination")
    return [task for task in held if _worker_gone(task, stale)]


def _worker_gone(task: MigrationTask, stale) -> bool:
    if task.worker == HANDED_TO_RECOVERY:
        return True
    alive_here = _process_alive_here(task.worker)
    if alive_here is not None:
        return not alive_here
    return task.heartbeat_at is None or task.heartbeat_at < stale


def _process_alive_here(worker: str) -> bool | None:
    """Whether a worker process on this machine still exists; None for a worker elsewhere."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reconcile(task: MigrationTask) -> bool:
    if task.storage_only:
        cause, reason = _cause_of_orphaning(task)
        return storage_move.recover(task, cause, reason)
    uuid, timeout = str(task.vm.uuid), settings.LIBVIRT_CALL_TIMEOUT_SECONDS
    on_source = domain_state(task.source.uri, uuid, timeout)
    if on_source == DomainState.MIGRATING:
        _abort_if_overdue(task)
        return False
    on_destination = domain_state(task.destination.uri, uuid, timeout)
    log.info("task %s: worker %s gone; %s is %s on %s and %s on %s", task.pk, task.worker or "-", task.vm.name, on_source, task.source.name, on_destination, task.destination.name)
    cause, reason = _cause_of_orphaning(task)
    ended = conclude(
        task, on_source, on_destination, cancelled=task.cancel_requested,
        failure=f"{cause}.", success_prefix=f"{cause}, but libvirt finished it: ", failure_reason=reason,
        success_reason=EndReason.RECOVERED, held_by=task.worker, overdue=_overdue(task),
    )
    if ended:
        for host in (task.source, task.destination):
            sync.sync_host(Host.objects.get(pk=host.pk))
    return ended


def _cause_of_orphaning(task: MigrationTask) -> tuple[str, str]:
    what = "the disks' copy" if task.storage_only else "the migration"
    if task.worker == HANDED_TO_RECOVERY:
        return f"vmotion lost contact with a host during {what}", EndReason.LOST_CONTACT
    return f"Worker lost: the worker running {what} stopped", EndReason.WORKER_LOST


def _overdue(task: MigrationTask) -> bool:
    """Past the completion timeout the policy would have aborted the migration at."""
    limit = timedelta(milliseconds=policy.completion_timeout_ms(task.convergence_inputs(), policy.ConvergencePolicy()))
    return task.started_at is not None and timezone.now() - task.started_at > limit


def _abort_if_overdue(task: MigrationTask) -> None:
    """libvirt still moves the VM without a worker: let it finish, within the time limit."""
    if task.state != TaskState.MIGRATING or not _overdue(task):
        return
    with Connection(task.source.uri, settings.LIBVIRT_CALL_TIMEOUT_SECONDS) as connection:
        Guest(connection, str(task.vm.uuid)).abort_job()
    task.log(EventKind.POLICY, "The worker was lost and the migration ran past its completion timeout: aborted; the VM stays on the source.")
