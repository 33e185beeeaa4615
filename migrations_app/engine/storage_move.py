"""Runs a storage-only move in a worker: a running VM's disks go to other datastores of the
host it runs on, live (`hypervisor.block_copy`), and the VM stays where it is.

The same guarantees as a move between hosts: each disk is in use from exactly one image
afterwards, which the timeline names; a cancel, a failure or a lost worker leaves every disk
that had not switched on its original image and removes the copy started for it; after a
switch the original image is removed. The task holds one outgoing and one incoming slot of
its host: the copy loads that host's storage as a migration would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from django.conf import settings

from hypervisor import HypervisorError
from hypervisor.block_copy import BlockCopies, CopyProgress, disk_sources
from hypervisor.connection import Connection, with_connection
from hypervisor.disk_moves import DiskMove
from hypervisor.guest import domain_state
from hypervisor.states import DomainState
from inventory import sync
from inventory.models import Host

from migrations_app.checks.store import storage_preflight
from migrations_app.choices import EndReason, TaskState
from migrations_app.engine import disk_copies
from migrations_app.engine.conclusion import finish
from migrations_app.engine.handoff import hand_to_recovery
from migrations_app.engine.moved_away import fail_as_moved
from migrations_app.engine.start_gate import QueueTasks, cleared_to_start
from migrations_app.models import MigrationTask, ProgressSample, TaskDiskMove
from migrations_app.storage.store import choice_of

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.5
# A copy that moves no byte for this long, not yet caught up, is abandoned: QEMU keeps
# a mirror going however slowly, and the task must say something true within a minute.
STALL_SECONDS = 60
# A host that does not answer the progress reads for this long is left to recovery, which
# settles every disk once the host answers again.
SILENT_HOST_SECONDS = 30
MIB = 1024 * 1024



def check_then_copy(task: MigrationTask, queue_granted: QueueTasks) -> None:
    """Check again, take a slot, copy and switch; the task ends saying where each disk is."""
    for model in (task.vm, task.source):
        model.refresh_from_db()
    state = domain_state(task.source.uri, str(task.vm.uuid), settings.LIBVIRT_CALL_TIMEOUT_SECONDS)
    if task.vm.host_id != task.source_id or state != DomainState.RUNNING:
        fail_as_moved(task, state)
        return
    report = storage_preflight(task.vm, choice_of(task))
    if cleared_to_start(task, report, queue_granted):
        _copy(task)
        sync.sync_host(Host.objects.get(pk=task.source_id))


def _copy(task: MigrationTask) -> None:
    try:
        moves = disk_copies.create_images(task)
    except HypervisorError as error:
        finish(task, TaskState.FAILED, EndReason.LIBVIRT_ERROR, error=f"Nothing moved: vmotion {error}.")
        disk_copies.remove_unused_copies(task, {})  # those created before the one that failed
        return
    host, uuid = task.source, str(task.vm.uuid)
    bandwidth = task.bandwidth_mib_s * MIB if task.bandwidth_mib_s else None
    targets = ", ".join(f"{move.target} to {move.destination_path}" for move in moves)
    with Connection(host.uri, settings.LIBVIRT_CALL_TIMEOUT_SECONDS) as connection:
        copies = BlockCopies(connection, uuid)
        task.transition(TaskState.MIGRATING, f"Copying {task.vm.name}'s disks on {host.name}: {targets}.")
        started = time.monotonic()
        try:
            for move in moves:
                copies.start(move, bandwidth)
        except HypervisorError as error:
            _abandon_all(copies, moves)
            _end(task, _sources_or_none(copies), failure=f"libvirt could not start the copy: {error}.", reason=EndReason.LIBVIRT_ERROR)
            return
        ending = _watch(task, copies, moves, started)
        if ending is None:
            return  # left to recovery
        cancelled, failure, reason = ending
        in_use = _sources_or_none(copies)
    if in_use is None:
        hand_to_recovery(task, f"{host.name} did not say which images {task.vm.name} uses after the copy.", None)
        return
    _keep_figures(task, moves, started)
    _end(task, in_use, cancelled=cancelled, failure=failure, reason=reason)


def _watch(task: MigrationTask, copies: BlockCopies, moves: tuple[DiskMove, ...], started: float) -> tuple[bool, str, str] | None:
    """Follow the copies until all caught up (then switch each), a cancel, a failure or a
    stall; (cancelled, failure, reason), or None when the host fell silent for good."""
    targets = [move.target for move in moves]
    moved_at, best, silent_since = time.monotonic(), -1, None
    while True:
        try:
            progress = copies.progress(targets)
            silent_since = None
        except HypervisorError as error:
            silent_since = silent_since or time.monotonic()
            if time.monotonic() - silent_since > SILENT_HOST_SECONDS:
                hand_to_recovery(task, f"{task.source.name} stopped answering during the copy.", error)
                return None
            time.sleep(POLL_INTERVAL_S)
            continue
        _sample(task, progress, started)
        copied = sum(p.copied_bytes for p in progress)
        if copied > best:
            best, moved_at = copied, time.monotonic()
        if MigrationTask.objects.filter(pk=task.pk, cancel_requested=True).exists():
            _abandon_all(copies, moves)
            return True, "", EndReason.OPERATOR
        ended = [p.target for p in progress if not p.running]
        if ended:
            _abandon_all(copies, moves)
            return False, f"libvirt ended the copy of {', '.join(ended)} before it caught up (the datastore full, or its image unwritable?).", EndReason.LIBVIRT_ERROR
        if all(p.ready for p in progress):
            return _switch(task, copies, targets)
        if time.monotonic() - moved_at > STALL_SECONDS:
            _abandon_all(copies, moves)
            return False, f"the copy moved nothing for {STALL_SECONDS} s.", EndReason.OTHER
        time.sleep(POLL_INTERVAL_S)


def _switch(task: MigrationTask, copies: BlockCopies, targets: list[str]) -> tuple[bool, str, str]:
    """Switch each disk to its copy; one that cannot switch stays on its original."""
    refused = []
    for target in targets:
        try:
            copies.pivot(target)
        except HypervisorError as error:
            refused.append(f"{target} ({error})")
            try:
                copies.abandon(target)
            except HypervisorError:
                pass  # recovery-proof either way: what the guest uses decides below
    if refused:
        return False, f"libvirt could not switch {', '.join(refused)} to its copy.", EndReason.LIBVIRT_ERROR
    return False, "", EndReason.COMPLETED


def _abandon_all(copies: BlockCopies, moves: tuple[DiskMove, ...]) -> None:
    for move in moves:
        try:
            copies.abandon(move.target)
        except HypervisorError as error:
            log.warning("could not abandon the copy of %s: %s", move.target, error)


def _sources_or_none(copies: BlockCopies) -> dict[str, str] | None:
    try:
        return copies.sources()
    except HypervisorError:
        return None


def _sample(task: MigrationTask, progress: list[CopyProgress], started: float) -> None:
    """The copy's bytes as the task's progress: for a storage-only move, its data is its disks."""
    total, copied = sum(p.total_bytes for p in progress), sum(p.copied_bytes for p in progress)
    elapsed_ms = round((time.monotonic() - started) * 1000)
    ProgressSample.objects.create(
        task=task, elapsed_ms=elapsed_ms, data_total=total, data_processed=copied, data_remaining=max(total - copied, 0),
        throughput_bytes_s=round(copied * 1000 / elapsed_ms) if elapsed_ms else 0,
    )
    task.beat()


def _keep_figures(task: MigrationTask, moves: tuple[DiskMove, ...], started: float) -> None:
    last = task.samples.order_by("-elapsed_ms").first()
    total_ms = round((time.monotonic() - started) * 1000)
    MigrationTask.objects.filter(pk=task.pk).update(
        total_ms=total_ms, downtime_ms=0, bytes_transferred=last.data_processed if last else None,
        mean_throughput_bytes_s=round(last.data_processed * 1000 / total_ms) if last and total_ms else None,
    )


def _end(
    task: MigrationTask, in_use: Mapping[str, str] | None, *, cancelled: bool = False, failure: str = "", reason: str = EndReason.OTHER,
    success_reason: str = EndReason.COMPLETED, held_by: str | None = None,
) -> None:
    """End the task from the images the guest uses, and remove those it no longer does."""
    if in_use is None:
        hand_to_recovery(task, f"{task.source.name} did not say which images {task.vm.name} uses.", None)
        return
    rows = list(task.disk_moves.all())
    moved = [row for row in rows if in_use.get(row.target) == row.destination_path]
    stayed = [row for row in rows if row not in moved]
    where = _whereabouts(moved, stayed)
    if not stayed:
        finish(task, TaskState.SUCCEEDED, success_reason, message=f"{task.vm.name} runs on its new images, on {task.source.name}: {where}.", held_by=held_by)
    elif cancelled and not moved:
        finish(task, TaskState.CANCELLED, EndReason.OPERATOR, message=f"Cancelled by the operator; {where}.", held_by=held_by)
    else:
        finish(task, TaskState.FAILED, reason, error=f"{failure} {where}.".strip(), held_by=held_by)
    disk_copies.remove_unused_copies(task, in_use)


def _whereabouts(moved: list[TaskDiskMove], stayed: list[TaskDiskMove]) -> str:
    parts = [f"{row.target} on {row.destination_path}" for row in moved]
    parts += [f"{row.target} still on {row.source_path}" for row in stayed]
    return "; ".join(parts)


def recover(task: MigrationTask, cause: str, reason: str) -> bool:
    """End a storage-only task whose worker is gone, once its host answers: a copy still going
    is abandoned (only a worker switches a disk), then each disk is where the guest uses it.
    False while the host does not answer."""
    uuid, timeout = str(task.vm.uuid), settings.LIBVIRT_CALL_TIMEOUT_SECONDS
    targets = list(task.disk_moves.values_list("target", flat=True))

    def settle(conn) -> dict[str, str]:
        dom = conn.lookupByUUIDString(uuid)
        for target in targets:
            if dom.blockJobInfo(target, 0):
                dom.blockJobAbort(target, 0)
        return disk_sources(dom.XMLDesc(0))

    try:
        in_use = with_connection(task.source.uri, timeout, settle)
    except HypervisorError as error:
        log.warning("task %s: cannot settle its disks yet: %s", task.pk, error)
        return False
    _end(task, in_use, failure=f"{cause}.", reason=reason, success_reason=EndReason.RECOVERED, held_by=task.worker)
    sync.sync_host(Host.objects.get(pk=task.source_id))
    return True
