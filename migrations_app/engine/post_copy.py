"""A post-copy migration whose link broke: noticed within seconds, resumed where both hosts'
libvirt can, and otherwise ended with the one command an operator needs.

A dropped link breaks nothing QEMU notices for minutes (see convergence.post_copy_stall):
once post-copy has moved no memory for STALL_SECONDS the engine interrupts the stream on the
source (libvirt's VIR_DOMAIN_ABORT_JOB_POSTCOPY), so libvirt marks it "post-copy failed".
Then, by the versions the inventory recorded (convergence.post_copy_recovery):

- hosts that can resume: the engine asks libvirt to resume (VIR_MIGRATE_POSTCOPY_RESUME with
  the original flags) until the link is back or RESUME_WAIT_SECONDS passed. Written against
  libvirt's documented API; not yet proven in vmotion's lab, whose libvirt 11.3 cannot resume.
- hosts that cannot (libvirt 11.2 and 11.3 crash the destination's daemon on a resume): the
  engine never asks; the verdict is "stranded" and the task fails with the restart command.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from hypervisor import HypervisorError
from hypervisor.guest import Guest
from hypervisor.job import JobSample
from hypervisor.migration import MigrationRequest, MigrationRun
from hypervisor.uris import redact

from migrations_app.convergence.post_copy_recovery import (
    HostLibvirt, broken_post_copy_error, can_resume, restart_command, resume_command,
)
from migrations_app.convergence.post_copy_stall import STALL_SECONDS, PostCopyStall
from migrations_app.models import MigrationTask

# How long the engine waits for the link to come back and libvirt to resume, where it can.
RESUME_WAIT_SECONDS = 600
# Between two resume attempts while the link is still down.
RESUME_RETRY_SECONDS = 5


def hosts_of(task: MigrationTask) -> tuple[HostLibvirt, HostLibvirt]:
    return HostLibvirt(task.source.name, task.source.libvirt_version), HostLibvirt(task.destination.name, task.destination.libvirt_version)


def resumable(task: MigrationTask) -> bool:
    return can_resume(*hosts_of(task))


def stranded_error(task: MigrationTask) -> str:
    """The error of a task whose post-copy broke and was not resumed, with the one command
    that resolves it (URIs without their secrets)."""
    source, destination = hosts_of(task)
    vm, uuid = task.vm.name, str(task.vm.uuid)
    if can_resume(source, destination):
        command = resume_command(vm, uuid, redact(task.source.uri), redact(task.destination.peer_uri))
        return (
            f"Failed: post-copy broke and vmotion could not resume it within {RESUME_WAIT_SECONDS // 60} minutes; the guest is "
            f"paused on both hosts. Once the migration link is back, libvirt on these hosts can resume it: {command}"
        )
    command = restart_command(vm, uuid, redact(task.source.uri), redact(task.destination.uri))
    return f"{broken_post_copy_error(vm, source, destination)} To start it again from its disk on {source.name}: {command}"


class PostCopyWatch:
    """Follows one migration's samples for a broken post-copy; `broken` once libvirt says so."""

    def __init__(self, task: MigrationTask, guest: Guest, note: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self.guest, self.note, self.clock = guest, note, clock
        self.can_resume = resumable(task)
        self.broken = False
        self.resuming: MigrationRun | None = None
        self._stall = PostCopyStall()
        self._interrupted = False
        self._attempts = 0
        self._deadline: float | None = None

    def review(self, sample: JobSample) -> bool:
        """One sample of the source; True when the post-copy broke and the watch should stop."""
        if sample.post_copy_failed:
            if self.resuming is not None and not self.resuming.wait(0):
                return False  # a resume is under way: its call returns when it ends or fails
            if not self.broken:
                self.broken = True
                self._deadline = self.clock() + RESUME_WAIT_SECONDS
                self.note(self._broken_note())
            return True
        if sample.post_copy and not self._interrupted and self._stall.stuck(self.clock(), sample.data_processed):
            try:
                self.guest.interrupt_post_copy()
            except HypervisorError as error:
                self.note(f"Post-copy has moved no memory for {STALL_SECONDS:.0f} s, and libvirt refused to interrupt it: {error}")
                self._interrupted = True  # said once; libvirt's own "post-copy failed" still ends it
                return False
            self._interrupted = True
            self.note(
                f"Post-copy has moved no memory for {STALL_SECONDS:.0f} s: the migration link is down. vmotion interrupts the "
                f"stream so that libvirt pauses the migration rather than wait for TCP to give up."
            )
        return False

    def _broken_note(self) -> str:
        if self.can_resume:
            return f"Post-copy broke: the guest waits, paused, for the link. vmotion resumes the migration once the link is back (for up to {RESUME_WAIT_SECONDS // 60} minutes)."
        return "Post-copy broke, and these hosts' libvirt cannot resume it, so vmotion does not ask (on libvirt 11.2 and 11.3 the request crashes the destination's libvirtd)."

    def needs_resume(self, run: MigrationRun) -> bool:
        """Whether to ask libvirt (again) to resume, after the watch of `run` ended."""
        if not self.can_resume or self._deadline is None or self.clock() > self._deadline:
            return False
        if self.broken:
            return True
        if self.resuming is run and run.error is not None:
            try:
                return self.guest.job_sample().post_copy_failed
            except HypervisorError:
                return True  # the source is silent: try again, the deadline bounds it
        return False

    def resume(self, request: MigrationRequest, source_uri: str, on_done: Callable[[], None], sleep: Callable[[float], None] = time.sleep) -> MigrationRun:
        """Ask libvirt to resume the broken post-copy: the same migration call with
        VIR_MIGRATE_POSTCOPY_RESUME added to its flags. Blocks like the first call, in its own thread."""
        if self._attempts:
            sleep(RESUME_RETRY_SECONDS)
        self._attempts += 1
        self.broken = False
        self.note(f"Asking libvirt to resume the post-copy migration (attempt {self._attempts}).")
        self.resuming = MigrationRun(source_uri, replace(request, post_copy_resume=True), on_done=on_done).start()
        return self.resuming
