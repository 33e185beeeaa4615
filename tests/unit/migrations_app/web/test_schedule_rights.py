"""Schedules keep their owner's rights: changing a schedule in any way needs the role its action
needs, before and after the change, in the pages and the API; and each run checks its
creator's role again, so a demoted or deactivated creator's schedule fails with that reason."""

from datetime import time, timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from migrations_app.automation import schedules
from migrations_app.choices import ScheduleRunState
from migrations_app.models import MigrationTask, Schedule
from tests.api import token_client
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cpus_compatible")]


@pytest.fixture(autouse=True)
def inventory():
    now = timezone.now()
    kvm1 = HostFactory(name="kvm1", uri="test:///default", last_seen=now, last_error="")
    HostFactory(name="kvm2", uri="test:///default", last_seen=now, last_error="")
    VirtualMachineFactory(name="app-1", host=kvm1)


@pytest.fixture
def evacuation(administrator) -> Schedule:
    return schedules.create(Schedule(
        name="patch kvm1", action="evacuate", host_name="kvm1", recurrence="daily", time_of_day=time(2, 0), created_by=administrator,
    ))


def stored(item: Schedule) -> dict:
    return Schedule.objects.filter(pk=item.pk).values("action", "enabled", "host_name", "vm_names", "name").first()


def into_a_move(item: Schedule) -> dict:
    return {"name": item.name, "action": "move", "vm_names": "app-1", "destination_name": "kvm2", "recurrence": "daily",
            "time_of_day": "03:00", "priority": 2, "max_downtime_ms": 500}


def test_an_operator_cannot_enable_disable_edit_or_delete_an_administrators_evacuation_in_the_pages(client_as, operator, evacuation):
    before = stored(evacuation)
    client = client_as(operator)

    answers = [
        client.post(reverse("schedule-disable", args=[evacuation.pk])).status_code,
        client.post(reverse("schedule-delete", args=[evacuation.pk])).status_code,
        client.get(reverse("schedule-edit", args=[evacuation.pk])).status_code,
        client.post(reverse("schedule-edit", args=[evacuation.pk]), into_a_move(evacuation)).status_code,
    ]
    Schedule.objects.filter(pk=evacuation.pk).update(enabled=False)
    answers.append(client.post(reverse("schedule-enable", args=[evacuation.pk])).status_code)

    assert answers == [403] * 5
    assert stored(evacuation) == {**before, "enabled": False}  # only the test's own update


def test_an_operator_cannot_enable_disable_edit_or_delete_an_administrators_evacuation_through_the_api(operator, evacuation):
    before = stored(evacuation)
    api = token_client(operator)
    url = f"/api/v1/schedules/{evacuation.pk}/"

    answers = [
        api.post(url + "disable/"),
        api.delete(url),
        api.patch(url, {"action": "move", "vm_names": ["app-1"], "destination_name": "kvm2"}, format="json"),
        api.put(url, {"name": "patch kvm1", "action": "move", "vm_names": ["app-1"], "recurrence": "daily", "time_of_day": "02:00"}, format="json"),
    ]
    Schedule.objects.filter(pk=evacuation.pk).update(enabled=False)
    answers.append(api.post(url + "enable/"))

    assert [answer.status_code for answer in answers] == [403] * 5
    assert "Administrator role" in answers[0].json()["message"]
    assert stored(evacuation) == {**before, "enabled": False}


def test_an_operator_cannot_turn_a_move_into_an_evacuation(client_as, operator):
    item = schedules.create(Schedule(name="nightly", vm_names=["app-1"], recurrence="daily", time_of_day=time(2, 0), created_by=operator))

    response = token_client(operator).patch(f"/api/v1/schedules/{item.pk}/", {"action": "evacuate", "host_name": "kvm1"}, format="json")

    assert response.status_code == 403 and "the change makes it evacuate a host" in response.json()["message"]
    assert stored(item)["action"] == "move"


def test_the_evacuations_page_offers_an_operator_no_change(client_as, operator, administrator, evacuation):
    for_operator = client_as(operator).get(reverse("schedule-detail", args=[evacuation.pk])).content.decode()
    for_administrator = client_as(administrator).get(reverse("schedule-detail", args=[evacuation.pk])).content.decode()

    assert reverse("schedule-disable", args=[evacuation.pk]) not in for_operator and "Edit…" not in for_operator
    assert reverse("schedule-disable", args=[evacuation.pk]) in for_administrator and "Edit…" in for_administrator


def test_an_administrator_may_still_change_the_evacuation(client_as, administrator, evacuation):
    client = client_as(administrator)

    assert client.post(reverse("schedule-disable", args=[evacuation.pk])).status_code == 302
    assert token_client(administrator).post(f"/api/v1/schedules/{evacuation.pk}/enable/").status_code == 200
    assert client.post(reverse("schedule-delete", args=[evacuation.pk])).status_code == 302
    assert not Schedule.objects.exists()


def test_an_operator_still_changes_a_move_schedule(client_as, operator, administrator):
    item = schedules.create(Schedule(name="nightly", vm_names=["app-1"], recurrence="daily", time_of_day=time(2, 0), created_by=administrator))

    assert client_as(operator).post(reverse("schedule-disable", args=[item.pk])).status_code == 302
    assert not stored(item)["enabled"]


def due(item: Schedule) -> None:
    Schedule.objects.filter(pk=item.pk).update(next_run_at=timezone.now() - timedelta(seconds=5))


def test_a_run_whose_creator_was_demoted_fails_with_that_reason(client_as, administrator, evacuation):
    administrator.groups.set([Group.objects.get(name="Operator")])
    due(evacuation)

    [run] = schedules.fire_due()

    assert run.state == ScheduleRunState.FAILED
    assert run.result == "Not run: administrator, who created this schedule, no longer has the Administrator role it needs."
    assert run.evacuation is None and not MigrationTask.objects.exists()
    assert run.result in client_as(administrator).get(reverse("schedule-detail", args=[evacuation.pk])).content.decode()


def test_a_run_whose_creator_was_deactivated_fails_with_that_reason(operator):
    item = schedules.create(Schedule(name="nightly", vm_names=["app-1"], destination_name="kvm2", recurrence="daily", time_of_day=time(2, 0), created_by=operator))
    operator.is_active = False
    operator.save()
    due(item)

    [run] = schedules.fire_due()

    assert run.state == ScheduleRunState.FAILED and run.result == "Not run: operator, who created this schedule, is deactivated."
    assert not MigrationTask.objects.exists()


def test_a_run_whose_creator_was_deleted_fails(operator):
    item = schedules.create(Schedule(name="nightly", vm_names=["app-1"], destination_name="kvm2", recurrence="daily", time_of_day=time(2, 0), created_by=operator))
    operator.delete()
    due(item)

    [run] = schedules.fire_due()

    assert run.state == ScheduleRunState.FAILED and "no longer exists" in run.result
