"""A migration whose stream never opens. For a plain TCP stream libvirt on the source connects
to the destination's migration address itself, holding the domain's job: with that address
unreachable (a cut link, a firewall dropping the ports) it waits for TCP to give up, about
130 s with Linux's default SYN retries, and neither the job's statistics nor an abort get
through meanwhile (measured with libvirt 11.3: virDomainAbortJob waited as long). The
destination's copy, paused for the incoming stream, answers and has never run the guest:
stopping it ends the migration for certain (when the link answers again the source's connect is
refused), so the task can end at once with the VM where it was."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings

from hypervisor.guest import domain_state, stop_incoming_copy
from hypervisor.job import JobSample
from hypervisor.states import DomainState
from hypervisor import HypervisorError

from migrations_app.choices import EndReason, EventKind
from migrations_app.engine.conclusion import conclude
from migrations_app.engine.handoff import hand_to_recovery
from migrations_app.models import MigrationTask

# Opening a stream takes well under a second on a working link; a SYN lost to a brief blip is
# sent again 1, 3, 7 and 15 s after the first, so a link back within 15 s still opens it.
STREAM_OPEN_SECONDS = 20.0


class StreamOpening:
    """Whether the stream opened since the migrate call began: the first statistics with data
    sent say so. (libvirt gives statistics before it connects too, while it prepares the
    destination.)"""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.started = clock()
        self.opened = False
        self.tried = False  # the destination's copy was looked at once already
        self.stopped = False  # and stopped: the migration cannot go on

    def sampled(self, sample: JobSample) -> None:
        if sample.data_processed > 0:
            self.opened = True

    def overdue(self) -> bool:
        return not self.opened and not self.tried and self.clock() - self.started >= STREAM_OPEN_SECONDS


def stop_it(task: MigrationTask, opening: StreamOpening) -> bool:
    """Stop the destination's waiting copy when the VM still runs on the source and libvirt
    there answers (a libvirtd that answers nothing is not holding a connect); returns whether
    the migration is over for certain."""
    opening.tried = True
    uuid, timeout = str(task.vm.uuid), settings.LIBVIRT_CALL_TIMEOUT_SECONDS
    if domain_state(task.source.uri, uuid, timeout, ask_job=False) != DomainState.RUNNING:
        return False
    try:
        opening.stopped = stop_incoming_copy(task.destination.uri, uuid, timeout)
    except HypervisorError as error:
        task.log(EventKind.INFO, f"The copy waiting on {task.destination.name} could not be stopped ({error}); libvirt ends the migration when TCP gives up.")
    return opening.stopped


def end(task: MigrationTask) -> None:
    """The task's end once the destination's copy is stopped: the VM runs on the source."""
    vm, source, destination = task.vm.name, task.source.name, task.destination.name
    task.log(
        EventKind.INFO,
        f"libvirt on {source} keeps {vm}'s migration job until its connect to {destination} fails: at once when the link "
        f"answers again (nothing listens there now), else when TCP gives up (about 2 minutes after the start); "
        f"a new migration of {vm} waits for that.",
    )
    on_source = domain_state(task.source.uri, str(task.vm.uuid), settings.LIBVIRT_CALL_TIMEOUT_SECONDS, ask_job=False)
    failure = (
        f"The migration link to {destination} did not answer: libvirt on {source} could not open the migration stream "
        f"within {STREAM_OPEN_SECONDS:.0f} s, so vmotion stopped the copy waiting on {destination} and nothing moved."
    )
    if not conclude(task, on_source, DomainState.ABSENT, failure=failure, failure_reason=EndReason.LIBVIRT_ERROR):
        hand_to_recovery(task, f"{failure} Where {vm} runs could not be read on {source} afterwards.", None)
