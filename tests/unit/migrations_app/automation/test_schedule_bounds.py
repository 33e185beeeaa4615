"""Schedules within bounds: at most 50 VMs a schedule, in the form as in the API, and no cron
expression whose runs come closer than SCHEDULE_MIN_INTERVAL_MINUTES, refused with the gap."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from migrations_app.models import Schedule
from migrations_app.automation.recurrence import Recurrence
from tests.api import token_client
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def inventory():
    host = HostFactory(name="kvm1")
    for n in range(51):
        VirtualMachineFactory(name=f"app-{n}", host=host)


def form(**changes) -> dict:
    return {"name": "nightly", "action": "move", "vm_names": "app-1", "recurrence": "cron", "cron": "0 2 * * *",
            "priority": "2", "max_downtime_ms": "300", **changes}


def api_body(**changes) -> dict:
    return {"name": "nightly", "vm_names": ["app-1"], "recurrence": "cron", "cron": "0 2 * * *", **changes}


def test_the_form_takes_50_vms_and_refuses_51(client_as, operator):
    client = client_as(operator)
    names = [f"app-{n}" for n in range(51)]

    refused = client.post(reverse("schedule-new"), form(vm_names=", ".join(names)))
    accepted = client.post(reverse("schedule-new"), form(vm_names=" ".join(names[:50])))

    assert refused.status_code == 400 and "A schedule moves at most 50 VMs; you named 51." in refused.content.decode()
    assert accepted.status_code == 302 and len(Schedule.objects.get().vm_names) == 50


def test_the_api_refuses_51_vms_too(operator):
    response = token_client(operator).post("/api/v1/schedules/", api_body(vm_names=[f"app-{n}" for n in range(51)]), format="json")

    assert response.status_code == 400 and not Schedule.objects.exists()


@pytest.mark.parametrize("cron, gap", [("* * * * *", "1 minute"), ("*/4 * * * *", "4 minutes"), ("0,2 9 * * *", "2 minutes"), ("59 23 * * *", None)])
def test_a_cron_firing_too_often_is_refused_in_the_form_with_the_gap(client_as, operator, cron, gap):
    response = client_as(operator).post(reverse("schedule-new"), form(cron=cron))

    if gap is None:
        assert response.status_code == 302
        return
    assert response.status_code == 400
    assert f"runs {gap} apart at times; a schedule runs at most every 5 minutes" in response.content.decode()
    assert not Schedule.objects.exists()


def test_a_cron_firing_too_often_is_refused_in_the_api_and_the_minimum_is_a_setting(operator, settings):
    api = token_client(operator)

    refused = api.post("/api/v1/schedules/", api_body(cron="*/2 * * * *"), format="json")
    settings.SCHEDULE_MIN_INTERVAL_MINUTES = 1
    accepted = api.post("/api/v1/schedules/", api_body(cron="*/2 * * * *"), format="json")

    assert refused.status_code == 400 and "runs 2 minutes apart at times; a schedule runs at most every 5 minutes" in refused.json()["message"]
    assert accepted.status_code == 201


def test_an_edit_into_a_too_frequent_cron_is_refused(operator):
    api = token_client(operator)
    created = api.post("/api/v1/schedules/", api_body(), format="json").json()

    response = api.patch(f"/api/v1/schedules/{created['id']}/", {"cron": "*/3 * * * *"}, format="json")

    assert response.status_code == 400 and Schedule.objects.get().cron == "0 2 * * *"


NOW = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize("cron, shortest", [
    ("*/5 * * * *", None),
    ("0 2 * * 1-5", None),
    ("0,59 0,23 * * *", timedelta(minutes=1)),  # 23:59, then 00:00 the next day
    ("0,59 0,23 1,15 * *", None),  # only across midnight, between days that never follow each other
    ("0,59 0,23 31,1 * *", timedelta(minutes=1)),  # the 31st, then the 1st
    ("* * 29 2 *", timedelta(minutes=1)),  # every minute of a leap day, over a year away
])
def test_the_shortest_gap_between_runs(cron, shortest):
    assert Recurrence("cron", "Europe/Paris", cron=cron).fires_within(timedelta(minutes=5), NOW) == shortest
