"""Maintenance mode's decisions against the database: the plan, entering, retries, stops,
abort and exit. The hosts' libvirt is the test driver; the lab tests move real guests."""

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from inventory.choices import HostState, PowerState
from migrations_app.placement import store as assistant
from migrations_app.automation import maintenance
from migrations_app.automation import evacuation as evacuation_steps
from migrations_app.choices import EvacuationState, Priority, TaskState
from migrations_app.errors import MigrationRequestError
from migrations_app.models import Evacuation, MigrationTask
from migrations_app.options import MigrationOptions
from tests.driver_hosts import TEST_GUEST_UUID, driver_host, measured
from tests.factories import VirtualMachineFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cpus_compatible")]
GIB = 1024**3


@pytest.fixture
def hosts():
    return driver_host("kvm1"), driver_host("kvm2", memory_free_bytes=8 * GIB), driver_host("kvm3", memory_free_bytes=8 * GIB)


def test_the_plan_spreads_the_vms_forecasts_them_from_the_inventory_and_names_the_one_with_nowhere_to_go(hosts, libvirt_forbidden, no_inventory_worker):
    kvm1, kvm2, kvm3 = hosts
    measured(VirtualMachineFactory(name="app-1", host=kvm1, uuid=TEST_GUEST_UUID, memory_bytes=4 * GIB), seconds_ago=30, dirty_rate_bytes_s=10**6, resident_bytes=GIB)
    VirtualMachineFactory(name="app-2", host=kvm1, memory_bytes=4 * GIB)
    VirtualMachineFactory(name="huge", host=kvm1, memory_bytes=32 * GIB)
    VirtualMachineFactory(name="off", host=kvm1, power_state=PowerState.SHUT_OFF)

    plan = maintenance.plan(kvm1)

    placed = {item.vm.name: item.destination.name for item in plan.placed}
    assert sorted(placed) == ["app-1", "app-2"] and sorted(placed.values()) == ["kvm2", "kvm3"]
    assert [item.vm.name for item in plan.unplaceable] == ["huge"]
    assert "the VM needs 32.0 GiB" in plan.unplaceable[0].move.blocked_reason
    assert plan.moves[0].forecast.forecast.prediction.total_ms > 0 and re.fullmatch(r"measured 3\d s ago", plan.moves[0].forecast.forecast.measured_ago)
    assert plan.moves[1].forecast.error == "Not measured yet: no inventory worker is running."
    assert plan.predicted_total_ms is None  # app-2 has not been measured: no total is claimed
    assert libvirt_forbidden == []


def test_entering_closes_the_host_and_submits_one_batch_that_the_assistant_respects(hosts, no_libvirt_sync):
    kvm1, kvm2, kvm3 = hosts
    for name in ("app-1", "app-2"):
        VirtualMachineFactory(name=name, host=kvm1, memory_bytes=2 * GIB)

    evacuation = maintenance.enter(kvm1)

    kvm1.refresh_from_db()
    assert kvm1.state == HostState.ENTERING_MAINTENANCE and evacuation.state == EvacuationState.RUNNING
    assert sorted(evacuation.batch.tasks.values_list("vm__name", flat=True)) == ["app-1", "app-2"]
    elsewhere = VirtualMachineFactory(name="web", host=kvm2)
    blocked = next(p for p in assistant.recommend(elsewhere) if p.host.name == "kvm1")
    assert blocked.blocked_by.message == "kvm1 is entering maintenance: it takes no new VMs."


@pytest.mark.parametrize("state, last_error, why", [
    (HostState.MAINTENANCE, "", "already in maintenance"),
    (HostState.CONNECTED, "connection refused", "does not answer"),
])
def test_entering_a_closed_or_silent_host_is_refused_and_changes_nothing(hosts, state, last_error, why):
    kvm1 = hosts[0]
    kvm1.state, kvm1.last_error = state, last_error
    kvm1.save()
    VirtualMachineFactory(host=kvm1)

    with pytest.raises(MigrationRequestError, match=why):
        maintenance.enter(kvm1)

    assert not Evacuation.objects.exists() and not MigrationTask.objects.exists()


def test_once_every_vm_has_left_the_host_is_in_maintenance(hosts, no_libvirt_sync):
    kvm1, kvm2, _ = hosts
    vm = VirtualMachineFactory(name="app-1", host=kvm1)
    evacuation = maintenance.enter(kvm1)
    task = evacuation.batch.tasks.get()
    task.transition(TaskState.CHECKING)
    task.transition(TaskState.MIGRATING)
    task.transition(TaskState.SUCCEEDED, "moved")
    vm.host = task.destination  # what the inventory reads after the move
    vm.save()

    evacuation_steps.advance(evacuation)

    kvm1.refresh_from_db()
    evacuation.refresh_from_db()
    assert kvm1.state == HostState.MAINTENANCE
    assert evacuation.state == EvacuationState.COMPLETED and "1 moved" in evacuation.message


def test_a_failed_move_is_retried_after_a_growing_wait_and_stops_after_the_last_attempt(hosts, no_libvirt_sync):
    kvm1 = hosts[0]
    VirtualMachineFactory(name="app-1", host=kvm1)
    evacuation = maintenance.enter(kvm1)

    for attempt in range(1, maintenance.MAX_ATTEMPTS + 1):
        task = evacuation.batch.tasks.order_by("-pk").first()
        task.transition(TaskState.FAILED, error=f"app-1 still runs on kvm1: failure {attempt}.")
        evacuation_steps.advance(evacuation)
        assert evacuation.batch.tasks.count() == attempt  # the wait has not passed yet
        MigrationTask.objects.filter(pk=task.pk).update(finished_at=timezone.now() - timedelta(minutes=10))
        evacuation_steps.advance(evacuation)

    evacuation.refresh_from_db()
    kvm1.refresh_from_db()
    assert evacuation.batch.tasks.count() == maintenance.MAX_ATTEMPTS
    assert evacuation.state == EvacuationState.STOPPED
    assert f"app-1 could not move after {maintenance.MAX_ATTEMPTS} attempts: app-1 still runs on kvm1: failure 3" in evacuation.message
    assert kvm1.state == HostState.ENTERING_MAINTENANCE


EVACUATION_OPTIONS = MigrationOptions(
    priority=Priority.HIGH, max_downtime_ms=1500, bandwidth_mib_s=200, allow_post_copy=True, allow_auto_converge=False, reason="BIOS update",
)


def test_a_retried_move_keeps_the_evacuations_options(hosts, no_libvirt_sync):
    kvm1 = hosts[0]
    VirtualMachineFactory(name="app-1", host=kvm1)
    evacuation = maintenance.enter(kvm1, options=EVACUATION_OPTIONS)
    first = evacuation.batch.tasks.get()
    first.transition(TaskState.FAILED, error="app-1 still runs on kvm1.")
    MigrationTask.objects.filter(pk=first.pk).update(finished_at=timezone.now() - timedelta(minutes=10))

    evacuation_steps.advance(evacuation)

    first, second = evacuation.batch.tasks.order_by("pk")
    assert second.options() == first.options() == EVACUATION_OPTIONS
    assert "Attempt 2 of 3 to move app-1 off kvm1." in second.events.last().message


def test_a_move_that_could_not_be_submitted_at_entry_is_planned_again_with_the_evacuations_options(hosts, no_libvirt_sync, monkeypatch):
    kvm1 = hosts[0]
    VirtualMachineFactory(name="app-1", host=kvm1)
    submit, calls = maintenance.submit_migration, []

    def refused_once(*args, **kwargs):
        calls.append(args[0].name)
        if len(calls) == 1:
            raise MigrationRequestError("app-1 cannot move to kvm2: the destination did not answer.")
        return submit(*args, **kwargs)

    monkeypatch.setattr(maintenance, "submit_migration", refused_once)

    evacuation = maintenance.enter(kvm1, options=EVACUATION_OPTIONS)

    assert calls == ["app-1", "app-1"] and evacuation.batch.tasks.get().options() == EVACUATION_OPTIONS


def test_a_vm_with_nowhere_to_go_stops_the_evacuation_with_the_reason(hosts, no_libvirt_sync):
    kvm1 = hosts[0]
    VirtualMachineFactory(name="huge", host=kvm1, memory_bytes=32 * GIB)

    evacuation = maintenance.enter(kvm1)

    evacuation.refresh_from_db()
    assert evacuation.state == EvacuationState.STOPPED
    assert evacuation.message.startswith("Stopped: Nowhere to go for huge:")
    assert "kvm1 stays entering maintenance" in evacuation.message


def test_abort_cancels_the_queued_moves_and_exit_returns_the_host_to_service(hosts, no_libvirt_sync, administrator):
    kvm1 = hosts[0]
    VirtualMachineFactory(name="app-1", host=kvm1)
    evacuation = maintenance.enter(kvm1)

    message = maintenance.abort(evacuation, actor=administrator)

    assert evacuation.state == EvacuationState.ABORTED and "1 queued move cancelled" in message
    assert evacuation.batch.tasks.get().state == TaskState.CANCELLED
    kvm1.refresh_from_db()
    assert kvm1.state == HostState.ENTERING_MAINTENANCE
    maintenance.exit_maintenance(kvm1, actor=administrator)
    kvm1.refresh_from_db()
    assert kvm1.state == HostState.CONNECTED


def test_an_administrator_sees_the_plan_confirms_and_follows_the_evacuation(client_as, administrator, hosts, no_libvirt_sync, libvirt_forbidden):
    kvm1 = hosts[0]
    measured(VirtualMachineFactory(name="app-1", host=kvm1, uuid=TEST_GUEST_UUID), seconds_ago=8, dirty_rate_bytes_s=10**6, resident_bytes=GIB)
    client = client_as(administrator)

    page = client.get(reverse("maintenance-plan", args=[kvm1.pk])).content.decode()
    assert 'data-testid="planned-destination"' in page and "The whole evacuation: about" in page
    assert re.search(r'ms pause <span class="muted" data-testid="measured-ago">\(measured (8|9|1\d) s ago\)</span>', page)
    assert not Evacuation.objects.exists()

    response = client.post(reverse("maintenance-plan", args=[kvm1.pk]), {"predicted_total_ms": "9000"})
    evacuation = Evacuation.objects.get()
    assert response["Location"] == evacuation.get_absolute_url() and evacuation.predicted_total_ms == 9000
    page = client.get(evacuation.get_absolute_url()).content.decode()
    assert "Evacuating" in page and "app-1" in page and 'hx-trigger="every 1s"' in page
    assert "Exit maintenance" in client.get(kvm1.get_absolute_url()).content.decode()
    assert libvirt_forbidden == []


def test_the_cli_plans_enters_and_exits_with_json_lines(hosts, no_libvirt_sync, administrator):
    kvm1 = hosts[0]
    measured(VirtualMachineFactory(name="app-1", host=kvm1, uuid=TEST_GUEST_UUID), seconds_ago=5, dirty_rate_bytes_s=10**6, resident_bytes=GIB)
    out = StringIO()

    call_command("vmotion", "maintenance", "plan", "kvm1", "--json", stdout=out)
    plan = json.loads(out.getvalue().strip().splitlines()[-1])
    assert plan["host"] == "kvm1" and plan["moves"][0]["vm"] == "app-1" and plan["moves"][0]["destination"] in ("kvm2", "kvm3")
    assert plan["predicted_total_ms"] > 0

    out = StringIO()
    call_command("vmotion", "maintenance", "enter", "kvm1", "--user", "administrator", "--json", stdout=out)
    entered = json.loads(out.getvalue().strip().splitlines()[-1])
    assert entered["state"] == "running" and Evacuation.objects.get().requested_by == administrator

    out = StringIO()
    call_command("vmotion", "maintenance", "exit", "kvm1", "--json", stdout=out)
    assert json.loads(out.getvalue().strip().splitlines()[-1]) == {"host": "kvm1", "state": "connected"}
    assert Evacuation.objects.get().state == EvacuationState.ABORTED


def test_the_cli_refuses_an_operator_and_an_unknown_host(hosts, operator):
    with pytest.raises(CommandError, match="does not have the Administrator role"):
        call_command("vmotion", "maintenance", "enter", "kvm1", "--user", "operator", stdout=StringIO())
    with pytest.raises(CommandError, match="No host named 'kvm9'"):
        call_command("vmotion", "maintenance", "plan", "kvm9", stdout=StringIO())
    assert not Evacuation.objects.exists()


def test_a_vm_found_on_the_host_after_entry_moves_with_the_evacuations_options(hosts, no_libvirt_sync):
    kvm1 = hosts[0]
    evacuation = maintenance.enter(kvm1, options=EVACUATION_OPTIONS)
    assert not evacuation.batch.tasks.exists()
    # Started behind vmotion's back (virsh start on the host) before the evacuation ended.
    VirtualMachineFactory(name="late", host=kvm1)

    maintenance.settle(Evacuation.objects.get(pk=evacuation.pk))

    assert evacuation.batch.tasks.get().options() == EVACUATION_OPTIONS
