"""Schedules through the API, validated by `migrations_app.automation.schedules` as on the pages: times
read in the schedule's time zone (the user's by default), bad input refused with nothing
saved, an evacuation schedule only for an Administrator; edit, enable, disable, delete."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from inventory.models import Host
from migrations_app.models import Schedule
from tests.api import token_client
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def inventory():
    VirtualMachineFactory(name="app-1", host=HostFactory(name="kvm1"))
    HostFactory(name="kvm2")


def nightly(**changes) -> dict:
    return {"name": "nightly", "vm_names": ["app-1"], "destination_name": "kvm2", "recurrence": "daily", "time_of_day": "02:00", **changes}


def test_a_schedule_is_created_in_the_users_time_zone_and_stored_in_utc(client_as, operator):
    client_as(operator).post(reverse("preferences"), {"time_zone": "Europe/Paris"})

    response = token_client(operator).post("/api/v1/schedules/", nightly(recurrence="once", run_at="2027-01-15T02:00", time_of_day=None), format="json")

    body = response.json()
    created = Schedule.objects.get()
    assert response.status_code == 201 and response["Location"] == f"/api/v1/schedules/{created.pk}/"
    assert created.time_zone == "Europe/Paris" and created.next_run_at == datetime(2027, 1, 15, 1, 0, tzinfo=UTC)
    assert created.created_by == operator and body["created_by"] == "operator" and body["enabled"] is True
    assert body["description"] == "once at 2027-01-15 02:00 (Europe/Paris)" and body["runs"] == []


def test_a_time_with_an_offset_is_taken_as_given_and_a_zone_can_be_named(api):
    response = api.post("/api/v1/schedules/", nightly(recurrence="once", run_at="2027-01-15T02:00:00+05:00", time_zone="America/New_York"), format="json")

    created = Schedule.objects.get()
    assert response.status_code == 201 and created.next_run_at == datetime(2027, 1, 14, 21, 0, tzinfo=UTC)
    assert response.json()["description"] == "once at 2027-01-14 16:00 (America/New_York)"
    assert response.json()["time_of_day"] == "02:00:00"


def test_an_offset_the_database_would_not_take_is_stored_in_utc(api):
    response = api.post("/api/v1/schedules/", nightly(recurrence="once", run_at="2027-01-15T23:30:00+23:01"), format="json")

    assert response.status_code == 201 and Schedule.objects.get().next_run_at == datetime(2027, 1, 15, 0, 29, tzinfo=UTC)


@pytest.mark.parametrize("changes, field, why", [
    ({"recurrence": "cron", "cron": "0 25 * * *"}, None, "is not a valid cron expression"),
    ({"vm_names": ["ghost"]}, None, "No VM named ghost in the inventory."),
    ({"destination_name": "kvm9"}, None, "No host named 'kvm9'."),
    ({"vm_names": []}, None, "Name at least one VM to move."),
    ({"recurrence": "once", "run_at": "2020-01-01T00:00:00Z"}, None, "is in the past"),
    ({"recurrence": "weekly", "weekday": None}, None, "A weekly schedule needs a day of the week."),
    ({"time_zone": "Mars/Olympus"}, "time_zone", "Unknown time zone 'Mars/Olympus'."),
    ({"recurrence": "once", "run_at": "9999-12-31T23:00:00-05:00"}, "run_at", "out of range"),
    ({"weekday": 7}, "weekday", "less than or equal to 6"),
    ({"window_minutes": 10**12}, "window_minutes", "less than or equal to 10080"),
    ({"vm_names": "app-1"}, "vm_names", "Expected a list"),
    ({"name": ""}, "name", "may not be blank"),
])
def test_bad_input_is_a_400_with_the_reason_and_saves_nothing(api, changes, field, why):
    response = api.post("/api/v1/schedules/", nightly(**changes), format="json")

    body = response.json()
    assert response.status_code == 400, body
    assert why in (" ".join(body["errors"][field]) if field else body["message"])
    assert not Schedule.objects.exists()


def test_an_evacuation_schedule_needs_an_administrator(api, administrator):
    evacuation = {"name": "drain kvm1", "action": "evacuate", "host_name": "kvm1", "recurrence": "daily", "time_of_day": "03:00"}

    refused = api.post("/api/v1/schedules/", evacuation, format="json")
    accepted = token_client(administrator).post("/api/v1/schedules/", evacuation, format="json")

    assert refused.status_code == 403 and refused.json()["message"] == "Only a user with the Administrator role may schedule this."
    assert accepted.status_code == 201 and Schedule.objects.get().host_name == "kvm1"
    edited = api.patch(f"/api/v1/schedules/{accepted.json()['id']}/", {"time_of_day": "04:00"}, format="json")
    assert edited.status_code == 403 and "Administrator role may change this schedule" in edited.json()["message"]


def test_a_schedule_is_edited_whole_or_in_part_and_its_next_run_follows(api):
    created = api.post("/api/v1/schedules/", nightly(time_zone="UTC"), format="json").json()

    patched = api.patch(f"/api/v1/schedules/{created['id']}/", {"time_of_day": "05:30", "priority": "low"}, format="json")
    replaced = api.put(f"/api/v1/schedules/{created['id']}/", nightly(name="weekly", recurrence="weekly", weekday=6, time_of_day="01:00"), format="json")
    refused = api.patch(f"/api/v1/schedules/{created['id']}/", {"cron": "nonsense", "recurrence": "cron"}, format="json")

    assert patched.status_code == 200 and patched.json()["description"] == "daily at 05:30 (UTC)" and patched.json()["priority"] == "low"
    assert replaced.status_code == 200 and replaced.json()["description"] == "every Sunday at 01:00 (UTC)"
    assert replaced.json()["priority"] == "normal" and replaced.json()["next_run_at"] != patched.json()["next_run_at"]
    assert refused.status_code == 400
    assert Schedule.objects.get().recurrence == "weekly"


def test_disable_enable_and_delete(api):
    created = api.post("/api/v1/schedules/", nightly(), format="json").json()

    disabled = api.post(f"/api/v1/schedules/{created['id']}/disable/")
    listed = api.get("/api/v1/schedules/", {"enabled": "false"}).json()
    enabled = api.post(f"/api/v1/schedules/{created['id']}/enable/")
    deleted = api.delete(f"/api/v1/schedules/{created['id']}/")

    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    assert [item["id"] for item in listed["results"]] == [created["id"]]
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True and enabled.json()["next_run_at"]
    assert deleted.status_code == 204 and not Schedule.objects.exists()
    assert api.get(f"/api/v1/schedules/{created['id']}/").status_code == 404


def test_a_viewer_reads_schedules_but_may_not_make_one(viewer, api):
    api.post("/api/v1/schedules/", nightly(), format="json")
    client = token_client(viewer)

    assert client.get("/api/v1/schedules/").json()["count"] == 1
    assert client.post("/api/v1/schedules/", nightly(name="other"), format="json").status_code == 403
    assert Schedule.objects.count() == 1


def test_a_schedule_that_allows_post_copy_between_hosts_whose_libvirt_cannot_resume_it_carries_the_warning(api):
    Host.objects.filter(name__in=["kvm1", "kvm2"]).update(libvirt_version="11.3.0")

    created = api.post("/api/v1/schedules/", nightly(allow_post_copy=True), format="json")
    without = api.post("/api/v1/schedules/", nightly(name="no post-copy"), format="json")
    read = api.get(created["Location"]).json()
    Host.objects.filter(name__in=["kvm1", "kvm2"]).update(libvirt_version="11.4.0")
    resumable = api.get(created["Location"]).json()

    assert created.status_code == 201, created.json()
    [warning] = created.json()["warnings"]
    assert warning.startswith("A broken link during the post-copy phase loses the running guest on this libvirt (libvirt 11.3.0)")
    assert read["warnings"] == [warning]
    assert without.json()["warnings"] == [] and resumable["warnings"] == []
