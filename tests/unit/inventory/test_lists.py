"""The VM list and the task history: search, filters and pages, in a bounded number of queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inventory.choices import PowerState
from migrations_app.choices import TaskState
from migrations_app.models import MigrationTask
from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def inventory():
    prod, lab = ClusterFactory(name="prod"), ClusterFactory(name="lab")
    kvm1, kvm2 = HostFactory(name="kvm1", cluster=prod), HostFactory(name="kvm2", cluster=lab)
    for index in range(60):
        VirtualMachineFactory(name=f"web-{index:02}", host=kvm1)
    VirtualMachineFactory(name="db-01", host=kvm2, power_state=PowerState.SHUT_OFF)
    return kvm1, kvm2


def vm_names(html: str) -> list[str]:
    return [part.split('"')[0] for part in html.split('data-vm="')[1:]]


def test_the_vm_list_shows_a_page_at_a_time_in_a_bounded_number_of_queries(client_as, viewer, inventory, django_assert_max_num_queries):
    client = client_as(viewer)

    with django_assert_max_num_queries(8):
        first = client.get(reverse("vm-list")).content.decode()
    second = client.get(reverse("vm-list"), {"page": 2}).content.decode()

    assert vm_names(first)[:2] == ["db-01", "web-00"] and len(vm_names(first)) == 50
    assert vm_names(second) == [f"web-{index:02}" for index in range(49, 60)]
    assert "Page 2 of 2 · 61 in all" in second


def test_the_vm_list_searches_and_filters_by_host_state_and_cluster(client_as, viewer, inventory):
    _, kvm2 = inventory
    client = client_as(viewer)

    assert vm_names(client.get(reverse("vm-list"), {"q": "web-1"}).content.decode()) == [f"web-{i}" for i in range(10, 20)]
    assert vm_names(client.get(reverse("vm-list"), {"host": "kvm2"}).content.decode()) == ["db-01"]
    assert vm_names(client.get(reverse("vm-list"), {"state": "shut_off"}).content.decode()) == ["db-01"]
    assert vm_names(client.get(reverse("vm-list"), {"cluster": kvm2.cluster_id}).content.decode()) == ["db-01"]
    assert "No VM matches these filters." in client.get(reverse("vm-list"), {"q": "nothing"}).content.decode()


def test_a_bad_filter_value_is_shown_next_to_its_field(client_as, viewer, inventory):
    page = client_as(viewer).get(reverse("vm-list"), {"state": "exploded"}).content.decode()

    assert "Select a valid choice" in page


def test_the_htmx_refresh_keeps_the_filters_and_the_page(client_as, viewer, inventory):
    fragment = client_as(viewer).get(reverse("vm-list"), {"host": "kvm1", "page": 2}, HTTP_HX_REQUEST="true").content.decode()

    assert 'hx-get="/vms/?host=kvm1&amp;page=2"' in fragment and "<h1>" not in fragment


@pytest.fixture
def history(inventory, operator):
    kvm1, kvm2 = inventory
    vms = {vm.name: vm for vm in kvm1.vms.all()[:3]}
    tasks = []
    for name, vm in vms.items():
        task = MigrationTask.objects.create(vm=vm, source=kvm1, destination=kvm2, requested_by=operator if name == "web-00" else None)
        task.transition(TaskState.FAILED if name == "web-01" else TaskState.CANCELLED, error="no slot" if name == "web-01" else "")
        tasks.append(task)
    return tasks


def task_ids(html: str) -> list[int]:
    return [int(part.split('"')[0]) for part in html.split('data-task="')[1:]]


def test_the_task_history_filters_by_state_vm_host_user_and_dates(client_as, viewer, history, django_assert_max_num_queries):
    client = client_as(viewer)
    web00, web01, web02 = history

    with django_assert_max_num_queries(8):
        everything = client.get(reverse("task-list")).content.decode()
    assert task_ids(everything) == [web02.pk, web01.pk, web00.pk]
    assert task_ids(client.get(reverse("task-list"), {"state": "failed"}).content.decode()) == [web01.pk]
    assert task_ids(client.get(reverse("task-list"), {"vm": "web-02"}).content.decode()) == [web02.pk]
    assert task_ids(client.get(reverse("task-list"), {"host": "kvm2"}).content.decode()) == [web02.pk, web01.pk, web00.pk]
    assert task_ids(client.get(reverse("task-list"), {"user": "operator"}).content.decode()) == [web00.pk]
    today = web00.created_at.date().isoformat()
    assert len(task_ids(client.get(reverse("task-list"), {"since": today, "until": today}).content.decode())) == 3
    assert task_ids(client.get(reverse("task-list"), {"since": "2001-01-01", "until": "2001-01-02"}).content.decode()) == []


def test_the_task_history_reads_its_rows_in_the_same_queries_however_many_and_shows_every_column(client_as, viewer, history, inventory):
    client = client_as(viewer)
    with CaptureQueriesContext(connection) as three:
        client.get(reverse("task-list"))
    kvm1, kvm2 = inventory
    for vm in kvm1.vms.all()[3:6]:
        MigrationTask.objects.create(vm=vm, source=kvm1, destination=kvm2).transition(TaskState.CANCELLED)
    with CaptureQueriesContext(connection) as six:
        page = client.get(reverse("task-list")).content.decode()

    assert len(six.captured_queries) == len(three.captured_queries)
    row = page.split(f'data-task="{history[1].pk}"', 1)[1].split("</tr>", 1)[0]
    assert all(text in row for text in ("web-01", "kvm1 → kvm2", "Failed", "Normal", "system", "no slot")), row


def test_an_end_date_before_the_start_date_is_refused_next_to_the_field(client_as, viewer, history):
    page = client_as(viewer).get(reverse("task-list"), {"since": "2026-02-02", "until": "2026-01-01"}).content.decode()

    assert "The end date is before the start date." in page


def test_a_host_page_asks_for_its_own_migrations(client_as, viewer, history, inventory):
    kvm1, _ = inventory
    client = client_as(viewer)

    page = client.get(reverse("host-detail", args=[kvm1.pk])).content.decode()
    panel = client.get(reverse("migrations-now"), {"host": kvm1.pk}).content.decode()

    assert f"/tasks/now/?host={kvm1.pk}" in page
    assert "no slot" in panel and "web-01" in panel
    assert "no slot" not in client.get(reverse("migrations-now"), {"host": HostFactory().pk}).content.decode()
