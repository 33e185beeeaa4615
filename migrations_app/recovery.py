"""Finalises tasks whose worker is gone, truthfully: libvirt says where the VM runs.

A worker may die mid-migration (killed, host rebooted). libvirt drives a peer-to-peer
migration itself, so the migration may still finish without it; what counts is where the
VM runs once no migration job is active any more.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from inventory import hypervisor, sync
from inventory.models import Host

from . import policy
from .choices import EventKind, TaskState
from .models import InvalidTransition, MigrationTask

log = logging.getLogger(__name__)

WORKING_STATES = (TaskState.CHECKING, TaskState.MIGRATING, TaskState.POST_COPY)
# The worker field of a task whose worker lost contact with a host and left it to recovery.
HANDED_TO_RECOVERY = "recovery"


def reconcile_orphaned_tasks() -> list[int]:
    """Finalise every task whose worker stopped reporting; returns the ids finalised."""
    finalised = []
    for task in _orphans():
        try:
            if reconcile(task):
                finalised.append(task.pk)
        except hypervisor.HypervisorError as error:
            log.warning("task %s: cannot reconcile yet: %s", task.pk, error)
    return finalised


def _orphans() -> list[MigrationTask]:
    stale = timezone.now() - timedelta(seconds=settings.MIGRATION_WORKER_LOST_AFTER_SECONDS)
    candidates = MigrationTask.objects.filter(state__in=WORKING_STATES).select_related("vm", "source", "destination")
    silent = Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, created_at__lt=stale) | Q(worker=HANDED_TO_RECOVERY)
    silent_ids = set(candidates.filter(silent).values_list("pk", flat=True))
    return [task for task in candidates if task.pk in silent_ids or _worker_process_gone(task.worker)]


def _worker_process_gone(worker: str) -> bool:
    """A worker on this machine whose process no longer exists is known lost at once."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def reconcile(task: MigrationTask) -> bool:
    uuid = str(task.vm.uuid)
    timeout = settings.LIBVIRT_CALL_TIMEOUT_SECONDS
    with hypervisor.DomainControl(task.source.uri, timeout) as source:
        on_source = source.domain_state(uuid)
        job = source.job_stats(uuid) if on_source in ("running", "paused") else None
        if job is not None and job.active:
            return _still_migrating(task, source)
        on_destination = hypervisor.domain_state_or_unreachable(task.destination.uri, uuid, timeout)
        surely_on_source = on_source == "running" and task.state != TaskState.POST_COPY
        if "migrating" in (on_source, on_destination) or (on_destination == "unreachable" and not surely_on_source):
            return False  # not knowable yet: try again at the next housekeeping tick
        cause = (
            "vmotion lost contact with a host during the migration"
            if task.worker == HANDED_TO_RECOVERY
            else "Worker lost: the worker running this migration stopped"
        )
        if on_destination in ("running", "paused") and on_source not in ("running", "paused"):
            source.undefine_if_inactive(uuid)
            _finalise(task, TaskState.SUCCEEDED, message=f"{cause}, but libvirt finished it: {task.vm.name} runs on {task.destination.name}.")
        elif on_source in ("running", "paused"):
            _finalise(task, TaskState.FAILED, error=f"{cause}. {task.vm.name} still runs on {task.source.name}.")
        else:
            _finalise(task, TaskState.FAILED, error=f"{cause}. {task.vm.name} is {on_source or 'not defined'} on {task.source.name} and {on_destination or 'not defined'} on {task.destination.name}.")
    for host in (task.source, task.destination):
        sync.sync_host(Host.objects.get(pk=host.pk))
    return True


def _still_migrating(task: MigrationTask, source: hypervisor.DomainControl) -> bool:
    """libvirt is still moving the VM without a worker: let it finish, within the time limit."""
    limit = timedelta(milliseconds=policy.completion_timeout_ms(task.policy_options(), policy.ConvergencePolicy()))
    if task.state == TaskState.MIGRATING and task.started_at and timezone.now() - task.started_at > limit:
        source.abort_job(str(task.vm.uuid))
        task.log(EventKind.POLICY, "The worker was lost and the migration ran past its completion timeout: aborted; the VM stays on the source.")
    return False


def _finalise(task: MigrationTask, state: str, *, message: str = "", error: str = "") -> None:
    try:
        task.transition(state, message, error=error)
    except InvalidTransition:
        pass
