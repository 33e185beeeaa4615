"""What makes two hosts' storage pools the same datastore: their source, not their name.

The key names the storage itself (the NFS export, the iSCSI target, the RBD pool), so
pools defined under different names on different hosts still count as one shared datastore.
A plain directory pool is keyed by its path: vmotion treats a directory at the same path on
several hosts as shared (a cluster filesystem, or a mount libvirt is told is shared).
"""

import xml.etree.ElementTree as ET


def datastore_source_key(kind: str, source: ET.Element | None, target_path: str) -> str:
    def attr(path: str, name: str) -> str:
        element = source.find(path) if source is not None else None
        return element.get(name, "") if element is not None else ""

    def text(path: str) -> str:
        return (source.findtext(path, default="") if source is not None else "").strip()

    if kind == "netfs":
        return f"nfs://{attr('host', 'name')}{attr('dir', 'path')}"
    if kind == "iscsi" or kind == "iscsi-direct":
        return f"iscsi://{attr('host', 'name')}/{attr('device', 'path')}"
    if kind == "rbd":
        return f"rbd://{attr('host', 'name')}/{text('name')}"
    if kind == "scsi":
        wwpn = attr("adapter", "wwpn")
        if wwpn:
            return f"fc://{attr('adapter', 'wwnn')}:{wwpn}"
        return f"scsi://{attr('adapter', 'name') or attr('adapter/parentaddr/address', 'unique_id')}"
    if kind == "logical":
        return f"lvm://{text('name') or target_path}"
    if kind == "fs":
        return f"block://{attr('device', 'path')}"
    return f"dir://{target_path}"
