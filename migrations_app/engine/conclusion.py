"""Ending a task from libvirt's word on where the VM runs, with the figures of the move.

The engine calls `conclude` when its migration call returns; recovery calls it for a task
whose worker was lost. Both get the same verdict, the same sentences and the same figures.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from hypervisor import HypervisorError
from hypervisor.connection import Connection
from hypervisor.guest import Guest
from hypervisor.states import DomainState
from inventory.location import record_location

from migrations_app.choices import EndReason, EventKind, TaskState
from migrations_app.models import InvalidTransition, MigrationTask
from migrations_app.convergence.policy import MIB
from migrations_app.engine.post_copy import stranded_error
from migrations_app.engine.verdict import RunsOn, Verdict, judge

log = logging.getLogger(__name__)


def conclude(
    task: MigrationTask,
    on_source: DomainState,
    on_destination: DomainState,
    *,
    cancelled: bool = False,
    failure: str = "",
    success_prefix: str = "",
    failure_detail: str = "",
    failure_reason: str = EndReason.OTHER,
    success_reason: str = EndReason.COMPLETED,
    held_by: str | None = None,
    overdue: bool = False,
) -> bool:
    """End the task as the verdict says; False when libvirt cannot tell yet.

    `failure` starts the error of a failed task and `success_prefix` the message of a
    successful one; `failure_reason` and `success_reason` (EndReason) say why in a word;
    `held_by` ends the task only while that worker still holds it; `overdue`: the migration
    is past its completion timeout (see `verdict.judge`).
    """
    verdict = judge(
        on_source, on_destination, post_copy=task.state == TaskState.POST_COPY, cancelled=cancelled, overdue=overdue
    )
    if verdict.outcome is None:
        return False
    where = whereabouts(task, verdict, on_source, on_destination)
    if verdict.outcome == TaskState.SUCCEEDED:
        _keep_figures(task)
        _undefine_on_source(task)
        task.refresh_from_db(fields=["force_complete_requested"])  # an operator may have set it meanwhile
    # Whoever reads the ended task finds the VM where the task says it runs.
    with transaction.atomic():
        _record_location(task, verdict)
        if verdict.outcome == TaskState.SUCCEEDED:
            message = f"{success_prefix}{where}{_result_summary(task)}.{_slo_note(task)}"
            finish(task, TaskState.SUCCEEDED, success_reason, message=message, held_by=held_by)
        elif verdict.runs_on == RunsOn.STRANDED:
            finish(task, TaskState.FAILED, EndReason.POST_COPY_BROKEN, error=stranded_error(task), detail=failure_detail, held_by=held_by)
        elif verdict.outcome == TaskState.CANCELLED:
            finish(task, TaskState.CANCELLED, EndReason.OPERATOR, message=f"Cancelled by the operator; {where}.", held_by=held_by)
        else:
            finish(task, TaskState.FAILED, failure_reason, error=f"{failure} {where}.".lstrip(), detail=failure_detail, held_by=held_by)
    return True


def _record_location(task: MigrationTask, verdict: Verdict) -> None:
    """The one host the VM runs on, when libvirt names one (not both, not neither)."""
    host = {RunsOn.DESTINATION: task.destination, RunsOn.SOURCE: task.source}.get(verdict.runs_on)
    if host is not None:
        record_location(task.vm_id, host)


def whereabouts(task: MigrationTask, verdict: Verdict, on_source: DomainState, on_destination: DomainState) -> str:
    """Where the VM runs, as a sentence that starts with its name exactly as it is."""
    vm, source, destination = task.vm.name, task.source.name, task.destination.name
    if verdict.runs_on == RunsOn.DESTINATION:
        return f"{vm} runs on {destination}{_paused(on_destination)}"
    if verdict.runs_on == RunsOn.SOURCE:
        return f"{vm} still runs on {source}{_paused(on_source)}"
    if verdict.runs_on == RunsOn.BOTH:
        return f"{vm} runs on both {source} and {destination}: stop the copy that should not run"
    if verdict.runs_on == RunsOn.STRANDED:
        return f"{vm} is paused on both {source} and {destination}: its post-copy migration broke"
    if verdict.runs_on == RunsOn.NEITHER:
        return f"{vm} runs on neither host: it is {_word(on_source)} on {source} and {_word(on_destination)} on {destination}"
    return f"where {vm} runs is not known yet"


def finish(
    task: MigrationTask, state: str, end_reason: str, *, message: str = "", error: str = "", detail: str = "", held_by: str | None = None
) -> None:
    try:
        task.transition(state, message, error=error, error_detail=detail, held_by=held_by, end_reason=end_reason)
    except InvalidTransition as refused:
        log.warning("task %s not finished as %s: %s", task.pk, state, refused)


def _paused(state: DomainState) -> str:
    return " (paused)" if state == DomainState.PAUSED else ""


def _word(state: DomainState) -> str:
    return {DomainState.STOPPED: "stopped", DomainState.ABSENT: "not defined"}.get(state, str(state))


def _keep_figures(task: MigrationTask) -> None:
    """libvirt's statistics of the completed job: on the source, which keeps them after
    post-copy too, or else on the destination."""
    uuid, timeout = str(task.vm.uuid), settings.LIBVIRT_CALL_TIMEOUT_SECONDS
    problems = []
    for host in (task.source, task.destination):
        try:
            with Connection(host.uri, timeout) as connection:
                sample = Guest(connection, uuid).job_sample(completed=True)
        except HypervisorError as error:
            problems.append(f"{host.name}: {error}")
            continue
        if sample.data_processed or sample.elapsed_ms:
            task.record_result(sample)
            return
        problems.append(f"{host.name} kept none")
    task.log(EventKind.INFO, f"The migration finished but libvirt's statistics of it could not be read ({'; '.join(problems)}).")


def _undefine_on_source(task: MigrationTask) -> None:
    try:
        with Connection(task.source.uri, settings.LIBVIRT_CALL_TIMEOUT_SECONDS) as connection:
            Guest(connection, str(task.vm.uuid)).undefine_if_inactive()
    except HypervisorError as error:
        task.log(EventKind.INFO, f"The stopped copy on {task.source.name} could not be removed: {error}")


def _result_summary(task: MigrationTask) -> str:
    if task.total_ms is None:
        return ""
    parts = [f"{task.total_ms / 1000:.1f} s"]
    if task.downtime_ms is not None:
        parts.append(f"{task.downtime_ms} ms pause")
    if task.bytes_transferred:
        parts.append(f"{task.bytes_transferred / MIB:.0f} MiB moved")
    return " after " + ", ".join(parts)


def _slo_note(task: MigrationTask) -> str:
    """QEMU's estimate of the final pause can be wrong on a loaded host: say so when it was."""
    if task.downtime_ms is None or task.downtime_ms <= task.max_downtime_ms:
        return ""
    if task.force_complete_requested:
        return f" The {task.downtime_ms} ms pause exceeded the {task.max_downtime_ms} ms SLO, as the operator accepted by forcing completion."
    return (
        f" The pause of {task.downtime_ms} ms exceeded the {task.max_downtime_ms} ms SLO: QEMU expected the last copy "
        f"to fit within it, but the host was too slow to deliver (check its load)."
    )
