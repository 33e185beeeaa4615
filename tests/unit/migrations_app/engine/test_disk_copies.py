"""The images of the disks a task copies, on libvirt's test driver (one in-process host whose
pool keeps what is created in it): created before the copy, and once the task has ended, the
losing copy removed."""

import uuid

import libvirt
import pytest

from migrations_app.choices import TaskState
from migrations_app.engine import disk_copies
from migrations_app.models import MigrationTask, TaskDiskMove
from tests.driver_hosts import driver_host
from tests.factories import VirtualMachineFactory

pytestmark = pytest.mark.django_db
POOL = "default-pool"  # the test driver's directory pool, at /default-pool


def volumes() -> list[str]:
    return libvirt.open("test:///default").storagePoolLookupByName(POOL).listVolumes()


@pytest.fixture
def task():
    name = f"web-{uuid.uuid4().hex[:8]}"
    source, destination = driver_host("kvm1"), driver_host("kvm2")
    vm = VirtualMachineFactory(name=name, host=source, uuid=uuid.uuid4())
    task = MigrationTask.objects.create(vm=vm, source=source, destination=destination)
    TaskDiskMove.objects.create(
        task=task, target="vda", source_path=f"/default-pool/{name}-old.qcow2", destination_pool=POOL,
        destination_path=f"/default-pool/{name}.qcow2", format="qcow2", capacity_bytes=1 << 30, copied_bytes=1 << 20,
    )
    pool = libvirt.open("test:///default").storagePoolLookupByName(POOL)
    pool.createXML(f"<volume><name>{name}-old.qcow2</name><capacity>1073741824</capacity><target><format type='qcow2'/></target></volume>", 0)
    yield task
    for volume in (f"{name}.qcow2", f"{name}-old.qcow2"):
        if volume in volumes():
            pool.storageVolLookupByName(volume).delete(0)


def test_the_destinations_image_is_created_empty_before_the_copy(task):
    moves = disk_copies.create_images(task)

    name = task.vm.name
    assert [(m.target, m.destination_path, m.format, m.capacity_bytes) for m in moves] == [("vda", f"/default-pool/{name}.qcow2", "qcow2", 1 << 30)]
    assert f"{name}.qcow2" in volumes()
    assert TaskDiskMove.objects.get(task=task).image_created
    assert f"Created the images the disks are copied to on kvm2: vda into /default-pool/{name}.qcow2 (1 MiB in use)." in task.events.values_list("message", flat=True)


def test_after_success_the_image_the_vm_left_is_removed(task):
    disk_copies.create_images(task)
    MigrationTask.objects.filter(pk=task.pk).update(state=TaskState.SUCCEEDED)

    disk_copies.remove_losing_copies(task)

    name = task.vm.name
    assert f"{name}-old.qcow2" not in volumes() and f"{name}.qcow2" in volumes()
    assert TaskDiskMove.objects.get(task=task).image_removed
    assert f"Removed the disks' former images on kvm1: /default-pool/{name}-old.qcow2." in task.events.values_list("message", flat=True)


def test_after_a_failure_the_partial_copy_is_removed_and_the_vm_keeps_its_image(task):
    disk_copies.create_images(task)
    MigrationTask.objects.filter(pk=task.pk).update(state=TaskState.FAILED)

    disk_copies.remove_losing_copies(task)

    name = task.vm.name
    assert f"{name}.qcow2" not in volumes() and f"{name}-old.qcow2" in volumes()
    assert f"Removed the disks' partial copies on kvm2: /default-pool/{name}.qcow2." in task.events.values_list("message", flat=True)


def test_a_task_still_running_keeps_both_images(task):
    disk_copies.create_images(task)
    MigrationTask.objects.filter(pk=task.pk).update(state=TaskState.MIGRATING)

    disk_copies.remove_losing_copies(task)

    assert {f"{task.vm.name}.qcow2", f"{task.vm.name}-old.qcow2"} <= set(volumes())


def test_a_cluster_that_keeps_the_images_a_move_leaves_keeps_them_and_says_where(task):
    from tests.factories import ClusterFactory

    cluster = ClusterFactory(name="prod", keep_moved_disk_images=True)
    task.source.cluster = cluster
    task.source.save()
    disk_copies.create_images(task)
    MigrationTask.objects.filter(pk=task.pk).update(state=TaskState.SUCCEEDED)

    disk_copies.remove_losing_copies(task)

    name = task.vm.name
    assert f"{name}-old.qcow2" in volumes() and not TaskDiskMove.objects.get(task=task).image_removed
    assert f"Kept the images {name} left on kvm1, as cluster prod asks; remove them by hand once sure: /default-pool/{name}-old.qcow2." in task.events.values_list("message", flat=True)


def test_a_storage_only_move_removes_the_image_each_disk_no_longer_uses(task):
    disk_copies.create_images(task)
    name = task.vm.name

    disk_copies.remove_unused_copies(task, {"vda": f"/default-pool/{name}.qcow2"})

    assert f"{name}-old.qcow2" not in volumes() and f"{name}.qcow2" in volumes()
    assert f"Removed the images {name} no longer uses on kvm1: /default-pool/{name}-old.qcow2." in task.events.values_list("message", flat=True)
