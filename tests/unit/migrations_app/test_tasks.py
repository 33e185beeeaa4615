"""Migration tasks: the state machine, the database's one-active-task rule, slots, checks."""

import pytest
from auditlog.models import LogEntry
from django.db import IntegrityError, transaction

from inventory.choices import HostState, PowerState
from inventory.models import Datastore, DatastoreMount, Network, NetworkAttachment, VirtualDisk, VirtualNic
from migrations_app.checks import store as checks
from migrations_app.engine import slots
from migrations_app.engine.conclusion import _slo_note
from migrations_app.choices import Priority, TaskState
from migrations_app.models import InvalidTransition, MigrationLimits, MigrationTask
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


def make_task(vm=None, destination=None, **fields) -> MigrationTask:
    vm = vm or VirtualMachineFactory()
    return MigrationTask.objects.create(vm=vm, source=vm.host, destination=destination or HostFactory(), **fields)


def test_every_transition_is_checked_recorded_and_audited():
    task = make_task()

    task.transition(TaskState.CHECKING)
    task.transition(TaskState.MIGRATING, "copying memory")

    assert [e.to_state for e in task.events.all()] == [TaskState.CHECKING, TaskState.MIGRATING]
    assert task.started_at is not None
    assert LogEntry.objects.get_for_object(task).filter(changes__icontains="migrating").exists()
    with pytest.raises(InvalidTransition):
        task.transition(TaskState.QUEUED)


def test_a_final_task_cannot_change_state():
    task = make_task()
    task.transition(TaskState.CANCELLED)
    for state in TaskState.values:
        with pytest.raises(InvalidTransition):
            task.transition(state)
    assert task.finished_at is not None


def test_the_database_allows_one_active_task_per_vm():
    task = make_task()
    with pytest.raises(IntegrityError), transaction.atomic():
        make_task(vm=task.vm, destination=task.destination)
    task.transition(TaskState.CANCELLED)
    make_task(vm=task.vm, destination=task.destination)  # a finished task no longer counts


def test_slots_respect_per_host_limits_and_go_by_priority_then_age():
    MigrationLimits.objects.update_or_create(pk=1, defaults={"max_outgoing_per_host": 1, "max_incoming_per_host": 2, "max_concurrent": 5})
    source, destination = HostFactory(), HostFactory()
    running = make_task(VirtualMachineFactory(host=source), destination, state=TaskState.MIGRATING)
    running.slot_granted_at = running.created_at
    running.save()
    low = make_task(VirtualMachineFactory(host=source), destination, state=TaskState.WAITING, priority=Priority.LOW)
    high = make_task(VirtualMachineFactory(host=source), destination, state=TaskState.WAITING, priority=Priority.HIGH)

    assert slots.grant_waiting_slots() == []
    decision, _ = slots.request_slot(make_task(VirtualMachineFactory(host=source), destination, state=TaskState.CHECKING, priority=Priority.NORMAL))
    assert (decision.granted, decision.position) == (False, 2)
    assert "outgoing" in decision.blocked_by

    running.transition(TaskState.SUCCEEDED)
    assert [t.pk for t in slots.grant_waiting_slots()] == [high.pk]
    assert slots.grant_waiting_slots() == []
    low.refresh_from_db()
    assert low.slot_granted_at is None


def test_a_waiting_task_keeps_its_place_on_its_other_host_while_lower_priority_work_elsewhere_goes_on():
    MigrationLimits.objects.update_or_create(pk=1, defaults={"max_outgoing_per_host": 1, "max_incoming_per_host": 1, "max_concurrent": 8})
    busy, wanted, elsewhere, other = HostFactory(), HostFactory(), HostFactory(), HostFactory()
    running = make_task(VirtualMachineFactory(host=busy), other, state=TaskState.MIGRATING)
    running.slot_granted_at = running.created_at
    running.save()
    urgent = make_task(VirtualMachineFactory(host=busy), wanted, state=TaskState.WAITING, priority=Priority.HIGH)
    same_destination = make_task(VirtualMachineFactory(host=elsewhere), wanted, state=TaskState.WAITING, priority=Priority.LOW)
    unrelated = make_task(VirtualMachineFactory(host=elsewhere), HostFactory(), state=TaskState.WAITING, priority=Priority.LOW)

    # The urgent task waits for its busy source; the slot on its destination stays its own,
    # while a task between other hosts goes ahead.
    assert [t.pk for t in slots.grant_waiting_slots()] == [unrelated.pk]
    running.transition(TaskState.SUCCEEDED)
    assert [t.pk for t in slots.grant_waiting_slots()] == [urgent.pk]
    same_destination.refresh_from_db()
    assert same_destination.slot_granted_at is None


def test_the_global_limit_caps_every_host_together():
    MigrationLimits.objects.update_or_create(pk=1, defaults={"max_outgoing_per_host": 5, "max_incoming_per_host": 5, "max_concurrent": 1})
    first = make_task(state=TaskState.WAITING)
    second = make_task(state=TaskState.WAITING)
    assert [t.pk for t in slots.grant_waiting_slots()] == [first.pk]
    decision, _ = slots.request_slot(second)
    assert not decision.granted and "all 1 migration slots" in decision.blocked_by


def test_checks_name_what_blocks_a_move():
    source, destination = HostFactory(name="src"), HostFactory(name="dst", state=HostState.MAINTENANCE)
    vm = VirtualMachineFactory(host=source, power_state=PowerState.SHUT_OFF, memory_bytes=64 * 1024**3)
    shared = Datastore.objects.create(name="nfs-a", kind="netfs", source_key="nfs://a/x")
    local = Datastore.objects.create(name="local-src", kind="dir", source_key="dir:///var/lib/libvirt/images")
    DatastoreMount.objects.create(datastore=shared, host=source, pool_name="a", active=True)
    DatastoreMount.objects.create(datastore=local, host=source, pool_name="default", active=True)
    VirtualDisk.objects.create(vm=vm, target="vda", source="/var/lib/libvirt/images/a.qcow2", datastore=local)
    prod = Network.objects.create(name="prod")
    NetworkAttachment.objects.create(network=prod, host=source, active=True)
    VirtualNic.objects.create(vm=vm, mac="52:54:00:00:00:01", network=prod, network_name="prod")

    assert checks.check_vm_runs(vm).status == "fail"
    assert checks.check_distinct_hosts(source, source).status == "fail"
    assert "maintenance" in checks.check_destination_open(destination).message
    storage = checks.check_storage_shared(vm, destination)
    assert storage.status == "fail" and "local-src" in storage.message and "dst" in storage.message
    network = checks.check_networks_present(vm, destination)
    assert network.status == "fail" and "prod" in network.message
    memory = checks.check_memory_free(vm, destination, None)
    assert memory.status == "fail" and "64.0 GiB" in memory.message


def test_a_host_that_never_answered_fails_the_connection_check():
    host = HostFactory(last_seen=None, last_error="Failed to connect socket")
    result = checks.check_host_connected(host, "destination")
    assert result.status == "fail" and "Failed to connect socket" in result.message


def test_a_success_with_a_pause_over_the_slo_says_so():
    task = make_task(max_downtime_ms=300, downtime_ms=1278)
    assert "1278 ms exceeded the 300 ms SLO" in _slo_note(task)
    assert _slo_note(make_task(max_downtime_ms=300, downtime_ms=40)) == ""
