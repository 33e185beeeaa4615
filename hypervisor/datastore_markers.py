"""Which directory pools on different hosts are one directory: a marker volume inside it.

A directory pool's path says nothing about whose disk it is: every host has its own
/var/lib/libvirt/images, while an NFS export or a cluster filesystem that libvirt sees as a
plain directory is one store for all its hosts. So vmotion leaves an empty volume named
MARKER_PREFIX<id> in each active directory pool and keys the pool by that id: hosts that see
the same marker see the same directory, wherever they mount it.

Two hosts that find a new shared directory at the same moment may each create a marker;
each sync reads the directory again (a pool refresh), so both settle on the lowest id at
their next sync and the other marker is removed.
"""

from __future__ import annotations

import uuid

import libvirt

MARKER_PREFIX = ".vmotion-datastore-"
_MARKER_XML = "<volume><name>{name}</name><capacity unit='bytes'>0</capacity><target><format type='raw'/></target></volume>"


def directory_marker(pool: libvirt.virStoragePool) -> str | None:
    """The id of the marker in an active directory pool, created if it has none; None where
    libvirt cannot list or create volumes there (a read-only directory, say)."""
    try:
        pool.refresh(0)
    except libvirt.libvirtError:
        pass  # a volume is being built or uploaded there: the last listing still holds
    try:
        markers = sorted(name[len(MARKER_PREFIX):] for name in pool.listVolumes() if name.startswith(MARKER_PREFIX))
        if not markers:
            marker = uuid.uuid4().hex
            pool.createXML(_MARKER_XML.format(name=MARKER_PREFIX + marker), 0)
            return marker
    except libvirt.libvirtError:
        return None
    for extra in markers[1:]:
        _remove(pool, MARKER_PREFIX + extra)
    return markers[0]


def is_marker(volume_name: str) -> bool:
    return volume_name.startswith(MARKER_PREFIX)


def _remove(pool: libvirt.virStoragePool, name: str) -> None:
    try:
        pool.storageVolLookupByName(name).delete(0)
    except libvirt.libvirtError:
        pass  # another host removed it first
