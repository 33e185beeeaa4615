"""Moving a running VM's disks with its memory: which disks, where to, and the destination
definitions that say so.

libvirt copies the disks that no shared storage carries over NBD while the memory moves
(VIR_MIGRATE_NON_SHARED_DISK, with VIR_MIGRATE_PARAM_MIGRATE_DISKS naming them); QEMU
mirrors each into an image on the destination and keeps the mirror in step with the
guest's writes until the switch-over. The copy is whole: a backing chain ends up flattened
in the new image. The destination's definitions, the running one
(VIR_MIGRATE_PARAM_DEST_XML) and the one kept (VIR_MIGRATE_PARAM_PERSIST_XML), point each
moved disk at its new image, which vmotion creates first, empty, in the datastore chosen on
the destination, with the disk's format and size.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import libvirt

# Kept under their own prefixes when a definition is rewritten: libvirt reads them by URI.
_NAMESPACES = {
    "qemu": "http://libvirt.org/schemas/domain/qemu/1.0",
    "test": "http://libvirt.org/schemas/domain/test/1.0",
}
for _prefix, _uri in _NAMESPACES.items():
    ET.register_namespace(_prefix, _uri)

IMAGE_FORMATS = frozenset({"raw", "qcow2"})


@dataclass(frozen=True)
class DiskMove:
    target: str  # the guest's device name, e.g. vda
    destination_pool: str  # the pool on the destination host that holds the new image
    destination_path: str
    format: str  # raw or qcow2, as the disk has now
    capacity_bytes: int  # the size the guest sees

    @property
    def volume_name(self) -> str:
        return PurePosixPath(self.destination_path).name


def moved_definition(domain_xml: str, moves: Sequence[DiskMove]) -> str:
    """The domain's definition with each moved disk on its new image (a plain file of the
    disk's format, without the backing chain the copy flattens); other disks unchanged."""
    root = ET.fromstring(domain_xml)
    by_target = {move.target: move for move in moves}
    seen = set()
    for disk in root.findall("devices/disk"):
        target = disk.find("target")
        move = by_target.get(target.get("dev", "")) if target is not None else None
        if move is None:
            continue
        seen.add(move.target)
        disk.set("type", "file")
        for child in list(disk):
            if child.tag in ("source", "backingStore"):
                disk.remove(child)
        source = ET.Element("source", {"file": move.destination_path})
        disk.insert(_after_driver(disk), source)
        driver = disk.find("driver")
        if driver is not None:
            driver.set("type", move.format)
    missing = set(by_target) - seen
    if missing:
        raise ValueError(f"the domain has no disk {', '.join(sorted(missing))}")
    return ET.tostring(root, encoding="unicode")


def _after_driver(disk: ET.Element) -> int:
    children = list(disk)
    driver = disk.find("driver")
    return children.index(driver) + 1 if driver is not None else 0


def image_xml(move: DiskMove) -> str:
    """The volume libvirt creates for a moved disk: empty, thin, the disk's size and format."""
    if move.format not in IMAGE_FORMATS:
        raise ValueError(f"disk {move.target}: vmotion copies raw and qcow2 images, not {move.format or 'an unknown format'}")
    return (
        f"<volume><name>{escape(move.volume_name)}</name>"
        f"<capacity unit='bytes'>{move.capacity_bytes}</capacity><allocation unit='bytes'>0</allocation>"
        f"<target><format type='{move.format}'/></target></volume>"
    )


def create_image(conn: libvirt.virConnect, move: DiskMove) -> None:
    conn.storagePoolLookupByName(move.destination_pool).createXML(image_xml(move), 0)


def remove_image(conn: libvirt.virConnect, path: str) -> bool:
    """Delete the image at `path` through its pool; False if no pool knows it."""
    try:
        volume = conn.storageVolLookupByPath(path)
    except libvirt.libvirtError as error:
        if error.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return False
        raise
    volume.delete(0)
    return True

