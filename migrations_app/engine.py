"""Runs one migration task from the worker: checks again, waits for a slot, predicts, starts a
peer-to-peer live migration and watches it to the end, applying the convergence policy."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from inventory import hypervisor, sync
from inventory.models import Host

from . import dispatch, policy, recovery
from .checks import preflight
from .choices import EventKind, TaskState
from .models import InvalidTransition, MigrationTask, ProgressSample
from .prediction import predict

log = logging.getLogger(__name__)

MONITOR_INTERVAL_S = 0.25
POLICY = policy.ConvergencePolicy()
MIB = policy.MIB


def run_task(task_id: int) -> None:
    task = MigrationTask.objects.select_related("vm", "source", "destination").get(pk=task_id)
    try:
        task.transition(TaskState.CHECKING, "A worker checks everything again before moving anything.")
    except InvalidTransition:
        return  # cancelled, or another worker has it
    MigrationTask.objects.filter(pk=task.pk).update(heartbeat_at=timezone.now(), worker=f"{socket.gethostname()}:{os.getpid()}")
    try:
        _check_then_migrate(task)
    except Exception as error:  # a task must never be left hanging by a bug
        log.exception("migration task %s failed unexpectedly", task.pk)
        _finish(task, TaskState.FAILED, error="vmotion hit an unexpected error; the VM was not moved by it.", detail=repr(error))
    finally:
        dispatch.queue_granted_tasks()


def _check_then_migrate(task: MigrationTask) -> None:
    for host in (task.source, task.destination):
        sync.sync_host(host)
    task.vm.refresh_from_db()
    task.source.refresh_from_db()
    task.destination.refresh_from_db()
    if task.vm.host_id != task.source_id:
        where = task.vm.host.name if task.vm.host else "no known host"
        _finish(task, TaskState.FAILED, error=f"{task.vm.name} now runs on {where}, not on {task.source.name} as when it was submitted.")
        return
    report = preflight(task.vm, task.destination, exclude_task_id=task.pk)
    for result in report.results:
        if result.status != "ok":
            task.log(EventKind.CHECK, f"{result.status}: {result.message}")
    if not report.passed:
        _finish(task, TaskState.FAILED, error=report.summary())
        return
    task.log(EventKind.CHECK, f"All {len(report.results)} pre-flight checks passed.")
    if _cancel_requested(task):
        _finish(task, TaskState.CANCELLED, message="Cancelled before it started; nothing moved.")
        return
    if task.slot_granted_at is None:
        decision = dispatch.request_slot(task)
        if not decision.granted:
            task.transition(TaskState.WAITING, f"Waiting for a slot, position {decision.position}: {decision.blocked_by}.")
            return
    _migrate(task)


def _cancel_requested(task: MigrationTask) -> bool:
    return MigrationTask.objects.filter(pk=task.pk, cancel_requested=True).exists()


@dataclass
class MonitorOutcome:
    cancelled: bool = False
    abort_reason: str = ""


def _migrate(task: MigrationTask) -> None:
    vm, source, destination = task.vm, task.source, task.destination
    uuid = str(vm.uuid)
    options = task.policy_options()
    timeout = settings.LIBVIRT_CALL_TIMEOUT_SECONDS
    with hypervisor.DomainControl(source.uri, timeout) as control:
        options = _predict(task, control, options)
        flags = policy.migration_flags_for(options, POLICY)
        request = hypervisor.MigrationRequest(
            uuid=uuid,
            destination_uri=destination.peer_uri,
            bandwidth_mib_s=task.bandwidth_mib_s,
            auto_converge=flags["auto_converge"],
            auto_converge_initial=flags["auto_converge_initial"],
            auto_converge_increment=flags["auto_converge_increment"],
            post_copy=flags["post_copy"],
        )
        policy_state, actions = policy.start(options, POLICY)
        task.transition(TaskState.MIGRATING, f"Copying {vm.name}'s memory to {destination.name}.")
        run = hypervisor.MigrationRun(source.uri, request).start()
        started = time.monotonic()
        outcome = _monitor(task, run, control, options, policy_state, actions, started)
        _conclude(task, run, control, outcome)
    for host in (source, destination):
        sync.sync_host(Host.objects.get(pk=host.pk))


def _predict(task: MigrationTask, control: hypervisor.DomainControl, options: policy.MigrationOptions) -> policy.MigrationOptions:
    """Measure the guest, store the forecast, and return the options with what was measured."""
    uuid = str(task.vm.uuid)
    try:
        resident = control.resident_bytes(uuid) or task.vm.memory_bytes
        dirty_rate = control.measure_dirty_rate(uuid, seconds=1)
    except hypervisor.HypervisorError as error:
        task.log(EventKind.INFO, f"Could not measure the guest before starting ({error}); no prediction.")
        return options
    bandwidth = options.bandwidth_bytes_s or _expected_bandwidth(task)
    options = dataclasses.replace(options, measured_dirty_rate_bytes_s=dirty_rate or 0, expected_link_bytes_s=bandwidth)
    forecast = predict(resident, dirty_rate or 0, bandwidth, options, POLICY)
    MigrationTask.objects.filter(pk=task.pk).update(
        measured_dirty_rate_bytes_s=dirty_rate,
        predicted_total_ms=forecast.total_ms,
        predicted_downtime_ms=forecast.downtime_ms,
        prediction=forecast.explanation,
    )
    rate = f"{dirty_rate / 1e6:.0f} MB/s" if dirty_rate is not None else "an unmeasured rate"
    task.log(
        EventKind.INFO,
        f"Prediction: {forecast.strategy}, about {forecast.total_ms / 1000:.1f} s with a {forecast.downtime_ms} ms pause "
        f"({resident / MIB:.0f} MiB in use, dirtied at {rate}, {bandwidth / MIB:.0f} MiB/s). {forecast.explanation}",
    )
    return options


def _expected_bandwidth(task: MigrationTask) -> int:
    """Uncapped: what the last migration between these hosts achieved, or the assumed link speed."""
    previous = (
        MigrationTask.objects.filter(
            source=task.source, destination=task.destination, state=TaskState.SUCCEEDED,
            bandwidth_mib_s__isnull=True, mean_throughput_bytes_s__gt=0,
        )
        .order_by("-finished_at")
        .values_list("mean_throughput_bytes_s", flat=True)
        .first()
    )
    return previous or settings.MIGRATION_ASSUMED_BANDWIDTH_MIB_S * MIB


def _monitor(task, run, control, options, policy_state, actions, started) -> MonitorOutcome:
    uuid = str(task.vm.uuid)
    outcome = MonitorOutcome()
    forced = False
    throttle_seen = 0
    _carry_out(task, control, actions, outcome)
    while not run.wait(MONITOR_INTERVAL_S):
        try:
            stats = control.job_stats(uuid)
        except hypervisor.HypervisorError as error:
            log.warning("task %s: cannot read job stats: %s", task.pk, error)
            continue
        if not stats.active:
            continue
        sample = policy.JobSample(
            elapsed_ms=int((time.monotonic() - started) * 1000),
            data_total=stats.data_total,
            data_processed=stats.data_processed,
            data_remaining=stats.data_remaining,
            memory_dirty_rate=stats.memory_dirty_rate_bytes_s,
            memory_iteration=stats.memory_iteration,
            memory_bps=stats.memory_bps,
            auto_converge_throttle=stats.auto_converge_throttle,
            post_copy=stats.post_copy,
        )
        _record(task, sample, policy_state)
        if sample.auto_converge_throttle > throttle_seen:
            throttle_seen = sample.auto_converge_throttle
            task.log(EventKind.POLICY, f"Auto-converge: QEMU slows the guest's vCPUs by {throttle_seen}% so the copy can catch up with its writes.")
        if stats.post_copy and task.state == TaskState.MIGRATING:
            task.transition(TaskState.POST_COPY, f"{task.vm.name} now runs on {task.destination.name}; the rest of its memory follows.")
        cancel, force = MigrationTask.objects.filter(pk=task.pk).values_list("cancel_requested", "force_complete_requested").get()
        if cancel and not outcome.cancelled:
            _cancel(task, control, outcome)
        if force and not forced:
            forced = True
            policy_state, forced_actions = policy.force_complete(policy_state, sample, options, POLICY)
            _carry_out(task, control, forced_actions, outcome)
        policy_state, actions = policy.decide(policy_state, sample, options, POLICY)
        _carry_out(task, control, actions, outcome)
    return outcome


def _record(task: MigrationTask, sample: policy.JobSample, policy_state) -> None:
    ProgressSample.objects.create(
        task=task,
        elapsed_ms=sample.elapsed_ms,
        data_total=sample.data_total,
        data_processed=sample.data_processed,
        data_remaining=sample.data_remaining,
        dirty_rate_bytes_s=sample.memory_dirty_rate,
        throughput_bytes_s=sample.memory_bps,
        iteration=sample.memory_iteration,
        max_downtime_ms=policy_state.max_downtime_ms,
        throttle_percent=sample.auto_converge_throttle,
    )
    MigrationTask.objects.filter(pk=task.pk).update(heartbeat_at=timezone.now())


def _cancel(task, control, outcome: MonitorOutcome) -> None:
    if task.state == TaskState.POST_COPY:
        MigrationTask.objects.filter(pk=task.pk).update(cancel_requested=False)
        task.log(EventKind.OPERATOR, "Cancel refused: in post-copy the VM already runs on the destination, so the migration can only finish.")
        return
    try:
        control.abort_job(str(task.vm.uuid))
    except hypervisor.HypervisorError as error:
        task.log(EventKind.OPERATOR, f"Cancel requested but libvirt could not abort yet: {error}")
        return
    outcome.cancelled = True
    task.log(EventKind.OPERATOR, "Cancel requested: libvirt aborts the migration; the VM keeps running on the source.")


def _carry_out(task, control, actions, outcome: MonitorOutcome) -> None:
    uuid = str(task.vm.uuid)
    for action in actions:
        try:
            if action.kind == policy.ActionKind.SET_MAX_DOWNTIME:
                control.set_max_downtime(uuid, action.value)
            elif action.kind == policy.ActionKind.START_POST_COPY:
                control.start_post_copy(uuid)
            elif action.kind == policy.ActionKind.ABORT:
                control.abort_job(uuid)
                outcome.abort_reason = action.reason
        except hypervisor.HypervisorError as error:
            task.log(EventKind.POLICY, f"{action.reason} libvirt refused: {error}")
            continue
        task.log(EventKind.POLICY, action.reason)


def _conclude(task, run, control, outcome: MonitorOutcome) -> None:
    """Finish the task by where libvirt says the VM runs now, not by what the call returned."""
    uuid = str(task.vm.uuid)
    timeout = settings.LIBVIRT_CALL_TIMEOUT_SECONDS
    on_source = hypervisor.domain_state_or_unreachable(control.uri, uuid, timeout)
    on_destination = hypervisor.domain_state_or_unreachable(task.destination.uri, uuid, timeout)
    runs_on_destination = on_destination in ("running", "paused")
    runs_on_source = on_source in ("running", "paused")
    lost = _lost_hosts(task, on_source, on_destination)
    if lost and not _surely_on_source(task, on_source):
        _hand_to_recovery(task, lost, run.error)
        return
    if runs_on_destination and not runs_on_source:
        _store_results(task, control)
        control.undefine_if_inactive(uuid)
        task.refresh_from_db()
        _finish(task, TaskState.SUCCEEDED, message=f"{task.vm.name} runs on {task.destination.name}{_result_summary(task)}.{_slo_note(task)}")
        return
    where = _whereabouts(task, on_source, on_destination)
    if outcome.cancelled and runs_on_source:
        _finish(task, TaskState.CANCELLED, message=f"Cancelled by the operator; {where}.")
    elif outcome.abort_reason:
        _finish(task, TaskState.FAILED, error=f"{outcome.abort_reason} {where.capitalize()}.", detail=str(run.error or ""))
    elif run.error is not None:
        _finish(task, TaskState.FAILED, error=f"{lost}libvirt could not migrate the VM: {run.error} {where.capitalize()}.", detail=str(run.error))
    else:
        _finish(task, TaskState.FAILED, error=f"libvirt reported success but the VM does not run on the destination; {where}.")


def _hand_to_recovery(task, lost: str, error) -> None:
    """Where the VM runs cannot be known while a host is silent, so no verdict yet: recovery
    finalises the task once both hosts answer and libvirt can say where the VM runs."""
    detail = f" (libvirt: {error})" if error else ""
    task.log(EventKind.INFO, f"{lost}vmotion finalises this task once both hosts answer again{detail}.")
    MigrationTask.objects.filter(pk=task.pk).update(worker=recovery.HANDED_TO_RECOVERY, heartbeat_at=None)


def _surely_on_source(task, on_source: str | None) -> bool:
    """Before post-copy the destination only runs the guest once the source hands it over,
    so a source that runs it (not paused for the move) still has it, whatever the other says."""
    return on_source == "running" and task.state != TaskState.POST_COPY


def _lost_hosts(task, on_source: str | None, on_destination: str | None) -> str:
    lost = [host.name for host, state in ((task.source, on_source), (task.destination, on_destination)) if state == "unreachable"]
    if not lost:
        return ""
    return f"{' and '.join(lost)} stopped answering during the migration. "


def _whereabouts(task, on_source: str | None, on_destination: str | None) -> str:
    vm, source, destination = task.vm.name, task.source.name, task.destination.name
    if on_source in ("running", "paused") and on_destination not in ("running", "paused"):
        return f"{vm} still runs on {source}" + (" (paused)" if on_source == "paused" else "")
    if on_destination in ("running", "paused") and on_source not in ("running", "paused"):
        return f"{vm} runs on {destination}"
    return f"{vm} is {on_source or 'not defined'} on {source} and {on_destination or 'not defined'} on {destination}"


def _store_results(task: MigrationTask, control: hypervisor.DomainControl) -> None:
    try:
        stats = control.job_stats(str(task.vm.uuid), completed=True)
    except hypervisor.HypervisorError as error:
        task.log(EventKind.INFO, f"The migration finished but its statistics could not be read: {error}")
        return
    elapsed = stats.elapsed_ms or 0
    MigrationTask.objects.filter(pk=task.pk).update(
        total_ms=elapsed,
        downtime_ms=stats.downtime_ms,
        bytes_transferred=stats.data_processed,
        iterations=stats.memory_iteration,
        final_dirty_rate_bytes_s=stats.memory_dirty_rate_bytes_s,
        mean_throughput_bytes_s=int(stats.data_processed * 1000 / elapsed) if elapsed else None,
    )


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


def _result_summary(task: MigrationTask) -> str:
    if task.total_ms is None:
        return ""
    parts = [f"{task.total_ms / 1000:.1f} s"]
    if task.downtime_ms is not None:
        parts.append(f"{task.downtime_ms} ms pause")
    if task.bytes_transferred:
        parts.append(f"{task.bytes_transferred / MIB:.0f} MiB moved")
    return " after " + ", ".join(parts)


def _finish(task: MigrationTask, state: str, *, message: str = "", error: str = "", detail: str = "") -> None:
    try:
        task.transition(state, message, error=error, error_detail=detail)
    except InvalidTransition:
        log.warning("task %s already final when finishing as %s", task.pk, state)
