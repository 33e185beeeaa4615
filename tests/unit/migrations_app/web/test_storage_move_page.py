"""A VM page's "Move disks…": each disk with the datastores of its host to choose from; the
storage-only move submitted, or refused with the reason and nothing changed."""

import pytest
from django.urls import reverse
from django.utils import timezone

from inventory.models import Datastore, DatastoreMount, VirtualDisk
from migrations_app.choices import TaskKind
from migrations_app.models import MigrationTask
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db
GIB = 1024**3


@pytest.fixture
def vm():
    host = HostFactory(name="kvm1", last_seen=timezone.now())
    nfs = Datastore.objects.create(name="nfs", kind="netfs", source_key="nfs://filer/vms", available_bytes=500 * GIB)
    ssd = Datastore.objects.create(name="ssd (kvm1)", kind="dir", source_key="directory://ssd", available_bytes=50 * GIB)
    for store, pool in ((nfs, "nfs"), (ssd, "ssd")):
        DatastoreMount.objects.create(datastore=store, host=host, pool_name=pool, target_path=f"/srv/{pool}", active=True)
    vm = VirtualMachineFactory(name="web-01", host=host)
    VirtualDisk.objects.create(vm=vm, target="vda", source="/srv/nfs/web-01.qcow2", format="qcow2", datastore=nfs, capacity_bytes=20 * GIB, allocation_bytes=3 * GIB)
    return vm, nfs, ssd


def test_the_vm_page_offers_the_move_and_the_form_lists_the_hosts_datastores(client_as, operator, vm):
    vm, _nfs, ssd = vm
    client = client_as(operator)

    assert reverse("vm-move-storage", args=[vm.pk]) in client.get(reverse("vm-detail", args=[vm.pk])).content.decode()
    page = client.get(reverse("vm-move-storage", args=[vm.pk])).content.decode()

    assert "vda, now on nfs" in page and f'<option value="{ssd.pk}">ssd (kvm1) (50.0 GiB free)</option>' in page


def test_submitting_starts_a_storage_only_move_and_shows_its_task(client_as, operator, vm):
    vm, _nfs, ssd = vm

    response = client_as(operator).post(reverse("vm-move-storage", args=[vm.pk]), {"disk_vda": str(ssd.pk), "reason": "off the filer"})

    task = MigrationTask.objects.get()
    assert response.status_code == 302 and response["Location"] == task.get_absolute_url()
    assert (task.kind, task.requested_by, task.reason) == (TaskKind.STORAGE, operator, "off the filer")
    assert list(task.disk_moves.values_list("target", "destination_path")) == [("vda", "/srv/ssd/web-01.qcow2")]


def test_a_move_that_moves_nothing_is_refused_with_why_and_submits_nothing(client_as, operator, vm):
    vm, _nfs, _ssd = vm

    response = client_as(operator).post(reverse("vm-move-storage", args=[vm.pk]), {"disk_vda": ""})

    assert response.status_code == 400
    assert "nothing to move" in response.content.decode() and not MigrationTask.objects.exists()


def test_a_viewer_cannot_move_disks(client_as, viewer, vm):
    vm, _nfs, ssd = vm

    assert client_as(viewer).post(reverse("vm-move-storage", args=[vm.pk]), {"disk_vda": str(ssd.pk)}).status_code == 403
    assert not MigrationTask.objects.exists()
