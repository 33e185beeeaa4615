"""What makes two hosts' storage pools the same datastore: their storage, not their name.

The key names the storage itself (the NFS export, the iSCSI target, the RBD pool, the Fibre
Channel port), so pools defined under different names on different hosts still count as one
shared datastore. A directory (a plain directory pool, or a filesystem pool's mount point)
is keyed by the marker vmotion leaves in it (see datastore_markers): the same path on two
hosts is most often each host's own disk. Storage whose source names nothing beyond the host
(a volume group, a local disk or SCSI adapter, a directory vmotion could not mark) is keyed
within its host only: it is that host's local storage.
"""

import xml.etree.ElementTree as ET

DIRECTORY_KINDS = frozenset({"dir", "fs"})


def datastore_source_key(kind: str, source: ET.Element | None, target_path: str, marker: str | None = None) -> str:
    def attr(path: str, name: str) -> str:
        element = source.find(path) if source is not None else None
        return element.get(name, "") if element is not None else ""

    def text(path: str) -> str:
        return (source.findtext(path, default="") if source is not None else "").strip()

    if kind in DIRECTORY_KINDS and marker:
        return f"directory://{marker}"
    if kind == "netfs":
        return f"nfs://{attr('host', 'name')}{attr('dir', 'path')}"
    if kind == "iscsi" or kind == "iscsi-direct":
        return f"iscsi://{attr('host', 'name')}/{attr('device', 'path')}"
    if kind == "rbd":
        return f"rbd://{attr('host', 'name')}/{text('name')}"
    if kind == "gluster":
        return f"gluster://{attr('host', 'name')}/{text('name')}{attr('dir', 'path')}"
    if kind == "scsi":
        wwpn = attr("adapter", "wwpn")
        if wwpn:
            return f"fc://{attr('adapter', 'wwnn')}:{wwpn}"
        return f"scsi://{attr('adapter', 'name') or attr('adapter/parentaddr/address', 'unique_id')}"
    if kind == "logical":
        return f"lvm://{text('name') or target_path}"
    if kind == "fs":
        return f"block://{attr('device', 'path')}"
    return f"{kind or 'dir'}://{target_path}"


def names_shared_storage(kind: str, source: ET.Element | None, marker: str | None = None) -> bool:
    """Whether the key names storage other hosts can reach under the same key; otherwise it
    is meaningful only within its host."""
    if kind in DIRECTORY_KINDS:
        return bool(marker)
    if kind == "scsi":
        adapter = source.find("adapter") if source is not None else None
        return adapter is not None and bool(adapter.get("wwpn"))
    return kind in {"netfs", "iscsi", "iscsi-direct", "rbd", "gluster"}
