"""A VM on its host's own storage goes where a move can copy its disks: the migration
assistant ranks the hosts with a local datastore that has room (behind those that need no
copy), a move submitted without datastores copies them there, and an evacuation moves such
VMs off their host with their disks. A disk on shared storage is never copied unasked."""

import pytest
from django.utils import timezone

from inventory.models import Datastore, DatastoreMount, VirtualDisk, VirtualMachine
from migrations_app import services
from migrations_app.automation import maintenance
from migrations_app.errors import MigrationRequestError
from migrations_app.models import MigrationTask, TaskDiskMove
from migrations_app.options import MigrationOptions
from migrations_app.placement import store as assistant
from migrations_app.forecast.store import forecast_moves
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cpus_compatible")]
GIB = 1024**3


def local_datastore(host, name: str, free_gib: int) -> Datastore:
    store = Datastore.objects.create(name=f"{name} ({host.name})", kind="dir", source_key=f"directory://{name}-{host.name}", available_bytes=free_gib * GIB)
    DatastoreMount.objects.create(datastore=store, host=host, pool_name=name, target_path=f"/srv/{name}", active=True)
    return store


@pytest.fixture
def hosts():
    seen = timezone.now()
    kvm1, kvm2, kvm3 = (HostFactory(name=name, last_seen=seen, memory_total_bytes=64 * GIB, memory_free_bytes=32 * GIB) for name in ("kvm1", "kvm2", "kvm3"))
    nfs = Datastore.objects.create(name="nfs", kind="netfs", source_key="nfs://filer/vms", available_bytes=500 * GIB)
    for host in (kvm1, kvm2):
        DatastoreMount.objects.create(datastore=nfs, host=host, pool_name="nfs", target_path="/mnt/nfs", active=True)
    mine = local_datastore(kvm1, "images", 100)
    theirs = local_datastore(kvm2, "images", 50)
    return kvm1, kvm2, kvm3, nfs, mine, theirs


def vm_on(host, store, name="web", allocated_gib=3, format="qcow2"):
    vm = VirtualMachineFactory(name=name, host=host, memory_bytes=GIB)
    VirtualDisk.objects.create(vm=vm, target="vda", source=f"/srv/images/{name}.{format}", format=format, datastore=store, capacity_bytes=20 * GIB, allocation_bytes=allocated_gib * GIB)
    return vm


def test_the_assistant_ranks_a_host_whose_local_datastore_takes_the_copy_and_says_so(hosts):
    kvm1, kvm2, kvm3, _nfs, mine, _theirs = hosts
    vm = vm_on(kvm1, mine)

    ranking = {placement.host.name: placement for placement in assistant.recommend(vm)}

    assert ranking["kvm2"].eligible and "its disks are copied (3.0 GiB) to images (kvm2)" in ranking["kvm2"].reasons
    assert not ranking["kvm3"].eligible and "which kvm3 does not mount" in ranking["kvm3"].blocked_by.message


def test_a_move_submitted_without_datastores_copies_the_disks_to_the_destinations_local_datastore(hosts):
    kvm1, kvm2, _kvm3, _nfs, mine, theirs = hosts
    vm = vm_on(kvm1, mine)

    report = services.check_migration(vm, kvm2)
    task = services.submit_migration(vm, kvm2, MigrationOptions())

    assert "Disks copied with the VM: vda to images (kvm2) (3.0 GiB)." in [result.message for result in report.results]
    move = TaskDiskMove.objects.get(task=task)
    assert (move.target, move.destination_datastore, move.destination_path) == ("vda", theirs, "/srv/images/web.qcow2")


def test_too_little_room_keeps_the_host_out_of_the_ranking_with_why(hosts):
    kvm1, _kvm2, _kvm3, _nfs, mine, _theirs = hosts
    vm = vm_on(kvm1, mine, allocated_gib=48)

    kvm2 = next(placement for placement in assistant.recommend(vm) if placement.host.name == "kvm2")

    assert not kvm2.eligible
    assert "images (kvm2), its datastore with the most room, has 50.0 GiB free for the 48.0 GiB to copy" in kvm2.blocked_by.message


def test_a_disk_on_shared_storage_is_never_copied_unasked(hosts):
    kvm1, _kvm2, kvm3, nfs, _mine, _theirs = hosts
    local_datastore(kvm3, "images", 500)
    vm = vm_on(kvm1, nfs)

    ranking = {placement.host.name: placement for placement in assistant.recommend(vm)}

    assert ranking["kvm2"].eligible and not any("copied" in reason for reason in ranking["kvm2"].reasons)
    assert not ranking["kvm3"].eligible
    with pytest.raises(MigrationRequestError, match="which kvm3 does not mount"):
        services.submit_migration(vm, kvm3, MigrationOptions())
    assert not MigrationTask.objects.exists()


def test_evacuating_a_host_moves_its_local_disk_vms_with_their_disks(hosts, administrator):
    kvm1, kvm2, _kvm3, nfs, mine, theirs = hosts
    vm_on(kvm1, mine, name="local"), vm_on(kvm1, nfs, name="shared")

    plan = maintenance.plan(kvm1, measure=False)
    maintenance.enter(kvm1, requested_by=administrator)

    assert {item.vm.name: item.destination.name for item in plan.placed} == {"local": "kvm2", "shared": "kvm2"}
    moves = {task.vm.name: list(task.disk_moves.values_list("target", "destination_datastore")) for task in MigrationTask.objects.all()}
    assert moves == {"local": [("vda", theirs.pk)], "shared": []}


def test_the_forecast_of_a_move_that_copies_disks_counts_their_copy_first(hosts):
    kvm1, kvm2, _kvm3, _nfs, mine, _theirs = hosts
    vm = vm_on(kvm1, mine, allocated_gib=2)
    VirtualMachine.objects.filter(pk=vm.pk).update(dirty_rate_bytes_s=0, dirty_rate_read_at=timezone.now(), memory_in_use_bytes=512 * 1024**2)
    vm.refresh_from_db()
    [memory_only] = forecast_moves([(vm, kvm2)], MigrationOptions(bandwidth_mib_s=100), disk_bytes={vm.pk: 0})
    memory_only = memory_only.forecast

    with_disks = services.preview_migration(vm, kvm2, MigrationOptions(bandwidth_mib_s=100)).forecast.forecast

    # 2 GiB at the 100 MiB/s cap: 20.5 s before the memory starts.
    assert with_disks.prediction.total_ms - memory_only.prediction.total_ms == 20480
    assert with_disks.prediction.explanation.startswith("The disks' 2048 MiB are copied first (20.5 s at 100 MiB/s); then ")
    assert "2048 MiB of disks copied first" in with_disks.summary()
