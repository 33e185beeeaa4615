"""Ending a task and who may end it: the worker's claim, recovery's guard, and messages
that show every name exactly as it is."""

import os
import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from hypervisor.states import DomainState
from inventory.models import VirtualDisk
from migrations_app.checks import store as checks
from migrations_app.engine import run as engine
from migrations_app.engine import recovery
from migrations_app.choices import TaskState
from migrations_app.engine.conclusion import conclude
from migrations_app.models import InvalidTransition, MigrationTask
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def task():
    vm = VirtualMachineFactory(name="Lab-VM1", host=HostFactory(name="KVM-a"))
    return MigrationTask.objects.create(vm=vm, source=vm.host, destination=HostFactory(name="kvm-B"))


def migrating(task: MigrationTask, worker: str = "elsewhere:1") -> MigrationTask:
    task.claim(worker, "claimed")
    task.transition(TaskState.MIGRATING)
    return task


def test_a_failure_names_the_vm_and_hosts_exactly_as_they_are(task):
    migrating(task)

    assert conclude(task, DomainState.RUNNING, DomainState.ABSENT, failure="libvirt could not migrate the VM (timeout).")

    task.refresh_from_db()
    assert task.state == TaskState.FAILED
    assert task.error == "libvirt could not migrate the VM (timeout). Lab-VM1 still runs on KVM-a."


def test_a_cancel_carried_out_ends_as_cancelled_with_where_the_vm_runs(task):
    migrating(task)

    assert conclude(task, DomainState.RUNNING, DomainState.ABSENT, cancelled=True)

    task.refresh_from_db()
    assert task.state == TaskState.CANCELLED
    assert task.events.last().message == "Cancelled by the operator; Lab-VM1 still runs on KVM-a."


def test_no_verdict_while_a_host_is_silent_after_post_copy_began(task):
    migrating(task)
    task.transition(TaskState.POST_COPY)

    assert not conclude(task, DomainState.RUNNING, DomainState.UNREACHABLE, failure="lost.")
    assert MigrationTask.objects.get(pk=task.pk).state == TaskState.POST_COPY


def test_a_check_message_keeps_names_as_they_are(task):
    VirtualDisk.objects.create(vm=task.vm, target="vda", source="/srv/Local/Web-01.qcow2")

    result = checks.check_storage_shared(task.vm, task.destination)

    assert result.message == "Disk vda (/srv/Local/Web-01.qcow2) is not on a datastore vmotion knows, so it is local to KVM-a."


def test_a_claim_sets_worker_and_heartbeat_with_the_state_and_only_one_worker_gets_it(task):
    task.claim("host-a:10", "checking")

    row = MigrationTask.objects.get(pk=task.pk)
    assert (row.state, row.worker) == (TaskState.CHECKING, "host-a:10") and row.heartbeat_at is not None
    with pytest.raises(InvalidTransition):
        MigrationTask.objects.get(pk=task.pk).claim("host-b:20", "checking")
    assert MigrationTask.objects.get(pk=task.pk).worker == "host-a:10"


def test_waiting_for_a_slot_lets_go_of_the_worker_so_the_next_claim_is_fresh(task):
    task.claim("host-a:10", "checking")
    task.transition(TaskState.WAITING, "no slot")

    row = MigrationTask.objects.get(pk=task.pk)
    assert row.worker == "" and row.heartbeat_at is None
    row.claim("host-a:11", "checking again")
    assert MigrationTask.objects.get(pk=task.pk).worker == "host-a:11"


def test_recovery_ends_a_task_only_while_the_worker_it_judged_lost_still_holds_it(task):
    task.claim("host-a:10", "checking")
    judged = MigrationTask.objects.get(pk=task.pk)
    task.transition(TaskState.WAITING, "no slot")
    MigrationTask.objects.get(pk=task.pk).claim("host-a:11", "checking again")

    assert conclude(judged, DomainState.RUNNING, DomainState.ABSENT, failure="Worker lost.", held_by=judged.worker)

    row = MigrationTask.objects.get(pk=task.pk)
    assert row.state == TaskState.CHECKING and row.worker == "host-a:11"


def test_a_live_worker_on_this_machine_is_never_taken_for_lost_even_when_its_heartbeat_is_old(task, settings):
    settings.MIGRATION_WORKER_LOST_AFTER_SECONDS = 10
    migrating(task, worker=f"{socket.gethostname()}:{os.getpid()}")
    MigrationTask.objects.filter(pk=task.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))

    assert recovery.orphans() == []


def test_a_dead_worker_process_on_this_machine_is_lost_at_once(task):
    migrating(task, worker=f"{socket.gethostname()}:{2**22 + 12345}")  # above pid_max: no such process

    assert [orphan.pk for orphan in recovery.orphans()] == [task.pk]


def test_a_worker_elsewhere_is_lost_once_its_heartbeat_is_stale(task, settings):
    settings.MIGRATION_WORKER_LOST_AFTER_SECONDS = 10
    migrating(task, worker="other-machine:42")
    assert recovery.orphans() == []

    MigrationTask.objects.filter(pk=task.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=11))

    assert [orphan.pk for orphan in recovery.orphans()] == [task.pk]


def test_an_unexpected_error_while_the_vm_moves_leaves_the_verdict_to_recovery(task, monkeypatch):
    def crash_mid_migration(claimed, queue_granted):
        claimed.transition(TaskState.MIGRATING)
        raise RuntimeError("database went away")

    monkeypatch.setattr(engine, "_check_then_migrate", crash_mid_migration)

    engine.run_task(task.pk, queue_granted=lambda tasks: None)

    row = MigrationTask.objects.get(pk=task.pk)
    assert row.state == TaskState.MIGRATING and row.worker == recovery.HANDED_TO_RECOVERY
    assert "unexpected error while the VM was moving" in row.events.last().message


def test_an_unexpected_error_before_anything_moves_fails_the_task(task, monkeypatch):
    def crash_while_checking(claimed, queue_granted):
        raise RuntimeError("database went away")

    monkeypatch.setattr(engine, "_check_then_migrate", crash_while_checking)

    engine.run_task(task.pk, queue_granted=lambda tasks: None)

    row = MigrationTask.objects.get(pk=task.pk)
    assert row.state == TaskState.FAILED and "the VM was not moved" in row.error


def test_a_migration_that_ended_on_the_destination_places_the_vm_there_as_the_task_ends(task):
    migrating(task)

    assert conclude(task, DomainState.ABSENT, DomainState.RUNNING)

    task.refresh_from_db()
    task.vm.refresh_from_db()
    assert task.state == TaskState.SUCCEEDED
    assert (task.vm.host, task.vm.located_at is not None) == (task.destination, True)


def test_a_failed_migration_leaves_the_vm_placed_on_its_source(task):
    migrating(task)

    assert conclude(task, DomainState.RUNNING, DomainState.ABSENT, failure="libvirt could not migrate the VM (timeout).")

    task.vm.refresh_from_db()
    assert (task.vm.host, task.vm.located_at is not None) == (task.source, True)


def test_a_vm_running_on_both_hosts_is_placed_on_neither_until_a_reading_says(task):
    migrating(task)

    assert conclude(task, DomainState.RUNNING, DomainState.RUNNING, failure="libvirt could not migrate the VM.", overdue=True)

    task.vm.refresh_from_db()
    assert (task.vm.host, task.vm.located_at) == (task.source, None)
