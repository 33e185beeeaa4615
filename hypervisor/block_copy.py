"""Moving a running VM's disks to other storage of its own host, as Storage vMotion does: a
block copy per disk, then a pivot.

QEMU mirrors each disk into an image vmotion created first (VIR_DOMAIN_BLOCK_COPY_REUSE_EXT),
flattening its backing chain, and keeps the mirror in step with the guest's writes; once the
copy has caught up, libvirt marks the job ready and a pivot makes the guest use the copy. In
libvirt 11 the pivot rewrites both the running and the persistent definition, so the VM keeps
its new disk across a restart. The job is transient (VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB):
libvirt copies disks of a persistent domain only so. Abandoning a copy leaves the guest on
its original image.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

import libvirt

from .disk_moves import DiskMove
from .guest import Guest
from .host import disk_facts


@dataclass(frozen=True)
class CopyProgress:
    target: str
    copied_bytes: int
    total_bytes: int
    ready: bool  # caught up: a pivot can switch the guest to the copy now
    running: bool  # libvirt still has the job; False once it ended (pivoted, abandoned or failed)


def copy_xml(move: DiskMove) -> str:
    """The copy's destination as libvirt's block copy takes it: a file of the disk's format."""
    return f"<disk type='file'><source file={quoteattr(move.destination_path)}/><driver type={quoteattr(move.format)}/></disk>"


def disk_sources(domain_xml: str) -> dict[str, str]:
    """Each disk's image, by its target in the guest, as the inventory names it (`host.disk_facts`)."""
    return {facts.target: facts.source for facts in map(disk_facts, ET.fromstring(domain_xml).findall("devices/disk"))}


def _ready_targets(domain_xml: str) -> set[str]:
    """The disks whose copy libvirt marked ready: their <mirror ready='yes'>."""
    ready = set()
    for disk in ET.fromstring(domain_xml).findall("devices/disk"):
        mirror, target = disk.find("mirror"), disk.find("target")
        if mirror is not None and target is not None and mirror.get("ready") == "yes":
            ready.add(target.get("dev", ""))
    return ready


class BlockCopies(Guest):
    """The block copies of one domain, through a held `Connection` (each call has its limit)."""

    def start(self, move: DiskMove, bandwidth_bytes_s: int | None = None) -> None:
        """Start copying `move.target` into its new image (which must exist)."""
        params = {libvirt.VIR_DOMAIN_BLOCK_COPY_BANDWIDTH: bandwidth_bytes_s} if bandwidth_bytes_s else {}
        flags = libvirt.VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | libvirt.VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB
        self._on_domain(lambda dom: dom.blockCopy(move.target, copy_xml(move), params, flags), f"starting the copy of {move.target}")

    def progress(self, targets: list[str]) -> list[CopyProgress]:
        def read(dom: libvirt.virDomain) -> list[CopyProgress]:
            ready = _ready_targets(dom.XMLDesc(0))
            found = []
            for target in targets:
                info = dom.blockJobInfo(target, 0) or {}
                found.append(CopyProgress(target, int(info.get("cur", 0)), int(info.get("end", 0)), target in ready, bool(info)))
            return found

        return self._on_domain(read, "reading the disks' copies")

    def pivot(self, target: str) -> None:
        """Switch the guest to the copy of `target`, which must be ready."""
        self._on_domain(lambda dom: dom.blockJobAbort(target, libvirt.VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT), f"switching {target} to its copy")

    def abandon(self, target: str) -> None:
        """Stop copying `target`; the guest stays on its original image. Nothing to stop, no error."""

        def stop(dom: libvirt.virDomain) -> None:
            if dom.blockJobInfo(target, 0):
                dom.blockJobAbort(target, 0)

        self._on_domain(stop, f"abandoning the copy of {target}")

    def sources(self) -> dict[str, str]:
        """Where each disk of the running domain is now."""
        return self._on_domain(lambda dom: disk_sources(dom.XMLDesc(0)), "reading the disks' images")
