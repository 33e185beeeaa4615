"""A running guest's disk moved live to another datastore of its own host, as `vmotion
move-storage` does: from the datastore its hosts share to the host's local datastore, then
back. Judged by virsh and by the images themselves: the guest still runs on its host, its
running and its persistent definition point at the new image, the disk holds what it held,
and the image it left is gone."""

from __future__ import annotations

import hashlib
import json
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from inventory import sync
from inventory.models import Host, VirtualMachine
from lab.commands import virsh
from migrations_app.choices import TaskKind
from migrations_app.models import MigrationTask
from tests.lab.conftest import defined_on, timeline, where_runs
from tests.lab.test_disk_copies import disk_of

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guests_stay_intact")]


def move_storage_cli(*args: str) -> dict:
    out = StringIO()
    call_command("vmotion", "move-storage", *args, "--wait", "--json", stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def persistent_disk_of(host: Host, name: str) -> str:
    xml = virsh(host.uri, "dumpxml", "--inactive", name).stdout
    return xml.split("<source file='", 1)[1].split("'", 1)[0]


def guest_visible_digest(image: Path, scratch: Path) -> str:
    """The SHA-256 of the disk as the guest reads it, whatever the image's layout: the image
    converted to raw, read beside the running guest (-U)."""
    raw = scratch / f"{image.name}.raw"
    subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(image), str(raw)], check=True, capture_output=True)
    digest = hashlib.sha256(raw.read_bytes()).hexdigest()
    raw.unlink()
    return digest


def moved(name: str, datastore: str) -> MigrationTask:
    for host in Host.objects.all():
        sync.sync_host(host)
    result = move_storage_cli(name, "--datastore", datastore)
    task = MigrationTask.objects.get(pk=result["task"])
    assert result["state"] == "succeeded", timeline(task)
    return task


def test_a_running_guests_disk_moves_live_to_its_hosts_local_datastore_and_back(lab, lab_config, workers, tmp_path):
    name = "lab-vm2"
    host = VirtualMachine.objects.get(name=name).host
    shared_image = Path(disk_of(host, name))
    local_image = lab_config.local_datastore_dir(host.name) / shared_image.name
    assert shared_image.parent == lab_config.datastore_dir and shared_image.exists() and not local_image.exists()
    content = guest_visible_digest(shared_image, tmp_path)

    there = moved(name, "lab-local")

    assert there.kind == TaskKind.STORAGE and there.source == there.destination == host
    assert where_runs(name) == [host.name] and defined_on(name) == [host.name]
    assert disk_of(host, name) == str(local_image) and persistent_disk_of(host, name) == str(local_image)
    assert local_image.exists() and not shared_image.exists()
    assert guest_visible_digest(local_image, tmp_path) == content
    events = timeline(there)
    assert f"Copying {name}'s disks on {host.name}: vda to {local_image}." in events
    assert f"Removed the images {name} no longer uses on {host.name}: {shared_image}." in events
    assert there.samples.exists() and there.total_ms is not None and there.downtime_ms == 0

    back = moved(name, "lab-datastore")

    assert where_runs(name) == [host.name]
    assert disk_of(host, name) == str(shared_image) and persistent_disk_of(host, name) == str(shared_image)
    assert shared_image.exists() and not local_image.exists(), timeline(back)
    assert guest_visible_digest(shared_image, tmp_path) == content
    assert VirtualMachine.objects.get(name=name).disks.get(target="vda").source == str(shared_image)
