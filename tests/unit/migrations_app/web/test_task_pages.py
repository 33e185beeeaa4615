"""Task pages: viewers read, operators cancel and force-complete, everyone else is refused."""

import pytest
from django.urls import reverse

from migrations_app.choices import TaskState
from migrations_app.models import MigrationTask, ProgressSample
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db
MIB = 1024**2


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


def test_a_vms_migrate_link_opens_the_wizard_with_that_vm_for_operators_only(client_as, viewer, operator, task):
    url = reverse("vm-migrate", args=[task.vm.pk])
    assert client_as(viewer).get(url).status_code == 403
    response = client_as(operator).get(url)
    assert response["Location"] == f"{reverse('migration-wizard')}?vm={task.vm.pk}"


@pytest.fixture
def migrating(task):
    task.transition(TaskState.CHECKING)
    task.transition(TaskState.MIGRATING, "Copying.")
    for elapsed, remaining in ((0, 1024), (250, 768), (500, 512)):
        ProgressSample.objects.create(
            task=task, elapsed_ms=elapsed, data_total=1024 * MIB, data_processed=(1024 - remaining) * MIB,
            data_remaining=remaining * MIB, throughput_bytes_s=110 * MIB, dirty_rate_bytes_s=10 * MIB, iteration=1, max_downtime_ms=30,
        )
    return task


def test_the_progress_fragment_shows_the_copy_and_keeps_polling_while_it_runs(client_as, viewer, migrating, django_assert_max_num_queries):
    client = client_as(viewer)

    with django_assert_max_num_queries(8):
        fragment = client.get(reverse("task-progress", args=[migrating.pk]), HTTP_HX_REQUEST="true").content.decode()

    assert 'data-percent="50"' in fragment and "Copying memory, pass 1" in fragment
    assert "512 MiB" in fragment and "110 MiB/s" in fragment and "10 MiB/s" in fragment and "SLO 300 ms" in fragment
    assert 'hx-trigger="every 1s"' in fragment and "<polyline" in fragment
    assert "Timeline" not in fragment and "Cancel</button>" not in fragment  # the fragment is small


def test_an_ended_task_stops_polling_and_a_polling_page_reloads_once(client_as, viewer, migrating):
    migrating.transition(TaskState.SUCCEEDED, "web-01 runs on kvm9 after 0.5 s.")
    client = client_as(viewer)

    response = client.get(reverse("task-progress", args=[migrating.pk]), HTTP_HX_REQUEST="true")

    fragment = response.content.decode()
    assert response["HX-Refresh"] == "true"
    assert "hx-trigger" not in fragment and 'data-percent="100"' in fragment
    assert "web-01 runs on kvm9 after 0.5 s." in fragment


def test_the_dashboard_panel_shows_running_migrations_with_their_bars_and_recent_failures(client_as, viewer, migrating, django_assert_max_num_queries):
    failed_vm = VirtualMachineFactory(name="db-02")
    failed = MigrationTask.objects.create(vm=failed_vm, source=failed_vm.host, destination=HostFactory())
    failed.transition(TaskState.FAILED, error="db-02 still runs on kvm1: the destination stopped answering.")
    client = client_as(viewer)

    with django_assert_max_num_queries(8):
        panel = client.get(reverse("migrations-now")).content.decode()

    assert "web-01" in panel and 'aria-valuenow="50"' in panel
    assert "db-02 still runs on kvm1: the destination stopped answering." in panel


def test_anonymous_users_get_neither_fragment(client, migrating):
    for url in (reverse("task-progress", args=[migrating.pk]), reverse("migrations-now")):
        assert "/login/" in client.get(url)["Location"]


def test_an_unknown_task_has_no_progress(client_as, viewer):
    assert client_as(viewer).get(reverse("task-progress", args=[999999])).status_code == 404


def test_a_storage_only_move_shows_its_disks_copy_not_memory(client_as, operator):
    vm = VirtualMachineFactory(name="db-01")
    task = MigrationTask.objects.create(vm=vm, kind="storage", source=vm.host, destination=vm.host)
    task.disk_moves.create(target="vda", source_path="/mnt/nfs/db-01.qcow2", destination_pool="ssd", destination_path="/srv/ssd/db-01.qcow2", format="qcow2", capacity_bytes=64 * MIB, copied_bytes=48 * MIB)
    task.transition(TaskState.CHECKING)
    task.transition(TaskState.MIGRATING, "Copying db-01's disks on kvm1.")
    ProgressSample.objects.create(task=task, elapsed_ms=2000, data_total=64 * MIB, data_processed=16 * MIB, data_remaining=48 * MIB, throughput_bytes_s=8 * MIB)

    page = client_as(operator).get(reverse("task-detail", args=[task.pk])).content.decode()

    assert f"db-01: disks on {vm.host.name}</h1>" in page
    assert "25% of the disks copied" in page and "Copying the disks" in page
    assert "about 6 s, then each disk switches to its copy with no pause" in page
    assert "/mnt/nfs/db-01.qcow2 → /srv/ssd/db-01.qcow2" in page
    assert "Dirty rate" not in page and "Force complete</button>" not in page and "Cancel</button>" in page
    assert f"disks on {vm.host.name}" in client_as(operator).get(reverse("task-list")).content.decode()


def test_a_move_that_copies_disks_shows_their_copy_beside_the_memory(client_as, operator, task):
    MigrationTask.objects.filter(pk=task.pk).update(state=TaskState.MIGRATING)
    ProgressSample.objects.create(
        task=task, elapsed_ms=3000, data_total=320 * MIB, data_processed=96 * MIB, data_remaining=224 * MIB, throughput_bytes_s=32 * MIB,
        iteration=1, disk_total=192 * MIB, disk_remaining=96 * MIB,
    )

    page = client_as(operator).get(reverse("task-detail", args=[task.pk])).content.decode()

    assert "30% of the memory and disks copied" in page
    assert "Copying the disks; the memory follows once they are in step" in page
    assert '<dd data-testid="task-disk-progress">50% copied, 96 MiB to go</dd>' in page
