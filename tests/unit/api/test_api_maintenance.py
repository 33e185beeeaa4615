"""Maintenance mode through the API, as on the host's page: the plan (nothing moves), entering
(202 with the evacuation), exiting and aborting; a host that does not answer is refused with
the reason. The hosts are libvirt's test driver; the lab moves real guests."""

import pytest

from inventory.choices import HostState
from migrations_app.choices import TaskState
from migrations_app.models import Evacuation, MigrationTask
from tests.api import token_client
from tests.driver_hosts import TEST_GUEST_UUID, driver_host, measured
from tests.factories import VirtualMachineFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cpus_compatible")]
GIB = 1024**3


@pytest.fixture
def kvm1():
    kvm1 = driver_host("kvm1")
    driver_host("kvm2")
    measured(VirtualMachineFactory(name="app-1", host=kvm1, uuid=TEST_GUEST_UUID), seconds_ago=15, dirty_rate_bytes_s=10**6, resident_bytes=GIB)
    VirtualMachineFactory(name="huge", host=kvm1, memory_bytes=128 * GIB)
    return kvm1


@pytest.fixture
def api(administrator):
    return token_client(administrator)


def test_the_plan_places_each_vm_names_the_one_with_nowhere_to_go_and_moves_nothing(api, kvm1):
    response = api.get(f"/api/v1/hosts/{kvm1.pk}/maintenance-plan/")

    body = response.json()
    assert response.status_code == 200 and body["host_name"] == "kvm1"
    moves = {move["vm_name"]: move for move in body["moves"]}
    assert moves["app-1"]["destination_name"] == "kvm2" and moves["app-1"]["reasons"] and moves["app-1"]["predicted_total_ms"] > 0
    assert 15 <= moves["app-1"]["measured_seconds_ago"] <= 20
    assert moves["huge"]["destination"] is None and "the VM needs 128.0 GiB" in moves["huge"]["blocked_by"]
    assert body["predicted_total_ms"] >= moves["app-1"]["predicted_total_ms"]
    assert not Evacuation.objects.exists() and not MigrationTask.objects.exists()


def test_the_plan_without_measuring_places_only_and_a_bad_flag_is_a_400(api, kvm1):
    placed = api.get(f"/api/v1/hosts/{kvm1.pk}/maintenance-plan/", {"measure": "false"}).json()
    bad = api.get(f"/api/v1/hosts/{kvm1.pk}/maintenance-plan/", {"measure": "sometimes"})

    app = next(move for move in placed["moves"] if move["vm_name"] == "app-1")
    assert app["destination_name"] == "kvm2" and app["predicted_total_ms"] is None and app["forecast_error"] == ""
    assert bad.status_code == 400 and "valid boolean" in bad.json()["message"]


def test_entering_is_a_202_with_the_evacuation_and_exiting_returns_the_host(api, administrator, kvm1, no_libvirt_sync):
    entered = api.post(f"/api/v1/hosts/{kvm1.pk}/maintenance/enter/", {"reason": "BIOS update"}, format="json")

    evacuation = Evacuation.objects.get()
    body = entered.json()
    assert entered.status_code == 202 and entered["Location"] == f"/api/v1/evacuations/{evacuation.pk}/"
    assert body["requested_by"] == "administrator" and body["host_name"] == "kvm1"
    assert evacuation.batch.reason == "BIOS update" and evacuation.requested_by == administrator
    kvm1.refresh_from_db()
    assert kvm1.state == HostState.ENTERING_MAINTENANCE
    assert body["state"] == "running" and body["message"] == "Moving the VMs off kvm1."
    assert body["tasks"] == [evacuation.batch.tasks.get(vm__name="app-1").pk]  # "huge" has nowhere to go

    exited = api.post(f"/api/v1/hosts/{kvm1.pk}/maintenance/exit/")

    assert exited.status_code == 200 and exited.json() == {"message": "kvm1 is back in service and takes VMs again.", "host": kvm1.pk, "state": "connected"}


def test_aborting_a_running_evacuation_cancels_its_queued_moves(api, kvm1, no_libvirt_sync):
    kvm1.vms.filter(name="huge").delete()
    evacuation = api.post(f"/api/v1/hosts/{kvm1.pk}/maintenance/enter/", {}, format="json").json()

    aborted = api.post(f"/api/v1/evacuations/{evacuation['id']}/abort/")
    again = api.post(f"/api/v1/evacuations/{evacuation['id']}/abort/")

    assert evacuation["state"] == "running"
    assert aborted.status_code == 200 and "1 queued move cancelled" in aborted.json()["message"]
    assert aborted.json()["evacuation"]["state"] == "aborted"
    assert MigrationTask.objects.get().state == TaskState.CANCELLED
    assert again.status_code == 409 and again.json()["message"] == f"Evacuation #{evacuation['id']} has already aborted."
    listed = api.get("/api/v1/evacuations/", {"state": "aborted"}).json()
    assert [item["id"] for item in listed["results"]] == [evacuation["id"]]


@pytest.mark.parametrize("state, last_error, status, why", [
    (HostState.MAINTENANCE, "", 409, "kvm1 is already in maintenance."),
    (HostState.CONNECTED, "connection refused", 400, "kvm1 does not answer (connection refused): its VMs cannot be moved live."),
])
def test_entering_a_closed_or_silent_host_is_refused_with_the_reason_and_changes_nothing(api, kvm1, state, last_error, status, why):
    kvm1.state, kvm1.last_error = state, last_error
    kvm1.save()

    response = api.post(f"/api/v1/hosts/{kvm1.pk}/maintenance/enter/", {}, format="json")

    assert response.status_code == status and response.json()["message"] == why
    assert not Evacuation.objects.exists() and not MigrationTask.objects.exists()


def test_exiting_a_host_in_service_is_refused(api, kvm1):
    response = api.post(f"/api/v1/hosts/{kvm1.pk}/maintenance/exit/")

    assert response.status_code == 409 and response.json()["message"] == "kvm1 is not in maintenance."


def test_an_operator_may_not_enter_maintenance(operator, kvm1):
    response = token_client(operator).post(f"/api/v1/hosts/{kvm1.pk}/maintenance/enter/", {}, format="json")

    assert response.status_code == 403 and response.json()["message"] == "This needs the Administrator role."
    kvm1.refresh_from_db()
    assert kvm1.state == HostState.CONNECTED and not Evacuation.objects.exists()
