"""The marker that tells one directory from another at the same path, on libvirt's test driver."""

import libvirt

from hypervisor.datastore_markers import MARKER_PREFIX, directory_marker
from tests.unit.node_files import DirPoolSpec, NodeSpec


def pool_of(tmp_path, spec: DirPoolSpec, *, active: bool = True) -> libvirt.virStoragePool:
    conn = libvirt.open(NodeSpec(dir_pools=[spec]).write(tmp_path / "node.xml"))
    pool = conn.storagePoolLookupByName(spec.name)
    if not active:
        pool.destroy()
    return pool


def markers_in(pool: libvirt.virStoragePool) -> list[str]:
    return sorted(name for name in pool.listVolumes() if name.startswith(MARKER_PREFIX))


def test_a_directory_without_a_marker_gets_one_and_keeps_it(tmp_path):
    pool = pool_of(tmp_path, DirPoolSpec("images", "/var/lib/libvirt/images", volumes={"web.qcow2": (1 << 30, 1 << 20)}))

    first = directory_marker(pool)
    second = directory_marker(pool)

    assert first and len(first) == 32
    assert second == first
    assert markers_in(pool) == [MARKER_PREFIX + first]
    assert "web.qcow2" in pool.listVolumes()


def test_a_marked_directory_keeps_its_marker(tmp_path):
    pool = pool_of(tmp_path, DirPoolSpec("images", "/srv/images", marker="0123"))

    assert directory_marker(pool) == "0123"
    assert markers_in(pool) == [MARKER_PREFIX + "0123"]


def test_two_markers_left_by_two_hosts_at_once_settle_on_the_lowest(tmp_path):
    pool = pool_of(tmp_path, DirPoolSpec("shared", "/srv/shared", marker="bbbb", volumes={MARKER_PREFIX + "aaaa": (0, 0)}))

    assert directory_marker(pool) == "aaaa"
    assert markers_in(pool) == [MARKER_PREFIX + "aaaa"]


def test_a_pool_whose_volumes_libvirt_cannot_read_has_no_marker(tmp_path):
    pool = pool_of(tmp_path, DirPoolSpec("images", "/srv/images"), active=False)

    assert directory_marker(pool) is None
