"""The destination definitions and images of a VM whose disks move with it."""

import xml.etree.ElementTree as ET

import libvirt
import pytest

from hypervisor.disk_moves import DiskMove, create_image, image_xml, moved_definition, remove_image
from tests.unit.node_files import DirPoolSpec, NodeSpec

DOMAIN = """<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>web</name>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='/var/lib/libvirt/images/web.qcow2' index='2'/>
      <backingStore type='file' index='1'><format type='qcow2'/><source file='/var/lib/libvirt/images/base.qcow2'/><backingStore/></backingStore>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='vms/web-data'><host name='mon1'/></source>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='sda' bus='sata'/><readonly/></disk>
  </devices>
  <qemu:commandline><qemu:arg value='-no-user-config'/></qemu:commandline>
</domain>"""

VDA = DiskMove("vda", "local", "/srv/local/web.qcow2", "qcow2", 10 << 30)


def disk(root: ET.Element, target: str) -> ET.Element:
    return next(d for d in root.findall("devices/disk") if d.find("target").get("dev") == target)


def test_a_moved_disk_points_at_its_new_image_without_the_chain_the_copy_flattens():
    root = ET.fromstring(moved_definition(DOMAIN, [VDA]))

    vda = disk(root, "vda")
    assert vda.get("type") == "file"
    assert [source.attrib for source in vda.findall("source")] == [{"file": "/srv/local/web.qcow2"}]
    assert vda.find("backingStore") is None
    assert vda.find("driver").attrib == {"name": "qemu", "type": "qcow2", "cache": "none"}
    assert [child.tag for child in vda] == ["driver", "source", "target", "alias"]


def test_disks_that_stay_and_the_rest_of_the_definition_are_unchanged():
    moved = moved_definition(DOMAIN, [VDA])
    root = ET.fromstring(moved)

    assert disk(root, "vdb").find("source").attrib == {"protocol": "rbd", "name": "vms/web-data"}
    assert disk(root, "sda").find("source") is None
    assert "xmlns:qemu=\"http://libvirt.org/schemas/domain/qemu/1.0\"" in moved and "<qemu:arg value=\"-no-user-config\" />" in moved


def test_a_disk_the_domain_lacks_is_refused():
    with pytest.raises(ValueError, match="no disk vdz"):
        moved_definition(DOMAIN, [DiskMove("vdz", "local", "/srv/local/x.raw", "raw", 1)])


def test_the_new_image_is_empty_thin_and_of_the_disks_size_and_format():
    volume = ET.fromstring(image_xml(VDA))

    assert (volume.findtext("name"), volume.findtext("capacity"), volume.findtext("allocation")) == ("web.qcow2", str(10 << 30), "0")
    assert volume.find("target/format").get("type") == "qcow2"
    with pytest.raises(ValueError, match="raw and qcow2 images, not vmdk"):
        image_xml(DiskMove("vda", "local", "/srv/local/web.vmdk", "vmdk", 1))


def test_an_image_is_created_in_the_chosen_pool_and_removed_by_its_path(tmp_path):
    conn = libvirt.open(NodeSpec(dir_pools=[DirPoolSpec("local", "/srv/local")]).write(tmp_path / "node.xml"))

    create_image(conn, VDA)
    _kind, capacity, _allocation = conn.storageVolLookupByPath("/srv/local/web.qcow2").info()

    assert capacity == 10 << 30
    assert remove_image(conn, "/srv/local/web.qcow2") is True
    assert "web.qcow2" not in conn.storagePoolLookupByName("local").listVolumes()
    assert remove_image(conn, "/srv/local/web.qcow2") is False
