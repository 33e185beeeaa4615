import xml.etree.ElementTree as ET

import pytest

from hypervisor.datastore_keys import datastore_source_key


@pytest.mark.parametrize(
    ("kind", "source", "target", "key"),
    [
        ("netfs", "<source><host name='filer'/><dir path='/vms'/></source>", "/mnt/a", "nfs://filer/vms"),
        ("iscsi", "<source><host name='san'/><device path='iqn.2020-01.san:lun1'/></source>", "/dev/disk/by-path", "iscsi://san/iqn.2020-01.san:lun1"),
        ("rbd", "<source><host name='mon1'/><name>vms</name></source>", "", "rbd://mon1/vms"),
        ("scsi", "<source><adapter type='fc_host' wwnn='20000000c9831b4b' wwpn='10000000c9831b4b'/></source>", "/dev/disk/by-path", "fc://20000000c9831b4b:10000000c9831b4b"),
        ("logical", "<source><name>vg0</name></source>", "/dev/vg0", "lvm://vg0"),
        ("dir", "<source/>", "/var/lib/vmotion/shared", "dir:///var/lib/vmotion/shared"),
    ],
)
def test_the_key_names_the_storage_not_the_pool(kind, source, target, key):
    assert datastore_source_key(kind, ET.fromstring(source), target) == key


def test_pools_with_different_names_but_one_export_share_a_key():
    one = ET.fromstring("<source><host name='filer'/><dir path='/vms'/></source>")
    two = ET.fromstring("<source><host name='filer'/><dir path='/vms'/></source>")
    assert datastore_source_key("netfs", one, "/mnt/x") == datastore_source_key("netfs", two, "/srv/y")
