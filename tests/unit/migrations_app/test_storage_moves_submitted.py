"""A storage-only move: a running VM's disks to another datastore of its own host."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from inventory.models import Datastore, DatastoreMount, VirtualDisk
from migrations_app import services
from migrations_app.choices import TaskKind, TaskState
from migrations_app.errors import MigrationRequestError
from migrations_app.models import MigrationTask, TaskDiskMove
from migrations_app.options import MigrationOptions
from migrations_app.storage.store import DiskChoice
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db
GIB = 1024**3


@pytest.fixture
def vm_on_nfs():
    host = HostFactory(name="kvm1", last_seen=timezone.now())
    nfs = Datastore.objects.create(name="nfs", kind="netfs", source_key="nfs://filer/vms", available_bytes=500 * GIB)
    local = Datastore.objects.create(name="ssd (kvm1)", kind="dir", source_key="host-1:directory://ssd", available_bytes=50 * GIB)
    DatastoreMount.objects.create(datastore=nfs, host=host, pool_name="nfs", target_path="/mnt/nfs", active=True)
    DatastoreMount.objects.create(datastore=local, host=host, pool_name="ssd", target_path="/srv/ssd", active=True)
    vm = VirtualMachineFactory(name="web", host=host)
    VirtualDisk.objects.create(vm=vm, target="vda", source="/mnt/nfs/web.qcow2", format="qcow2", datastore=nfs, capacity_bytes=20 * GIB, allocation_bytes=3 * GIB)
    VirtualDisk.objects.create(vm=vm, target="vdb", source="/mnt/nfs/web-data.raw", format="raw", datastore=nfs, capacity_bytes=10 * GIB, allocation_bytes=10 * GIB)
    return vm, nfs, local


def test_the_task_stays_on_the_host_and_holds_each_disks_copy(vm_on_nfs):
    vm, _nfs, local = vm_on_nfs

    task = services.submit_storage_move(vm, DiskChoice(per_disk={"vda": local.pk}), MigrationOptions())

    assert (task.kind, task.source, task.destination, task.state) == (TaskKind.STORAGE, vm.host, vm.host, TaskState.QUEUED)
    move = TaskDiskMove.objects.get(task=task)
    assert (move.target, move.source_path, move.destination_path, move.destination_pool) == ("vda", "/mnt/nfs/web.qcow2", "/srv/ssd/web.qcow2", "ssd")
    assert str(task) == f"#{task.pk} web disks on kvm1"
    assert "web's disks on kvm1, vda to ssd (kvm1)" in task.events.get().message


def test_disks_already_where_they_are_asked_to_go_are_refused(vm_on_nfs):
    vm, nfs, _local = vm_on_nfs

    with pytest.raises(MigrationRequestError, match="already is on the datastore chosen for it: nothing to move"):
        services.submit_storage_move(vm, DiskChoice(default=nfs.pk), MigrationOptions())

    assert not MigrationTask.objects.exists()


def test_too_little_room_on_the_datastore_refuses_the_move(vm_on_nfs):
    vm, _nfs, local = vm_on_nfs
    Datastore.objects.filter(pk=local.pk).update(available_bytes=12 * GIB)

    with pytest.raises(MigrationRequestError, match=r"ssd \(kvm1\) has 12.0 GiB free; the disks copied to it take 13.0 GiB"):
        services.submit_storage_move(vm, DiskChoice(default=local.pk), MigrationOptions())

    assert not MigrationTask.objects.exists() and not TaskDiskMove.objects.exists()


def test_a_datastore_per_disk_is_found_by_name_on_the_host(vm_on_nfs):
    vm, nfs, local = vm_on_nfs

    choice = services.find_disk_choice(vm.host, "ssd", {"vdb": "nfs"})

    assert choice == DiskChoice(default=local.pk, per_disk={"vdb": nfs.pk})
    assert services.find_disk_choice(vm.host) is None


def test_only_a_storage_only_task_may_have_its_host_as_source_and_destination(vm_on_nfs):
    vm, _nfs, _local = vm_on_nfs

    with pytest.raises(IntegrityError), transaction.atomic():
        MigrationTask.objects.create(vm=vm, source=vm.host, destination=vm.host)
    with pytest.raises(IntegrityError), transaction.atomic():
        MigrationTask.objects.create(vm=vm, kind=TaskKind.STORAGE, source=vm.host, destination=HostFactory(name="kvm2"))


def test_a_storage_only_task_cannot_be_forced_to_complete(vm_on_nfs):
    vm, _nfs, local = vm_on_nfs
    task = services.submit_storage_move(vm, DiskChoice(default=local.pk), MigrationOptions())
    MigrationTask.objects.filter(pk=task.pk).update(state=TaskState.MIGRATING)
    task.refresh_from_db()

    with pytest.raises(services.StateConflict, match="cannot be hurried"):
        services.force_complete(task)
