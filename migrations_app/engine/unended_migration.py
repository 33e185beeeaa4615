"""A pre-copy migration that libvirt does not end, while libvirt on both hosts answers.

Two signs, each of which the engine stops waiting on:
- vmotion asked libvirt to abort the migration (its policy, an operator's cancel) and the
  migrate call is still running ABORT_GRACE_SECONDS later (SILENT_DESTINATION_GRACE_SECONDS
  after an abort for a silent destination, whose end libvirt's keepalive brings);
- the stream was open and libvirt on the source has given no statistics of the job for
  STATISTICS_SILENCE_SECONDS, with no abort asked. After an abort, libvirt on the source may
  well give none while it ends the job (for a silent destination, until its keepalive gives
  up on that host, about 20 s): the abort's grace decides then.

Both are what a source QEMU that stopped answering libvirt looks like: libvirt waits on a
QEMU's monitor without a deadline. Measured with libvirt 11.3 and the source's QEMU stopped
(SIGSTOP) mid-migration: the job's statistics, an abort and the migrate call all waited until
QEMU was continued about 40 s later, and stopping the destination's copy did not end the call
either. The first sign is also what a migration stuck at its switch-over looked like in a
soak: both hosts "paused (migrating)", nothing left to send, QEMU "cancelling" after the
abort and for minutes after.

In pre-copy the destination's copy has never run the guest: the engine stops it (a source
QEMU that still works then ends its stream at once and resumes the guest), gives the call
AFTER_STOP_SECONDS to return, and otherwise ends the task from what both hosts' libvirt say,
without the call. The guest stays whole in the source's QEMU; recovery notes on the task where
it runs once libvirt there has ended the job (recovery.settle_unconfirmed_tasks).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings

from hypervisor import HypervisorError
from hypervisor.guest import domain_state, stop_incoming_copy
from hypervisor.migration import MigrationRun

from migrations_app.choices import EndReason, EventKind, TaskState
from migrations_app.engine.conclusion import conclude, finish
from migrations_app.engine.recovery import confirm_later
from migrations_app.engine.silent_hosts import HostSilence
from migrations_app.models import MigrationTask

# An abort ends a working migration within a second or two (QEMU cancels the stream); libvirt
# then stops the destination's copy, which takes up to 10 s where that QEMU does not answer.
ABORT_GRACE_SECONDS = 15.0
# After an abort for a silent destination, libvirt's keepalive on the source's connection to
# it ends the call (in the lab about 20 s after the abort): that is waited for first.
SILENT_DESTINATION_GRACE_SECONDS = 25.0
# Two of the engine's statistics calls in a row past their 10 s deadline: a loaded host answers
# within one.
STATISTICS_SILENCE_SECONDS = 20.0
# A working source QEMU notices its stream closed by the far end within a second.
AFTER_STOP_SECONDS = 10.0


class UnendedMigration:
    """Watches one migration for the two signs; `reason` says which was seen, once one was."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.reason = ""
        self._abort_asked_at: float | None = None
        self._grace_s = ABORT_GRACE_SECONDS

    def abort_asked(self, grace_s: float = ABORT_GRACE_SECONDS) -> None:
        """vmotion asked libvirt to abort, which should end the call within `grace_s` (asked
        any number of times: the first counts)."""
        if self._abort_asked_at is None:
            self._abort_asked_at, self._grace_s = self.clock(), grace_s

    def seen(self, statistics_silent_s: float, stream_opened: bool, source_name: str) -> bool:
        """Whether libvirt is past the point of ending the migration by itself; sets `reason`."""
        if self._abort_asked_at is not None and self.clock() - self._abort_asked_at >= self._grace_s:
            self.reason = f"libvirt had not ended the migration {self.clock() - self._abort_asked_at:.0f} s after vmotion aborted it"
        elif self._abort_asked_at is None and stream_opened and statistics_silent_s >= STATISTICS_SILENCE_SECONDS:
            self.reason = (
                f"libvirt on {source_name} had given no statistics of the migration for {statistics_silent_s:.0f} s "
                "while answering otherwise: the guest's QEMU there does not answer libvirt"
            )
        return bool(self.reason)


def stop_destination_copy(task: MigrationTask, run: MigrationRun, hosts: HostSilence, reason: str) -> bool:
    """Stop the destination's copy, which never ran the guest, and wait a little for the call;
    returns whether it returned (the task then ends as any other)."""
    destination, uuid = task.destination, str(task.vm.uuid)
    if hosts.silent(destination):
        done = f"libvirt on {destination.name} does not answer either, so its copy could not be stopped."
    else:
        try:
            stopped = stop_incoming_copy(destination.uri, uuid, settings.LIBVIRT_CALL_TIMEOUT_SECONDS)
        except HypervisorError as error:
            done = f"vmotion could not stop the copy on {destination.name} ({error})."
        else:
            done = (f"vmotion stopped the copy waiting on {destination.name}, which never ran {task.vm.name}."
                    if stopped else f"{destination.name} holds no waiting copy to stop.")  # fmt: skip
    task.log(EventKind.POLICY, f"{reason}: {done}")
    return run.wait(AFTER_STOP_SECONDS)


def end(task: MigrationTask, hosts: HostSilence, reason: str) -> None:
    """End the task from both hosts' word while libvirt still holds the migration job."""
    uuid, timeout = str(task.vm.uuid), settings.LIBVIRT_CALL_TIMEOUT_SECONDS
    vm, source = task.vm.name, task.source.name
    # Not the job's statistics: those wait on the QEMU that does not answer.
    on_source = hosts.state_unless_silent(task.source, lambda: domain_state(task.source.uri, uuid, timeout, ask_job=False))
    on_destination = hosts.state_unless_silent(task.destination, lambda: domain_state(task.destination.uri, uuid, timeout, ask_job=False))
    failure = f"The migration did not end: {reason}, and the call had not returned {AFTER_STOP_SECONDS:.0f} s after vmotion stopped the destination's copy."
    if not conclude(task, on_source, on_destination, failure=failure, failure_reason=EndReason.LIBVIRT_ERROR):
        finish(
            task, TaskState.FAILED, EndReason.LIBVIRT_ERROR,
            error=(
                f"{failure} {vm} is {on_source} on {source} and {on_destination} on {task.destination.name}: "
                f"its memory stays whole in {source}'s QEMU while libvirt there holds the job."
            ),
        )  # fmt: skip
    confirm_later(task, f"libvirt on {source} still holds {vm}'s migration job: once it ends it, vmotion asks both hosts where {vm} runs and notes it here.")
