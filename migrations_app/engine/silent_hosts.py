"""A migration whose source or destination libvirtd stops answering (frozen, not crashed).

A frozen libvirtd accepts connections and answers nothing, while the guests' QEMU run on: the
migrate call would wait for it forever. Each host of a running migration is watched on a
thread of its own (hypervisor.liveness); once one has not answered for the libvirt call
timeout, the engine ends the migration through the host that still answers:

- the destination is silent: the source's libvirtd aborts the job, the guest runs on there,
  and libvirt's keepalive on its connection to the destination ends the migrate call;
- the source is silent (pre-copy only): the destination's libvirtd stops its incoming copy,
  which has never run the guest; the source's QEMU stream fails and the guest runs on there.

The task then ends within seconds and says so. Where the guest runs is confirmed with both
hosts once the silent one answers again (recovery.settle_unconfirmed_tasks), on its timeline.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from hypervisor import HypervisorError
from hypervisor.connection import Connection
from hypervisor.guest import Guest
from hypervisor.liveness import HostWatch
from hypervisor.states import DomainState
from inventory.models import Host

from migrations_app.choices import EndReason, EventKind, TaskState
from migrations_app.engine.conclusion import finish
from migrations_app.engine.recovery import leave_unconfirmed
from migrations_app.engine.handoff import hand_to_recovery
from migrations_app.models import MigrationTask


class HostSilence:
    """The two hosts of one migration, each watched until `stop`."""

    def __init__(self, task: MigrationTask, limit: float | None = None):
        self.task = task
        self.limit = settings.LIBVIRT_CALL_TIMEOUT_SECONDS if limit is None else limit
        self._watches = {host.pk: HostWatch(host.uri).start() for host in (task.source, task.destination)}
        self.aborted_for_destination = False

    def stop(self) -> None:
        for watch in self._watches.values():
            watch.stop()

    def silent(self, host: Host) -> bool:
        """Whether `host`'s libvirtd has left a question unanswered for the limit."""
        return self._watches[host.pk].silent_for() >= self.limit

    def state_unless_silent(self, host: Host, read: Callable[[], DomainState]) -> DomainState:
        """UNREACHABLE without asking a silent host (asking would wait out the timeout)."""
        return DomainState.UNREACHABLE if self.silent(host) else read()

    def abort_for_silent_destination(self, guest: Guest, note: Callable[[str], None]) -> None:
        """Once the destination is silent in pre-copy, the source aborts the migration."""
        task = self.task
        if self.aborted_for_destination or task.state != TaskState.MIGRATING or not self.silent(task.destination):
            return
        self.aborted_for_destination = True
        try:
            guest.abort_job()
        except HypervisorError as error:
            note(f"libvirt on {task.destination.name} did not answer within {self.limit:g} s, and {task.source.name} could not abort the migration ({error}): libvirt's keepalive ends it.")
            return
        note(
            f"libvirt on {task.destination.name} did not answer within {self.limit:g} s: vmotion aborted the migration "
            f"on {task.source.name}, where {task.vm.name} goes on running."
        )

    def destination_failure(self) -> str:
        """The error's first sentence after aborting for a silent destination."""
        task = self.task
        return (
            f"libvirt on {task.destination.name} stopped answering during the migration (no answer within {self.limit:g} s), "
            f"so vmotion aborted it on {task.source.name}."
        )


def source_fell_silent(silence: HostSilence) -> bool:
    """The source's libvirtd stopped answering in pre-copy: the engine ends the migration."""
    task = silence.task
    return task.state == TaskState.MIGRATING and silence.silent(task.source)


def end_without_source(task: MigrationTask, silence: HostSilence) -> None:
    """Stop the incoming copy through the destination and end the task; recovery confirms
    with the source once it answers. Should the destination not confirm, recovery decides."""
    source, destination, vm = task.source.name, task.destination.name, task.vm.name
    silent = f"libvirt on {source} stopped answering during the migration (no answer within {silence.limit:g} s)"
    try:
        with Connection(task.destination.uri, settings.LIBVIRT_CALL_TIMEOUT_SECONDS) as connection:
            on_destination = Guest(connection, str(task.vm.uuid)).destroy_incoming()
    except HypervisorError as error:
        hand_to_recovery(task, f"{silent}, and {destination} could not stop its incoming copy ({error}).", None)
        return
    if on_destination != DomainState.ABSENT:
        hand_to_recovery(task, f"{silent}, and {vm} is {on_destination} on {destination}.", None)
        return
    finish(
        task, TaskState.FAILED, EndReason.LOST_CONTACT,
        error=(
            f"{silent}. vmotion ended the migration on {destination}, stopping its incoming copy before it ever ran: "
            f"{vm} still runs on {source}, whose QEMU goes on without libvirt. vmotion confirms this with {source} once its libvirt answers again."
        ),
    )
    leave_unconfirmed(task, source)
