"""Runs one migration task in a worker: claims it, checks again, takes a slot, predicts,
starts a peer-to-peer live migration, steers it to the end with the convergence monitor,
keeps it at its share of its hosts' bandwidth, and ends the task from where libvirt says the
VM runs. Knows nothing of the queue."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from django.conf import settings

from hypervisor import HypervisorError
from hypervisor.connection import Connection
from hypervisor.events import event_loop_running
from hypervisor.guest import Guest, domain_state
from hypervisor.job import JobSample
from hypervisor.sampling import WORKING_SET_WINDOW_SECONDS
from hypervisor.migration import MigrationRequest, MigrationRun
from hypervisor.states import DomainState
from inventory import sync
from inventory.models import Host

from migrations_app.engine import bandwidth
from migrations_app.checks import rules as check_rules
from migrations_app.checks import live as live_checks
from migrations_app.convergence import policy
from migrations_app.engine import disk_copies, storage_move, unended_migration, unopened_stream
from migrations_app.storage.store import choice_of
from migrations_app.checks.store import encryption_setting, preflight, tls_ends
from migrations_app.choices import EndReason, EventKind, TaskState
from migrations_app.engine.conclusion import conclude, finish
from migrations_app.engine.moved_away import fail_as_moved
from migrations_app.engine.start_gate import QueueTasks, cleared_to_start
from migrations_app.engine.database_outage import DATABASE_ERRORS, DatabaseLink, drop_connection
from migrations_app.forecast.history import expected_link_rates
from migrations_app.convergence.job_silence import JobSilence
from migrations_app.convergence.stream_stall import StreamStall
from migrations_app.forecast.live import forecast
from migrations_app.models import InvalidTransition, MigrationTask, ProgressSample
from migrations_app.engine.monitor import ConvergenceMonitor
from migrations_app.engine.post_copy import PostCopyWatch
from migrations_app.engine.recovery import leave_unconfirmed
from migrations_app.engine.handoff import hand_to_recovery
from migrations_app.engine.silent_hosts import HostSilence, end_without_source, source_fell_silent
from migrations_app.forecast.replay import POLICY

log = logging.getLogger(__name__)

MONITOR_INTERVAL_S = 0.25
# During the first pass the policy has nothing to judge (it acts at passes' ends, which
# libvirt reports as they happen), and each sample costs the source's QEMU CPU that the copy
# needs: on two shared cores, four samples a second made an uncapped copy 9-20 % slower than
# plain virsh, one a second 2 %. Once the first pass is done, and in post-copy, the policy
# and the guest's clients need the closer look.
FIRST_PASS_INTERVAL_S = 1.0
# After the migrate call returns, how long libvirt may take to settle where the VM runs
# before recovery is left to decide.
SETTLE_SECONDS = 10



def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_task(task_id: int, queue_granted: QueueTasks) -> None:
    """Run the task to its end, or until it waits for a slot. `queue_granted` queues other
    tasks that were granted a slot meanwhile."""
    task = MigrationTask.objects.select_related("vm", "source", "destination").get(pk=task_id)
    # A job may come twice (re-driven from a frozen worker that then wakes): the claim is the
    # one place that decides who runs it, and a waiting task runs only with a slot granted.
    try:
        if task.state == TaskState.WAITING and task.slot_granted_at is None:
            raise InvalidTransition(f"task {task.pk} waits for a slot")
        task.claim(worker_id(), "A worker checks everything again before moving anything.")
    except InvalidTransition as taken:
        log.info("migration task %s not run by this job: %s", task_id, taken)
        return  # cancelled, ended, or another worker has it
    try:
        if task.storage_only:
            storage_move.check_then_copy(task, queue_granted)
        else:
            _check_then_migrate(task, queue_granted)
    except Exception as error:  # a task must never be left hanging by a bug
        log.exception("migration task %s failed unexpectedly", task.pk)
        if isinstance(error, DATABASE_ERRORS):
            drop_connection()  # what follows needs a connection that works
        task.refresh_from_db(fields=["state"])
        if task.state in (TaskState.MIGRATING, TaskState.POST_COPY):
            # libvirt may still be moving the VM: only libvirt can say where it ends up.
            hand_to_recovery(task, f"vmotion hit an unexpected error while the VM was moving ({error!r}).", None)
        else:
            finish(
                task, TaskState.FAILED, EndReason.INTERNAL_ERROR,
                error="vmotion hit an unexpected error; the VM was not moved by it.", detail=repr(error),
            )


def _check_then_migrate(task: MigrationTask, queue_granted: QueueTasks) -> None:
    # The checks read the inventory as the last sync left it, moments old: reading both hosts
    # first would keep the operator waiting. Where the VM runs, libvirt says now; a refusal is
    # made only on a fresh reading; and libvirt refuses a move its hosts cannot take.
    _refresh(task)
    state = domain_state(task.source.uri, str(task.vm.uuid), settings.LIBVIRT_CALL_TIMEOUT_SECONDS)
    if task.vm.host_id != task.source_id or state != DomainState.RUNNING:
        fail_as_moved(task, state)
        return
    disks = choice_of(task)
    report = preflight(task.vm, task.destination, exclude_task_id=task.pk, cpu_check=live_checks.check_cpu_compatible, disks=disks)
    if not report.passed:
        for host in (task.source, task.destination):
            sync.sync_host(host)
        _refresh(task)
        report = preflight(task.vm, task.destination, exclude_task_id=task.pk, cpu_check=live_checks.check_cpu_compatible, disks=disks)
    if cleared_to_start(task, report, queue_granted):
        _migrate(task)


def _refresh(task: MigrationTask) -> None:
    for model in (task.vm, task.source, task.destination):
        model.refresh_from_db()


def _migrate(task: MigrationTask) -> None:
    # Watched from before the forecast, so that opening the watches' connections costs the
    # hosts nothing once the copy runs (uncapped, the copy is CPU-bound).
    hosts = HostSilence(task)
    try:
        _migrate_watched(task, hosts)
    finally:
        hosts.stop()


def _migrate_watched(task: MigrationTask, hosts: HostSilence) -> None:
    vm, source, destination = task.vm, task.source, task.destination
    events = event_loop_running()  # before the connection, or libvirt sends it no events
    with Connection(source.uri, settings.LIBVIRT_CALL_TIMEOUT_SECONDS) as connection:
        guest = Guest(connection, str(vm.uuid))
        share = bandwidth.share_for(task)
        if share.explanation:
            task.log(EventKind.INFO, share.explanation)
        inputs = _predict(task, guest, task.convergence_inputs(), share.mib_s)
        flags = policy.migration_flags_for(inputs, POLICY)
        encrypted = _decide_encryption(task)
        try:
            copied_disks = disk_copies.create_images(task)
        except HypervisorError as error:
            finish(task, TaskState.FAILED, EndReason.LIBVIRT_ERROR, error=f"Nothing moved: vmotion {error}.")
            disk_copies.remove_losing_copies(task)  # those created before the one that failed
            return
        request = MigrationRequest(
            uuid=str(vm.uuid),
            destination_uri=destination.peer_uri,
            bandwidth_mib_s=share.mib_s,
            auto_converge=flags["auto_converge"],
            auto_converge_initial=flags["auto_converge_initial"],
            auto_converge_increment=flags["auto_converge_increment"],
            post_copy=flags["post_copy"],
            tls=encrypted,
            disk_moves=copied_disks,
        )
        wake = threading.Event()  # a pass ended, or the migrate call returned
        stop_following = _follow_pass_ends(task, guest, wake) if events else lambda: None
        _after_dirty_rate_measurement(task, guest)
        task.transition(TaskState.MIGRATING, f"Copying {vm.name}'s memory to {destination.name}.")
        run = MigrationRun(source.uri, request, on_done=wake.set).start()
        database = DatabaseLink(noted=lambda seconds: _note_outage(task, seconds))

        def note(message: str) -> None:
            database.if_answering(lambda: task.log(EventKind.POLICY, message), None)

        monitor = ConvergenceMonitor(guest, inputs, POLICY, note=note)
        keeper = bandwidth.ShareKeeper(share, read=lambda: database.if_answering(lambda: bandwidth.share_for(task), None), apply=guest.set_max_speed, note=note)
        post_copy = PostCopyWatch(task, guest, note)
        opening, unended = unopened_stream.StreamOpening(), unended_migration.UnendedMigration()
        try:
            cancelled = _watch(task, run, guest, monitor, database, keeper, wake, post_copy, hosts, opening, unended)
            while post_copy.needs_resume(run):
                run = post_copy.resume(request, source.uri, on_done=wake.set)
                cancelled = _watch(task, run, guest, monitor, database, keeper, wake, post_copy, hosts, opening, unended)
        finally:
            stop_following()
    if opening.stopped:
        unopened_stream.end(task)
    elif unended.reason and not unended_migration.stop_destination_copy(task, run, hosts, unended.reason):
        unended_migration.end(task, hosts, unended.reason)
    elif not run.wait(0) and source_fell_silent(hosts):
        end_without_source(task, hosts)
    else:
        _end(task, run, monitor, cancelled, database, hosts)
    disk_copies.remove_losing_copies(task)
    # The destination first: read the other way round, a VM that moved would show as missing
    # until the destination answered (a second or so over SSH).
    for host in (destination, source):
        sync.sync_host(Host.objects.get(pk=host.pk))


def _decide_encryption(task: MigrationTask) -> bool:
    """Whether this migration's stream goes over TLS, recorded on the task and its timeline."""
    mode, setter = encryption_setting(task.source, task.destination)
    ends = tls_ends(task.source, task.destination)
    encrypted = check_rules.encrypts(mode, *ends)
    MigrationTask.objects.filter(pk=task.pk).update(encrypted=encrypted)
    task.encrypted = encrypted
    task.log(EventKind.INFO, check_rules.stream_note(mode, setter, *ends))
    return encrypted


def _predict(task: MigrationTask, guest: Guest, inputs: policy.ConvergenceInputs, bandwidth_mib_s: int | None) -> policy.ConvergenceInputs:
    """Measure the guest, store the forecast, and return the inputs with what was measured."""
    link = expected_link_rates(task.source, task.destination, bandwidth_mib_s)
    try:
        expected = forecast(guest, task.vm, inputs, link, sum(move.copied_bytes for move in task.disk_moves.all()))
    except HypervisorError as error:
        task.log(EventKind.INFO, f"Could not measure the guest before starting ({error}); no prediction.")
        return inputs
    MigrationTask.objects.filter(pk=task.pk).update(
        measured_dirty_rate_bytes_s=expected.dirty_rate_bytes_s,
        resident_bytes=expected.resident_bytes,
        predicted_total_ms=expected.prediction.total_ms,
        predicted_downtime_ms=expected.prediction.downtime_ms,
        prediction=expected.prediction.explanation,
    )
    task.log(EventKind.INFO, f"Prediction: {expected.summary()} {expected.prediction.explanation}")
    return expected.inputs


def _after_dirty_rate_measurement(task: MigrationTask, guest: Guest) -> None:
    """A dirty-rate measurement of the guest (the inventory's) ends before its migration starts
    (see Guest.dirty_rate_measurement_ended)."""
    try:
        waited = guest.dirty_rate_measurement_ended(WORKING_SET_WINDOW_SECONDS + 1)
    except HypervisorError as error:
        task.log(EventKind.INFO, f"Could not tell whether a dirty-rate measurement of the guest was under way ({error}).")
        return
    if waited >= 0.2:
        task.log(EventKind.INFO, f"Waited {waited:.1f} s for a dirty-rate measurement of the guest to end: QEMU can hang a migration that completes while one runs.")


def _follow_pass_ends(task: MigrationTask, guest: Guest, wake: threading.Event) -> Callable[[], None]:
    """Wake the monitor the moment libvirt reports a pass's end, so the policy judges it then
    rather than at the next sample; returns what stops that."""
    try:
        return guest.on_pass_end(lambda _pass: wake.set())
    except HypervisorError as error:
        task.log(EventKind.INFO, f"libvirt does not report the ends of passes here ({error}); vmotion judges them from its samples every {MONITOR_INTERVAL_S * 1000:.0f} ms.")
        return lambda: None


def _watch(
    task: MigrationTask, run: MigrationRun, guest: Guest, monitor: ConvergenceMonitor, database: DatabaseLink,
    keeper: bandwidth.ShareKeeper, wake: threading.Event, post_copy: PostCopyWatch, hosts: HostSilence,
    opening: unopened_stream.StreamOpening, unended: unended_migration.UnendedMigration,
) -> bool:
    """Sample the job every MONITOR_INTERVAL_S and at each pass's end, until the migrate call
    returns, the post-copy broke (the call may then never return), the source's libvirtd
    stops answering, the stream never opened (see unopened_stream) or a pre-copy does not
    end (see unended_migration); returns whether a cancel was carried out. The policy steers
    on without the database; its samples and the operator's requests wait. A destination
    that stops answering gets the migration aborted (silent_hosts)."""
    cancelled = False
    def note(message: str) -> None:
        database.if_answering(lambda: task.log(EventKind.INFO, message), None)

    silence, stall = JobSilence(task.source.name, note=note), StreamStall(note=note)
    interval = MONITOR_INTERVAL_S
    while True:
        wake.wait(interval)
        wake.clear()
        if run.wait(0) or source_fell_silent(hosts):
            break
        if monitor.abort_reason or cancelled:
            unended.abort_asked()
        if hosts.aborted_for_destination:
            unended.abort_asked(unended_migration.SILENT_DESTINATION_GRACE_SECONDS)
        if task.state == TaskState.MIGRATING and unended.seen(silence.silent_for(), opening.opened, task.source.name):
            break
        hosts.abort_for_silent_destination(guest, note=lambda message: database.if_answering(lambda: task.log(EventKind.POLICY, message), None))
        try:
            sample = guest.job_sample()
        except HypervisorError as error:
            log.warning("task %s: cannot read job stats: %s", task.pk, error)
            silence.failed(error)
            if opening.overdue() and unopened_stream.stop_it(task, opening):
                break
            continue
        silence.answered()
        interval = sampling_interval(sample)
        if post_copy.review(sample):
            break
        if not sample.active:
            continue
        opening.sampled(sample)
        stall.sampled(sample)
        cancel, force = database.if_answering(lambda: _record_sample(task, sample, monitor), (False, False))
        if cancel and not cancelled:
            cancelled = _cancel(task, guest, database)
        monitor.step(sample, force_requested=force)
        keeper.review(post_copy=sample.post_copy)
    return cancelled


def sampling_interval(sample: JobSample) -> float:
    """How long until the next sample, by what the last one showed."""
    in_first_pass = sample.active and sample.memory_iteration <= 1 and not sample.post_copy
    return FIRST_PASS_INTERVAL_S if in_first_pass else MONITOR_INTERVAL_S


def _record_sample(task: MigrationTask, sample, monitor: ConvergenceMonitor) -> tuple[bool, bool]:
    """Keep the sample and the heartbeat, follow the switch to post-copy; returns whether the
    operator asked to cancel and to force completion."""
    ProgressSample.of(task, sample, monitor.state.max_downtime_ms).save()
    task.beat()
    if sample.post_copy and task.state == TaskState.MIGRATING:
        task.transition(TaskState.POST_COPY, f"{task.vm.name} now runs on {task.destination.name}; the rest of its memory follows.")
    return MigrationTask.objects.filter(pk=task.pk).values_list("cancel_requested", "force_complete_requested").get()


def _note_outage(task: MigrationTask, seconds: float) -> None:
    task.log(EventKind.INFO, f"The database did not answer for {seconds:.1f} s; the migration went on, without progress samples meanwhile.")


def _cancel(task: MigrationTask, guest: Guest, database: DatabaseLink) -> bool:
    """Whether libvirt aborted the migration; the timeline says so if the database answers."""
    def log(message: str) -> None:
        database.if_answering(lambda: task.log(EventKind.OPERATOR, message), None)

    if task.state == TaskState.POST_COPY:
        database.if_answering(lambda: MigrationTask.objects.filter(pk=task.pk).update(cancel_requested=False), None)
        log("Cancel refused: in post-copy the VM already runs on the destination, so the migration can only finish.")
        return False
    try:
        guest.abort_job()
    except HypervisorError as error:
        log(f"Cancel requested but libvirt could not abort yet: {error}")
        return False
    log("Cancel requested: libvirt aborts the migration; the VM keeps running on the source.")
    return True


def _end(task: MigrationTask, run: MigrationRun, monitor: ConvergenceMonitor, cancelled: bool, database: DatabaseLink, hosts: HostSilence) -> None:
    """End the task by where libvirt says the VM runs now, not by what the call returned;
    a database that does not answer is waited for (see database_outage), a host whose
    libvirtd stopped answering is not."""
    uuid, timeout = str(task.vm.uuid), settings.LIBVIRT_CALL_TIMEOUT_SECONDS
    if hosts.aborted_for_destination:
        failure, failure_reason = hosts.destination_failure(), EndReason.LOST_CONTACT
    elif monitor.abort_reason:
        failure, failure_reason = monitor.abort_reason, EndReason.CONVERGENCE_ABORT
    elif run.error is not None:
        failure, failure_reason = f"libvirt could not migrate the VM ({run.error}).", EndReason.LIBVIRT_ERROR
    else:
        failure = "libvirt reported success but the VM does not run on the destination:"
        failure_reason = EndReason.NOT_ON_DESTINATION
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        if source_fell_silent(hosts):
            end_without_source(task, hosts)
            return
        on_source = hosts.state_unless_silent(task.source, lambda: domain_state(task.source.uri, uuid, timeout))
        on_destination = hosts.state_unless_silent(task.destination, lambda: domain_state(task.destination.uri, uuid, timeout))
        ended = database.waiting_for_it(lambda: conclude(
            task, on_source, on_destination, cancelled=cancelled,
            failure=failure, failure_detail=str(run.error or ""), failure_reason=failure_reason,
        ))
        silent = DomainState.UNREACHABLE in (on_source, on_destination)
        if ended or silent or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # libvirt is still tidying up after the call: the incoming copy, the switch
    if not ended:
        hand_to_recovery(task, _unknown_because(task, on_source, on_destination), run.error)
    elif on_destination == DomainState.UNREACHABLE:
        leave_unconfirmed(task, task.destination.name)


def _unknown_because(task: MigrationTask, on_source: DomainState, on_destination: DomainState) -> str:
    silent = [host.name for host, state in ((task.source, on_source), (task.destination, on_destination)) if state == DomainState.UNREACHABLE]
    if silent:
        return f"{' and '.join(silent)} stopped answering during the migration."
    return "libvirt has not finished the migration yet."
