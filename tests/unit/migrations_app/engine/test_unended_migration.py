"""A pre-copy migration libvirt does not end (an abort that does not take, a source QEMU that
stopped answering): the engine stops the destination's copy, and ends the task from both
hosts' word within a bound instead of waiting on the migrate call."""

import pytest

from hypervisor import HypervisorTimeout
from hypervisor.states import DomainState
from migrations_app.choices import TaskState
from migrations_app.engine import recovery, unended_migration
from migrations_app.engine.unended_migration import (
    ABORT_GRACE_SECONDS,
    SILENT_DESTINATION_GRACE_SECONDS,
    STATISTICS_SILENCE_SECONDS,
    UnendedMigration,
)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_abort_is_given_its_grace_then_counts_as_not_taken():
    clock = Clock()
    unended = UnendedMigration(clock)

    unended.abort_asked()
    clock.now += ABORT_GRACE_SECONDS - 1
    unended.abort_asked()  # asked again: the first one counts
    assert not unended.seen(0, True, "kvm-a") and unended.reason == ""
    clock.now += 1

    assert unended.seen(0, True, "kvm-a")
    assert unended.reason == "libvirt had not ended the migration 15 s after vmotion aborted it"


def test_an_abort_for_a_silent_destination_waits_for_libvirts_keepalive_first():
    clock = Clock()
    unended = UnendedMigration(clock)

    unended.abort_asked(SILENT_DESTINATION_GRACE_SECONDS)
    clock.now += ABORT_GRACE_SECONDS
    unended.abort_asked()  # the policy's abort after it does not shorten the wait
    assert not unended.seen(0, True, "kvm-a")
    clock.now += SILENT_DESTINATION_GRACE_SECONDS - ABORT_GRACE_SECONDS

    assert unended.seen(0, True, "kvm-a")
    assert unended.reason == "libvirt had not ended the migration 25 s after vmotion aborted it"


@pytest.mark.parametrize(
    ("silent_s", "opened", "seen"),
    [
        (STATISTICS_SILENCE_SECONDS - 1, True, False),  # a slow answer or two
        (STATISTICS_SILENCE_SECONDS, True, True),
        (STATISTICS_SILENCE_SECONDS * 3, False, False),  # the stream never opened: unopened_stream's to end
    ],
)
def test_statistics_silent_once_the_stream_opened_is_a_qemu_that_does_not_answer(silent_s, opened, seen):
    unended = UnendedMigration(Clock())

    assert unended.seen(silent_s, opened, "kvm-a") is seen
    if seen:
        assert unended.reason == (
            "libvirt on kvm-a had given no statistics of the migration for 20 s while answering otherwise: "
            "the guest's QEMU there does not answer libvirt"
        )


def test_after_an_abort_silent_statistics_wait_for_the_aborts_grace():
    """With the destination's libvirtd frozen, the source's gives no statistics while its
    keepalive waits out that host: the abort's grace, not the silence, decides."""
    clock = Clock()
    unended = UnendedMigration(clock)

    unended.abort_asked(SILENT_DESTINATION_GRACE_SECONDS)
    clock.now += SILENT_DESTINATION_GRACE_SECONDS - 1
    assert not unended.seen(STATISTICS_SILENCE_SECONDS + 4, True, "kvm-a")
    clock.now += 1

    assert unended.seen(STATISTICS_SILENCE_SECONDS + 5, True, "kvm-a")
    assert unended.reason == "libvirt had not ended the migration 25 s after vmotion aborted it"


def test_nothing_asked_and_statistics_flowing_is_a_migration_under_way():
    clock = Clock()
    unended = UnendedMigration(clock)

    clock.now += 3600

    assert not unended.seen(0.5, True, "kvm-a")


# Ending it ------------------------------------------------------------------------------------


class _Silence:
    """HostSilence with the hosts' silences given, not watched."""

    def __init__(self, silent=()):
        self._silent = set(silent)

    def silent(self, host):
        return host.name in self._silent

    def state_unless_silent(self, host, read):
        return DomainState.UNREACHABLE if self.silent(host) else read()


class _Run:
    def __init__(self, returns: bool):
        self.returns, self.waited = returns, []

    def wait(self, timeout):
        self.waited.append(timeout)
        return self.returns


def copy_on_destination(monkeypatch, outcome) -> list:
    calls = []

    def stop(uri, uuid, timeout):
        calls.append(uri)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(unended_migration, "stop_incoming_copy", stop)
    return calls


def hosts_say(monkeypatch, task, on_source, on_destination) -> list:
    asked = []

    def state(uri, uuid, timeout, ask_job=True):
        asked.append(ask_job)
        return on_source if uri == task.source.uri else on_destination

    monkeypatch.setattr(unended_migration, "domain_state", state)
    return asked


def test_the_destinations_copy_is_stopped_and_a_call_that_then_returns_ends_as_usual(task, monkeypatch):
    calls = copy_on_destination(monkeypatch, True)
    run = _Run(returns=True)

    returned = unended_migration.stop_destination_copy(task, run, _Silence(), "libvirt had not ended the migration 15 s after vmotion aborted it")

    assert returned and calls == [task.destination.uri] and run.waited == [unended_migration.AFTER_STOP_SECONDS]
    assert task.events.last().message == (
        "libvirt had not ended the migration 15 s after vmotion aborted it: vmotion stopped the copy waiting on kvm-b, which never ran web-1."
    )
    task.refresh_from_db()
    assert task.state == TaskState.MIGRATING  # the caller ends it from libvirt's word


@pytest.mark.parametrize(
    ("outcome", "silent", "said"),
    [
        (False, (), "kvm-b holds no waiting copy to stop."),
        (HypervisorTimeout("no answer within 10 s"), (), "vmotion could not stop the copy on kvm-b (no answer within 10 s)."),
        (True, ("kvm-b",), "libvirt on kvm-b does not answer either, so its copy could not be stopped."),
    ],
)
def test_a_copy_that_could_not_be_stopped_is_said_so(task, monkeypatch, outcome, silent, said):
    calls = copy_on_destination(monkeypatch, outcome)

    unended_migration.stop_destination_copy(task, _Run(returns=False), _Silence(silent), "reason")

    assert task.events.last().message == f"reason: {said}"
    assert calls == ([] if silent else [task.destination.uri])


def test_a_call_that_never_returns_leaves_the_task_failed_with_the_vm_on_its_source(task, monkeypatch):
    asked = hosts_say(monkeypatch, task, DomainState.RUNNING, DomainState.ABSENT)

    unended_migration.end(task, _Silence(), "libvirt on kvm-a had given no statistics of the migration for 20 s")

    task.refresh_from_db()
    assert asked == [False, False]  # never the job's statistics: they wait on the QEMU that hangs
    assert task.state == TaskState.FAILED
    assert task.error == (
        "The migration did not end: libvirt on kvm-a had given no statistics of the migration for 20 s, and the call had "
        "not returned 10 s after vmotion stopped the destination's copy. web-1 still runs on kvm-a."
    )
    assert task.vm.host.name == "kvm-a"
    assert task.worker == recovery.UNCONFIRMED


def test_a_source_paused_in_the_job_still_ends_the_task_saying_where_the_guest_is(task, monkeypatch):
    hosts_say(monkeypatch, task, DomainState.MIGRATING, DomainState.ABSENT)

    unended_migration.end(task, _Silence(), "libvirt had not ended the migration 15 s after vmotion aborted it")

    task.refresh_from_db()
    assert task.state == TaskState.FAILED
    assert task.error.endswith(
        "web-1 is migrating on kvm-a and absent on kvm-b: its memory stays whole in kvm-a's QEMU while libvirt there holds the job."
    )
    assert "once it ends it, vmotion asks both hosts where web-1 runs" in task.events.last().message
    assert task.worker == recovery.UNCONFIRMED


def test_recovery_notes_where_the_guest_runs_once_libvirt_ended_the_job(task, monkeypatch):
    hosts_say(monkeypatch, task, DomainState.MIGRATING, DomainState.ABSENT)
    unended_migration.end(task, _Silence(), "reason")
    still_held = {task.source.uri: DomainState.MIGRATING, task.destination.uri: DomainState.ABSENT}
    monkeypatch.setattr(recovery, "domain_state", lambda uri, uuid, timeout, ask_job=True: still_held[uri])
    monkeypatch.setattr(recovery.sync, "sync_host", lambda host: None)

    assert recovery.settle_unconfirmed_tasks() == []  # the job still holds it: nothing to confirm
    still_held[task.source.uri] = DomainState.RUNNING
    assert recovery.settle_unconfirmed_tasks() == [task.pk]

    task.refresh_from_db()
    assert "libvirt confirms where the VM runs: web-1 still runs on kvm-a, as this task said." in task.events.last().message
