"""Where each disk of a VM goes when it moves to another host, and whether the destination
can take it: pure rules of plain facts, as checks.rules are.

A disk goes to the datastore chosen for it, else to the move's datastore; with neither, or
where that is the datastore it is on, it stays, which it can only on a datastore the
destination mounts. A disk that goes is copied with the memory; the copy needs a file image of a format QEMU mirrors into (raw or qcow2)
and room on that datastore for what the disk takes now, with a margin for the guest's
writes during the copy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from hypervisor.disk_moves import IMAGE_FORMATS

from migrations_app.checks.rules import SPACE_MARGIN


@dataclass(frozen=True)
class VmDisk:
    target: str
    source: str
    format: str
    capacity_bytes: int | None
    allocation_bytes: int | None
    datastore_id: int | None
    datastore_name: str = ""

    @property
    def copied_bytes(self) -> int:
        """What a copy moves: what it takes now, else (not in a pool) its full size."""
        return self.allocation_bytes if self.allocation_bytes is not None else self.capacity_bytes or 0


@dataclass(frozen=True)
class DestinationStore:
    """A datastore as the destination host mounts it."""

    datastore_id: int
    name: str
    pool_name: str
    target_path: str
    available_bytes: int
    active: bool = True


@dataclass(frozen=True)
class DiskPlacement:
    disk: VmDisk
    store: DestinationStore | None  # None: it stays, on a datastore both hosts mount

    @property
    def moves(self) -> bool:
        return self.store is not None

    @property
    def destination_path(self) -> str:
        if self.store is None:
            return self.disk.source
        return str(PurePosixPath(self.store.target_path) / PurePosixPath(self.disk.source).name)


def place_disks(
    disks: Sequence[VmDisk],
    destination_name: str,
    mounted: Collection[int],
    stores: Mapping[int, DestinationStore],
    chosen: Mapping[str, int] | None = None,
    default: int | None = None,
) -> tuple[list[DiskPlacement], list[str]]:
    """Each disk's placement, and what keeps the move from being made (nothing when empty).

    `mounted`: the datastores the destination mounts; `stores`: those it could take a copy
    in, by id; `chosen`: a datastore per disk target; `default`: the move's datastore, for
    the disks not chosen."""
    chosen = chosen or {}
    placements, problems = [], []
    unknown = set(chosen) - {disk.target for disk in disks}
    if unknown:
        problems.append(f"The VM has no disk {', '.join(sorted(unknown))}.")
    for disk in disks:
        store_id = chosen.get(disk.target, default)
        if (store_id is None or store_id == disk.datastore_id) and disk.datastore_id in mounted:
            placements.append(DiskPlacement(disk, None))
            continue
        problem = _cannot_move(disk, destination_name, store_id, stores)
        if problem:
            problems.append(problem)
            continue
        placements.append(DiskPlacement(disk, stores[store_id]))
    problems += _short_of_space(placements)
    return placements, problems


def _cannot_move(disk: VmDisk, destination_name: str, store_id: int | None, stores: Mapping[int, DestinationStore]) -> str:
    where = f"on {disk.datastore_name}" if disk.datastore_name else f"at {disk.source}, on no datastore vmotion knows,"
    if store_id is None:
        return f"Disk {disk.target} is {where} which {destination_name} does not mount: choose a datastore of {destination_name} to copy it to."
    store = stores.get(store_id)
    if store is None or not store.active:
        return f"Disk {disk.target} cannot go to that datastore: {destination_name} does not mount it, or its pool there is inactive."
    if not disk.source.startswith("/"):
        return f"Disk {disk.target} ({disk.source}) is not a file or device path: vmotion copies file images only."
    if disk.format not in IMAGE_FORMATS:
        return f"Disk {disk.target} is a {disk.format or 'an unknown-format'} image: vmotion copies raw and qcow2 images."
    return ""


def _short_of_space(placements: Sequence[DiskPlacement]) -> list[str]:
    needed: dict[int, int] = defaultdict(int)
    by_id = {}
    for placement in placements:
        if placement.store is not None:
            needed[placement.store.datastore_id] += placement.disk.copied_bytes
            by_id[placement.store.datastore_id] = placement.store
    problems = []
    for store_id, copied in needed.items():
        store = by_id[store_id]
        with_margin = int(copied * (1 + SPACE_MARGIN))
        if with_margin > store.available_bytes:
            problems.append(
                f"{store.name} has {_gib(store.available_bytes)} GiB free; the disks copied to it take "
                f"{_gib(copied)} GiB, {_gib(with_margin)} GiB with the {SPACE_MARGIN:.0%} margin for writes during the copy."
            )
    return problems


def _gib(value: int) -> str:
    return f"{value / 1024**3:.1f}"
