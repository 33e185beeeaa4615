"""The facts the disk placement rules judge, from the inventory, and a move's choice of
datastores as the service layer, the engine and the tasks hold it."""

from __future__ import annotations

from dataclasses import dataclass, field

from inventory.models import DatastoreMount, Host, VirtualMachine

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
    return [
        VmDisk(d.target, d.source, d.format, d.capacity_bytes, d.allocation_bytes, d.datastore_id, d.datastore.name if d.datastore else "")
        for d in vm.disks.select_related("datastore")
    ]


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
