"""A move that copies disks: the datastore asked for, the pre-flight check, the task's plan."""

import pytest
from django.utils import timezone

from inventory.models import Datastore, DatastoreMount, VirtualDisk
from migrations_app import services
from migrations_app.checks.store import preflight
from migrations_app.errors import MigrationRequestError
from migrations_app.models import TaskDiskMove
from migrations_app.options import MigrationOptions
from migrations_app.storage.store import DiskChoice
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db
GIB = 1024**3


@pytest.fixture
def local_vm(cpus_compatible):
    seen = timezone.now()
    source, destination = HostFactory(name="kvm1", last_seen=seen), HostFactory(name="kvm2", last_seen=seen)
    mine = Datastore.objects.create(name="images (kvm1)", kind="dir", source_key="directory://a", available_bytes=50 * GIB)
    theirs = Datastore.objects.create(name="images (kvm2)", kind="dir", source_key="directory://b", available_bytes=50 * GIB)
    DatastoreMount.objects.create(datastore=mine, host=source, pool_name="images", target_path="/var/lib/libvirt/images", active=True)
    DatastoreMount.objects.create(datastore=theirs, host=destination, pool_name="images", target_path="/srv/images", active=True)
    vm = VirtualMachineFactory(name="web", host=source)
    VirtualDisk.objects.create(vm=vm, target="vda", source="/var/lib/libvirt/images/web.qcow2", format="qcow2", datastore=mine, capacity_bytes=20 * GIB, allocation_bytes=3 * GIB)
    return vm, destination, theirs


def storage_check(report):
    return next(result for result in report.results if result.name == "storage_shared")


def test_a_vm_on_local_storage_cannot_move_unless_a_datastore_is_given_for_its_disks(local_vm):
    vm, destination, theirs = local_vm

    refused = storage_check(preflight(vm, destination))
    copied = storage_check(preflight(vm, destination, disks=DiskChoice(default=theirs.pk)))

    assert refused.status == "fail" and "images (kvm1), which kvm2 does not mount" in refused.message
    assert copied.status == "ok" and copied.message == "Disks copied with the VM: vda to images (kvm2) (3.0 GiB)."


def test_a_datastore_is_found_by_its_name_or_its_pools_name_on_the_destination(local_vm):
    _vm, destination, theirs = local_vm

    assert services.find_datastore("images (kvm2)", destination) == DiskChoice(default=theirs.pk)
    assert services.find_datastore("images", destination) == DiskChoice(default=theirs.pk)
    with pytest.raises(MigrationRequestError, match=r"kvm2 mounts no datastore 'nfs'; its datastores: images \(kvm2\)\."):
        services.find_datastore("nfs", destination)


def test_the_submitted_task_holds_each_disks_copy(local_vm):
    vm, destination, theirs = local_vm

    task = services.submit_migration(vm, destination, MigrationOptions(), disks=DiskChoice(default=theirs.pk))

    move = TaskDiskMove.objects.get(task=task)
    assert (move.target, move.source_path, move.destination_path, move.destination_pool) == ("vda", "/var/lib/libvirt/images/web.qcow2", "/srv/images/web.qcow2", "images")
    assert (move.format, move.capacity_bytes, move.copied_bytes, move.image_created) == ("qcow2", 20 * GIB, 3 * GIB, False)


def test_too_little_room_refuses_the_move_and_changes_nothing(local_vm):
    vm, destination, theirs = local_vm
    Datastore.objects.filter(pk=theirs.pk).update(available_bytes=2 * GIB)

    with pytest.raises(MigrationRequestError, match="images \\(kvm2\\) has 2.0 GiB free"):
        services.submit_migration(vm, destination, MigrationOptions(), disks=DiskChoice(default=theirs.pk))

    assert not TaskDiskMove.objects.exists() and not vm.migration_tasks.exists()
