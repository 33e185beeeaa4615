"""Task pages: viewers read, operators cancel and force-complete, everyone else is refused."""

import pytest
from django.urls import reverse

from migrations_app.choices import TaskState
from migrations_app.models import MigrationTask
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def task():
    vm = VirtualMachineFactory(name="web-01")
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=HostFactory(name="kvm9"))
    task.transition(TaskState.CHECKING)
    task.transition(TaskState.WAITING, "Waiting for a slot, position 1.")
    return task


def test_anonymous_users_are_sent_to_login(client, task):
    for url in (reverse("task-list"), reverse("task-detail", args=[task.pk])):
        assert "/login/" in client.get(url)["Location"]


def test_a_viewer_reads_the_task_and_its_timeline_but_cannot_cancel(client_as, viewer, task):
    client = client_as(viewer)
    assert "web-01" in client.get(reverse("task-list")).content.decode()
    page = client.get(reverse("task-detail", args=[task.pk])).content.decode()
    assert "Waiting for a slot, position 1." in page and "Cancel</button>" not in page
    assert client.post(reverse("task-cancel", args=[task.pk])).status_code == 403
    task.refresh_from_db()
    assert task.state == TaskState.WAITING


def test_an_operator_cancels_a_waiting_task_and_it_never_starts(client_as, operator, task):
    response = client_as(operator).post(reverse("task-cancel", args=[task.pk]), follow=True)
    task.refresh_from_db()
    assert task.state == TaskState.CANCELLED
    assert "it never started" in response.content.decode()
    assert task.events.last().actor == operator


def test_force_complete_of_a_task_that_is_not_migrating_explains_why_not(client_as, operator, task):
    response = client_as(operator).post(reverse("task-force-complete", args=[task.pk]), follow=True)
    assert "Only a migrating task can be forced to complete" in response.content.decode()
    task.refresh_from_db()
    assert not task.force_complete_requested


def test_a_final_task_stops_polling(client_as, viewer, task):
    task.transition(TaskState.CANCELLED)
    fragment = client_as(viewer).get(reverse("task-detail", args=[task.pk]), headers={"HX-Request": "true"}).content.decode()
    assert 'id="task-progress"' in fragment and "hx-trigger" not in fragment


def test_only_operators_reach_the_migrate_form(client_as, viewer, operator, task):
    url = reverse("vm-migrate", args=[task.vm.pk])
    assert client_as(viewer).get(url).status_code == 403
    page = client_as(operator).get(url).content.decode()
    assert "kvm9" in page and "Run the checks" in page


def test_a_migration_the_checks_refuse_creates_no_task(client_as, operator):
    vm = VirtualMachineFactory(name="db-01")
    other = HostFactory(name="kvm2")
    response = client_as(operator).post(reverse("vm-migrate", args=[vm.pk]), {"destination": other.pk, "priority": 2, "max_downtime_ms": 300, "migrate": "1"})
    body = response.content.decode()
    assert response.status_code == 200 and "cannot move to kvm2" in body and "not reachable" in body
    assert not MigrationTask.objects.filter(vm=vm).exists()
