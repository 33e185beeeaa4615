"""A host's libvirtd that stops answering mid-migration: the engine ends the migration through
the host that answers, the task says so at once, and recovery confirms where the VM runs
once both hosts answer again."""

import pytest

from hypervisor import HypervisorTimeout
from hypervisor.states import DomainState
from migrations_app.choices import TaskState
from migrations_app.engine import recovery, silent_hosts
from migrations_app.models import MigrationTask

pytestmark = pytest.mark.django_db


class _Silence:
    """HostSilence with the hosts' silences given, not watched."""

    def __init__(self, task, silent=(), limit=10):
        self.task, self.limit, self._silent = task, limit, set(silent)
        self.aborted_for_destination = False

    def silent(self, host):
        return host.name in self._silent


class _Guest:
    def __init__(self, left: DomainState | Exception, calls: list):
        self.left, self.calls = left, calls

    def destroy_incoming(self):
        self.calls.append("destroy_incoming")
        if isinstance(self.left, Exception):
            raise self.left
        return self.left

    def abort_job(self):
        self.calls.append("abort_job")


class _Connection:
    def __init__(self, uri, timeout):
        self.uri = uri

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def destination_leaves(monkeypatch, left) -> list:
    calls = []
    monkeypatch.setattr(silent_hosts, "Connection", _Connection)
    monkeypatch.setattr(silent_hosts, "Guest", lambda connection, uuid: _Guest(left, calls))
    return calls


def test_a_silent_source_in_pre_copy_is_ended_from_the_destination_and_said_so(task, monkeypatch):
    calls = destination_leaves(monkeypatch, DomainState.ABSENT)

    silent_hosts.end_without_source(task, _Silence(task, silent={"kvm-a"}))

    task.refresh_from_db()
    assert calls == ["destroy_incoming"]
    assert task.state == TaskState.FAILED
    assert task.error == (
        "libvirt on kvm-a stopped answering during the migration (no answer within 10 s). vmotion ended the migration "
        "on kvm-b, stopping its incoming copy before it ever ran: web-1 still runs on kvm-a, whose QEMU goes on without "
        "libvirt. vmotion confirms this with kvm-a once its libvirt answers again."
    )
    assert task.worker == recovery.UNCONFIRMED
    assert "kvm-a has not answered yet" in task.events.last().message


def test_a_destination_that_runs_the_guest_is_left_to_recovery(task, monkeypatch):
    destination_leaves(monkeypatch, DomainState.RUNNING)

    silent_hosts.end_without_source(task, _Silence(task, silent={"kvm-a"}))

    task.refresh_from_db()
    assert task.state == TaskState.MIGRATING and task.worker == recovery.HANDED_TO_RECOVERY
    assert "web-1 is running on kvm-b" in task.events.last().message


def test_a_destination_that_cannot_be_asked_either_is_left_to_recovery(task, monkeypatch):
    destination_leaves(monkeypatch, HypervisorTimeout("stopping the incoming copy at kvm-b did not answer within 10 s"))

    silent_hosts.end_without_source(task, _Silence(task, silent={"kvm-a"}))

    task.refresh_from_db()
    assert task.state == TaskState.MIGRATING and task.worker == recovery.HANDED_TO_RECOVERY


def test_only_pre_copy_is_ended_for_a_silent_source(task):
    assert silent_hosts.source_fell_silent(_Silence(task, silent={"kvm-a"}))
    assert not silent_hosts.source_fell_silent(_Silence(task, silent={"kvm-b"}))
    task.transition(TaskState.POST_COPY)
    assert not silent_hosts.source_fell_silent(_Silence(task, silent={"kvm-a"}))


def test_a_silent_destination_gets_the_migration_aborted_on_the_source_once(task):
    calls, notes = [], []
    silence = _Silence(task, silent={"kvm-b"})
    silence.abort_for_silent_destination = silent_hosts.HostSilence.abort_for_silent_destination.__get__(silence)

    silence.abort_for_silent_destination(_Guest(DomainState.ABSENT, calls), notes.append)
    silence.abort_for_silent_destination(_Guest(DomainState.ABSENT, calls), notes.append)

    assert calls == ["abort_job"] and silence.aborted_for_destination
    assert notes == ["libvirt on kvm-b did not answer within 10 s: vmotion aborted the migration on kvm-a, where web-1 goes on running."]


def unconfirmed(task) -> MigrationTask:
    silent_hosts.finish(task, TaskState.FAILED, "lost_contact", error="libvirt on kvm-a stopped answering.")
    recovery.leave_unconfirmed(task, "kvm-a")
    return task


def states(monkeypatch, by_host: dict) -> None:
    monkeypatch.setattr(recovery, "domain_state", lambda uri, uuid, timeout: by_host[uri])
    monkeypatch.setattr(recovery.sync, "sync_host", lambda host: None)


def test_recovery_confirms_where_the_vm_runs_once_both_hosts_answer(task, monkeypatch):
    unconfirmed(task)
    states(monkeypatch, {task.source.uri: DomainState.UNREACHABLE, task.destination.uri: DomainState.ABSENT})
    assert recovery.settle_unconfirmed_tasks() == []

    states(monkeypatch, {task.source.uri: DomainState.RUNNING, task.destination.uri: DomainState.ABSENT})
    assert recovery.settle_unconfirmed_tasks() == [task.pk]
    assert recovery.settle_unconfirmed_tasks() == []

    task.refresh_from_db()
    assert task.worker == "" and task.state == TaskState.FAILED
    assert task.events.last().message == "Both hosts answer again; libvirt confirms where the VM runs: web-1 still runs on kvm-a, as this task said."


def test_recovery_says_so_when_libvirt_names_another_host_than_the_task(task, monkeypatch):
    unconfirmed(task)
    states(monkeypatch, {task.source.uri: DomainState.ABSENT, task.destination.uri: DomainState.RUNNING})

    assert recovery.settle_unconfirmed_tasks() == [task.pk]

    task.vm.refresh_from_db()
    assert task.vm.host == task.destination
    assert "web-1 runs on kvm-b, not as this task said" in task.events.last().message
