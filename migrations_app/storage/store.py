"""The facts the disk placement rules judge, from the inventory, and a move's choice of
datastores as the service layer, the engine and the tasks hold it."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypervisor.disk_moves import IMAGE_FORMATS
from django.db.models import Count, QuerySet

from inventory.models import Datastore, DatastoreMount, Host, VirtualDisk, VirtualMachine

from migrations_app.checks.rules import CopyStore
from migrations_app.storage.placement import DestinationStore, DiskPlacement, VmDisk, place_disks


@dataclass(frozen=True)
class DiskChoice:
    """Where a move puts the VM's disks: `default`, the move's datastore, for all of them,
    `per_disk` (target to datastore id) for some; both empty, no disk moves."""

    default: int | None = None
    per_disk: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.default is None and not self.per_disk


def vm_disks(vm: VirtualMachine) -> list[VmDisk]:
    return [vm_disk(d) for d in vm.disks.select_related("datastore")]


def vm_disk(d: VirtualDisk) -> VmDisk:
    return VmDisk(d.target, d.source, d.format, d.capacity_bytes, d.allocation_bytes, d.datastore_id, d.datastore.name if d.datastore else "")


def destination_stores(destination: Host) -> dict[int, DestinationStore]:
    mounts = DatastoreMount.objects.filter(host=destination).select_related("datastore")
    return {
        m.datastore_id: DestinationStore(m.datastore_id, m.datastore.name, m.pool_name, m.target_path, m.datastore.available_bytes, m.active)
        for m in mounts
    }


def placements(vm: VirtualMachine, destination: Host, choice: DiskChoice) -> tuple[list[DiskPlacement], list[str]]:
    stores = destination_stores(destination)
    mounted = {store_id for store_id, store in stores.items() if store.active}
    return place_disks(vm_disks(vm), destination.name, mounted, stores, choice.per_disk, choice.default)


def choice_of(task) -> DiskChoice:
    """The datastores a submitted task's disks were placed in."""
    return DiskChoice(per_disk={move.target: move.destination_datastore_id for move in task.disk_moves.all() if move.destination_datastore_id})


def disks_with_reach(vm_disks: QuerySet[VirtualDisk]) -> QuerySet[VirtualDisk]:
    """The disks with their datastore and how many hosts mount it, as `copied_without_asking` reads them."""
    return vm_disks.select_related("datastore").annotate(datastore_hosts=Count("datastore__mounts"))


def copied_without_asking(disk: VirtualDisk) -> bool:
    """Whether a move may copy the disk to a datastore nobody chose (an evacuation's, the
    assistant's): a raw or qcow2 file on storage only its host mounts (read from
    `disks_with_reach`). A disk on storage other hosts mount goes only where it is mounted."""
    return disk.datastore is not None and disk.datastore_hosts == 1 and disk.source.startswith("/") and disk.format in IMAGE_FORMATS


def copy_stores(host_ids: list[int] | None = None) -> dict[int, CopyStore]:
    """Each host's datastore for the copies nobody chose a datastore for: of those only it
    mounts, the one with the most room (one query for all hosts, or those of `host_ids`)."""
    own = Datastore.objects.annotate(mounting=Count("mounts")).filter(mounting=1).values("pk")
    mounts = DatastoreMount.objects.filter(active=True, datastore__in=own)
    if host_ids is not None:
        mounts = mounts.filter(host_id__in=host_ids)
    best: dict[int, CopyStore] = {}
    for host_id, store_id, name, available in mounts.order_by().values_list("host_id", "datastore_id", "datastore__name", "datastore__available_bytes"):
        if host_id not in best or available > best[host_id].available_bytes:
            best[host_id] = CopyStore(store_id, name, available)
    return best


def automatic_choice(vm: VirtualMachine, destination: Host) -> DiskChoice | None:
    """Where a move nobody chose datastores for puts the disks `destination` cannot read: its
    copy store (`copy_stores`), for each such disk a move may copy; None when none has to go
    (the checks then say why a disk that cannot go keeps the VM where it is)."""
    mounted = set(DatastoreMount.objects.filter(host=destination, active=True).values_list("datastore_id", flat=True))
    out = [disk for disk in disks_with_reach(vm.disks.all()) if disk.datastore_id not in mounted and copied_without_asking(disk)]
    if not out:
        return None
    store = copy_stores([destination.pk]).get(destination.pk)
    return DiskChoice(per_disk={disk.target: store.datastore_id for disk in out}) if store else None


def copied_bytes_of(moves: list[tuple[VirtualMachine, Host]]) -> dict[int, int]:
    """For each move's VM (by id), the bytes of its disks that move copies unasked
    (`automatic_choice`): two queries for all the moves."""
    destinations = {destination.pk for _, destination in moves}
    mounted: dict[int, set[int]] = {pk: set() for pk in destinations}
    for host_id, store_id in DatastoreMount.objects.filter(host_id__in=destinations, active=True).values_list("host_id", "datastore_id"):
        mounted[host_id].add(store_id)
    disks: dict[int, list[VirtualDisk]] = {}
    for disk in disks_with_reach(VirtualDisk.objects.filter(vm_id__in=[vm.pk for vm, _ in moves])):
        disks.setdefault(disk.vm_id, []).append(disk)
    return {
        vm.pk: sum(copied_bytes(disk) for disk in disks.get(vm.pk, []) if disk.datastore_id not in mounted[destination.pk] and copied_without_asking(disk))
        for vm, destination in moves
    }


def copied_bytes(disk: VirtualDisk) -> int:
    """What copying the disk moves (`placement.VmDisk.copied_bytes`, from the inventory's row)."""
    return vm_disk(disk).copied_bytes
