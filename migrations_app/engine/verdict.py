"""What became of a migration, from where libvirt says the VM is on each host.

One pure function, used by the engine when a migration call returns and by recovery when
a worker was lost. It never guesses: while a host is silent or libvirt is still moving the
VM, the answer is "not yet".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hypervisor.states import DomainState

from migrations_app.choices import TaskState


class RunsOn(StrEnum):
    DESTINATION = "destination"  # the move happened
    SOURCE = "source"  # the move did not happen
    UNKNOWN = "unknown"  # a host is silent or the move is unfinished: ask again later
    BOTH = "both"  # both hosts run it: for a moment at the switch-over, or for good
    NEITHER = "neither"  # it runs nowhere (crashed, shut off): an operator must start it
    # A post-copy migration broke: the guest is split between the hosts, paused, until libvirt
    # resumes the migration or an operator restarts the guest from its disk.
    STRANDED = "stranded"


@dataclass(frozen=True)
class Verdict:
    runs_on: RunsOn
    outcome: TaskState | None  # the task's final state; None while it cannot be known


def judge(
    on_source: DomainState, on_destination: DomainState, *, post_copy: bool, cancelled: bool = False, overdue: bool = False
) -> Verdict:
    """Where the VM runs, and what that makes of the task.

    `post_copy`: the task reached post-copy, so the destination may hold the only live copy.
    `cancelled`: the operator's cancel was carried out, so staying on the source is a cancel.
    `overdue`: the migration is past its completion timeout, so two running copies are no
    longer a switch-over in progress but a fault an operator must resolve.
    """
    runs_on = _runs_on(on_source, on_destination, post_copy)
    if runs_on == RunsOn.UNKNOWN or (runs_on == RunsOn.BOTH and not overdue):
        return Verdict(runs_on, None)
    if runs_on == RunsOn.DESTINATION:
        return Verdict(runs_on, TaskState.SUCCEEDED)
    if runs_on == RunsOn.SOURCE and cancelled:
        return Verdict(runs_on, TaskState.CANCELLED)
    return Verdict(runs_on, TaskState.FAILED)


def _runs_on(source: DomainState, destination: DomainState, post_copy: bool) -> RunsOn:
    if source == DomainState.POST_COPY_FAILED or (destination == DomainState.POST_COPY_FAILED and not source.runs_here):
        # The source still holds pages the destination lacks, whatever the destination says
        # (its libvirt may not have noticed yet): no resume comes by itself, and the engine
        # has tried one where the hosts can.
        return RunsOn.STRANDED
    if source == DomainState.MIGRATING:
        return RunsOn.UNKNOWN  # libvirt still moves it, or the source is paused for the switch
    if destination == DomainState.MIGRATING:
        return RunsOn.UNKNOWN  # the destination still sets up or takes over the guest
    if source == DomainState.RUNNING and not post_copy and not destination.runs_here:
        # Before post-copy QEMU pauses the source before the destination may run the guest,
        # so an unpaused source still has it, whatever a silent destination would say.
        return RunsOn.SOURCE
    if DomainState.UNREACHABLE in (source, destination):
        return RunsOn.UNKNOWN
    if source.runs_here and destination.runs_here:
        return RunsOn.BOTH
    if destination.runs_here:
        return RunsOn.DESTINATION
    if source.runs_here:
        return RunsOn.SOURCE
    return RunsOn.NEITHER
