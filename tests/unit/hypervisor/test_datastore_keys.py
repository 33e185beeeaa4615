import xml.etree.ElementTree as ET

import pytest

from hypervisor.datastore_keys import datastore_source_key, names_shared_storage


@pytest.mark.parametrize(
    ("kind", "source", "target", "key"),
    [
        ("netfs", "<source><host name='filer'/><dir path='/vms'/></source>", "/mnt/a", "nfs://filer/vms"),
        ("iscsi", "<source><host name='san'/><device path='iqn.2020-01.san:lun1'/></source>", "/dev/disk/by-path", "iscsi://san/iqn.2020-01.san:lun1"),
        ("rbd", "<source><host name='mon1'/><name>vms</name></source>", "", "rbd://mon1/vms"),
        ("scsi", "<source><adapter type='fc_host' wwnn='20000000c9831b4b' wwpn='10000000c9831b4b'/></source>", "/dev/disk/by-path", "fc://20000000c9831b4b:10000000c9831b4b"),
        ("logical", "<source><name>vg0</name></source>", "/dev/vg0", "lvm://vg0"),
        ("dir", "<source/>", "/var/lib/vmotion/shared", "dir:///var/lib/vmotion/shared"),
        ("gluster", "<source><host name='g1'/><name>vol</name><dir path='/vms'/></source>", "", "gluster://g1/vol/vms"),
    ],
)
def test_the_key_names_the_storage_not_the_pool(kind, source, target, key):
    assert datastore_source_key(kind, ET.fromstring(source), target) == key


def test_pools_with_different_names_but_one_export_share_a_key():
    one = ET.fromstring("<source><host name='filer'/><dir path='/vms'/></source>")
    two = ET.fromstring("<source><host name='filer'/><dir path='/vms'/></source>")
    assert datastore_source_key("netfs", one, "/mnt/x") == datastore_source_key("netfs", two, "/srv/y")


def test_a_directory_is_keyed_by_its_marker_wherever_it_is_mounted():
    assert datastore_source_key("dir", ET.fromstring("<source/>"), "/mnt/a", marker="ab12") == "directory://ab12"
    assert datastore_source_key("fs", ET.fromstring("<source><device path='/dev/sdb1'/></source>"), "/mnt/b", marker="ab12") == "directory://ab12"


@pytest.mark.parametrize(
    ("kind", "source", "marker", "shared"),
    [
        ("netfs", "<source><host name='filer'/><dir path='/vms'/></source>", None, True),
        ("iscsi", "<source><host name='san'/><device path='iqn.2020-01.san:lun1'/></source>", None, True),
        ("rbd", "<source><host name='mon1'/><name>vms</name></source>", None, True),
        ("scsi", "<source><adapter type='fc_host' wwnn='20000000c9831b4b' wwpn='10000000c9831b4b'/></source>", None, True),
        ("dir", "<source/>", "ab12", True),
        # The same path or name on two hosts, most often each host's own disk:
        ("dir", "<source/>", None, False),
        ("fs", "<source><device path='/dev/sdb1'/></source>", None, False),
        ("logical", "<source><name>vg0</name></source>", None, False),
        ("scsi", "<source><adapter type='scsi_host' name='host0'/></source>", None, False),
        ("disk", "<source><device path='/dev/sdc'/></source>", None, False),
        ("zfs", "<source><name>tank</name></source>", None, False),
    ],
)
def test_only_storage_named_beyond_its_host_can_be_shared(kind, source, marker, shared):
    assert names_shared_storage(kind, ET.fromstring(source), marker) is shared
