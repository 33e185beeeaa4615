"""Handing a task to recovery: the worker cannot know yet where the VM (or its disks) ends
up, so recovery (`recovery.reconcile_orphaned_tasks`) ends the task once libvirt can tell."""

from __future__ import annotations

from hypervisor import HypervisorError

from migrations_app.choices import EventKind
from migrations_app.models import MigrationTask

# The worker of a task whose worker lost contact with a host and left it to recovery.
HANDED_TO_RECOVERY = "recovery"


def hand_to_recovery(task: MigrationTask, why: str, error: HypervisorError | None) -> None:
    """Where the VM runs cannot be known yet, so no verdict: recovery ends the task once
    both hosts answer and libvirt is done with the VM."""
    detail = f" (libvirt: {error})" if error else ""
    hosts = "its host answers" if task.storage_only else "both hosts answer"
    task.log(EventKind.INFO, f"{why} vmotion finalises this task once {hosts} again and libvirt is done{detail}.")
    MigrationTask.objects.filter(pk=task.pk).update(worker=HANDED_TO_RECOVERY, heartbeat_at=None)
