"""What the VM and host pages and the API say about a VM's disks and local storage."""

import re

import pytest
from django.urls import reverse

from inventory.models import Datastore, DatastoreMount, VirtualDisk
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def storage():
    kvm1, kvm2 = HostFactory(name="kvm1"), HostFactory(name="kvm2")
    local = Datastore.objects.create(name="images (kvm1)", kind="dir", source_key="directory://aaaa", capacity_bytes=100 << 30, available_bytes=60 << 30)
    shared = Datastore.objects.create(name="nfs-vms", kind="netfs", source_key="nfs://filer/vms")
    DatastoreMount.objects.create(datastore=local, host=kvm1, pool_name="images", target_path="/var/lib/libvirt/images", active=True)
    for host in (kvm1, kvm2):
        DatastoreMount.objects.create(datastore=shared, host=host, pool_name="nfs", target_path="/srv/nfs", active=True)
    vm = VirtualMachineFactory(name="web", host=kvm1)
    VirtualDisk.objects.create(vm=vm, target="vda", source="/var/lib/libvirt/images/web.qcow2", format="qcow2", datastore=local, capacity_bytes=10 << 30, allocation_bytes=3 << 29)
    VirtualDisk.objects.create(vm=vm, target="vdb", source="/srv/nfs/web-data.raw", format="raw", datastore=shared)
    return kvm1, vm, local


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_vm_page_shows_each_disks_size_allocation_and_whether_its_datastore_is_local(client_as, viewer, storage):
    _kvm1, vm, _local = storage

    page = text_of(client_as(viewer).get(reverse("vm-detail", args=[vm.pk])).content.decode())

    assert "vda /var/lib/libvirt/images/web.qcow2 qcow2 10.0 GB 1.5 GB images (kvm1) (local)" in page
    assert "vdb /srv/nfs/web-data.raw raw — — nfs-vms (shared by 2 hosts)" in page


def test_the_host_page_marks_its_local_datastores(client_as, viewer, storage):
    kvm1, _vm, _local = storage

    page = text_of(client_as(viewer).get(reverse("host-detail", args=[kvm1.pk])).content.decode())

    assert "images (kvm1) Directory images /var/lib/libvirt/images 60.0 GB of 100.0 GB local to kvm1" in page
    assert "nfs-vms" in page and "2 hosts" in page


def test_the_api_gives_disk_sizes_and_the_host_a_datastore_is_local_to(client_as, viewer, storage):
    kvm1, vm, local = storage
    client = client_as(viewer)

    disks = client.get(f"/api/v1/vms/{vm.pk}/").json()["disks"]
    stores = {store["name"]: store for store in client.get("/api/v1/datastores/").json()["results"]}

    assert [(d["target"], d["capacity_bytes"], d["allocation_bytes"]) for d in disks] == [("vda", 10 << 30, 3 << 29), ("vdb", None, None)]
    assert stores["images (kvm1)"]["local_to"] == kvm1.pk
    assert stores["nfs-vms"]["local_to"] is None
