"""Schedules in the browser's terms: entered and shown in each operator's own time zone."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from migrations_app.models import Schedule
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def paris_operator(client_as, operator):
    client = client_as(operator)
    response = client.post(reverse("preferences"), {"time_zone": "Europe/Paris"})
    assert response.status_code == 302
    return client


def test_a_schedule_is_entered_and_shown_in_the_operators_time_zone_and_stored_in_utc(paris_operator):
    VirtualMachineFactory(name="app-1", host=HostFactory(name="kvm1"))

    response = paris_operator.post(reverse("schedule-new"), {
        "name": "firmware", "action": "move", "vm_names": "app-1", "recurrence": "once", "run_at": "2027-01-15T02:00",
        "priority": "2", "max_downtime_ms": "300",
    })

    created = Schedule.objects.get()
    assert response["Location"] == created.get_absolute_url()
    assert created.next_run_at == datetime(2027, 1, 15, 1, 0, tzinfo=UTC) and created.time_zone == "Europe/Paris"
    page = paris_operator.get(reverse("schedule-list")).content.decode()
    assert "2027-01-15 02:00 CET" in page and "Europe/Paris" in page


def test_a_bad_cron_expression_comes_back_with_the_error_and_creates_nothing(paris_operator):
    VirtualMachineFactory(name="app-1")

    response = paris_operator.post(reverse("schedule-new"), {
        "name": "bad", "action": "move", "vm_names": "app-1", "recurrence": "cron", "cron": "0 25 * * *",
        "priority": "2", "max_downtime_ms": "300",
    })

    assert response.status_code == 400 and "is not a valid cron expression" in response.content.decode()
    assert not Schedule.objects.exists()


def test_disable_enable_and_delete_from_the_schedule_page(client_as, operator):
    VirtualMachineFactory(name="app-1")
    item = Schedule.objects.create(name="nightly", vm_names=["app-1"], recurrence="daily", time_of_day="02:00", created_by=operator)
    client = client_as(operator)

    client.post(reverse("schedule-disable", args=[item.pk]))
    assert not Schedule.objects.get().enabled
    client.post(reverse("schedule-enable", args=[item.pk]))
    assert Schedule.objects.get().enabled and Schedule.objects.get().next_run_at is not None
    client.post(reverse("schedule-delete", args=[item.pk]))
    assert not Schedule.objects.exists()


def test_an_edit_moves_the_next_run_and_bad_values_change_nothing(paris_operator, operator):
    VirtualMachineFactory(name="app-1")
    item = Schedule.objects.create(name="nightly", vm_names=["app-1"], recurrence="daily", time_of_day="02:00",
                                   time_zone="Europe/Paris", created_by=operator)
    form = {"name": "nightly", "action": "move", "vm_names": "app-1", "recurrence": "daily", "time_of_day": "03:30",
            "priority": "2", "max_downtime_ms": "300"}

    assert "02:00" in paris_operator.get(reverse("schedule-edit", args=[item.pk])).content.decode()
    refused = paris_operator.post(reverse("schedule-edit", args=[item.pk]), {**form, "vm_names": "ghost"})
    assert refused.status_code == 400 and "No VM named ghost" in refused.content.decode()
    assert Schedule.objects.get().vm_names == ["app-1"]

    paris_operator.post(reverse("schedule-edit", args=[item.pk]), form)

    edited = Schedule.objects.get()
    assert edited.time_of_day.strftime("%H:%M") == "03:30"
    assert edited.next_run_at.astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M") == "03:30"


def test_a_schedule_allowing_post_copy_warns_on_its_page_of_hosts_whose_libvirt_cannot_resume_it(paris_operator):
    VirtualMachineFactory(name="app-1", host=HostFactory(name="kvm1", libvirt_version="11.3.0"))
    HostFactory(name="kvm2", libvirt_version="11.4.0")
    fields = {
        "name": "firmware", "action": "move", "vm_names": "app-1", "destination_name": "kvm2", "recurrence": "once",
        "run_at": "2027-01-15T02:00", "priority": "2", "max_downtime_ms": "300",
    }

    allowed = paris_operator.post(reverse("schedule-new"), {**fields, "allow_post_copy": "on"}, follow=True).content.decode()
    not_allowed = paris_operator.post(reverse("schedule-new"), {**fields, "name": "plain"}, follow=True).content.decode()

    assert 'data-testid="post-copy-warning"' in allowed
    assert "Post-copy allowed: A broken link during the post-copy phase loses the running guest on this libvirt (libvirt 11.3.0)" in allowed
    assert "kvm1 runs libvirt 11.3.0, whose daemon crashes" in allowed and "kvm2 runs" not in allowed
    assert "post-copy-warning" not in not_allowed
