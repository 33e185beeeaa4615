"""A running guest's disk moved live to another datastore of its own host, as `vmotion
move-storage` does: from the datastore its hosts share to the host's local datastore, then
back; and copies that do not finish, cancelled or cut by the host's libvirtd killed. Judged
by virsh and by the images themselves: the guest still runs on its host from one image per
disk, its running and its persistent definition point at that image, the disk holds what
it held, and the image it does not use is gone."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from django.core.management import call_command

from inventory import sync
from inventory.models import Host, VirtualMachine
from lab import control as lab_control
from lab.commands import virsh
from migrations_app import services
from migrations_app.choices import TaskKind, TaskState
from migrations_app.models import MigrationTask
from tests import processes
from tests.lab.conftest import defined_on, final_within, timeline, where_runs
from tests.lab.test_disk_copies import disk_of

DATA_DISK_MIB = 64

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guests_stay_intact", "disks_back_on_shared")]


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


def image_of(host: Host, name: str, target: str) -> str:
    lines = virsh(host.uri, "domblklist", name).stdout.splitlines()
    return next(line.split()[1] for line in lines if line.split()[:1] == [target])


DISK_GUEST_XML = """<domain type='qemu'>
  <name>lab-disk</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file={image}/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <memballoon model='none'/>
  </devices>
</domain>
"""


@pytest.fixture
def disk_guest(lab, lab_config, lab_inventory, tmp_path):
    """A guest with a 64 MiB disk of random bytes on the shared datastore, long enough to copy
    to interrupt at a few MiB/s: defined and started on lab-host1 for the test, then removed
    with its images wherever they ended up. It boots nothing (its disk's first sector is
    zeros, so the firmware finds no boot sector) and so never writes to its disk."""
    host = Host.objects.get(name="lab-host1")
    image = lab_config.datastore_dir / "lab-disk.raw"
    image.write_bytes(bytes(512) + os.urandom(DATA_DISK_MIB * 1024 * 1024 - 512))
    definition = tmp_path / "lab-disk.xml"
    definition.write_text(DISK_GUEST_XML.format(image=quoteattr(str(image))))
    virsh(host.uri, "pool-refresh", "lab-datastore")
    virsh(host.uri, "define", str(definition))
    virsh(host.uri, "start", "lab-disk")
    try:
        yield image
    finally:
        for each in Host.objects.all():  # a test may have moved it
            virsh(each.uri, "destroy", "lab-disk", check=False)
            virsh(each.uri, "undefine", "lab-disk", check=False)
            (lab_config.local_datastore_dir(each.name) / image.name).unlink(missing_ok=True)
            for pool in ("lab-datastore", "lab-local"):
                virsh(each.uri, "pool-refresh", pool, check=False)
        image.unlink(missing_ok=True)


def copying(name: str, *args: str) -> MigrationTask:
    """Submit a storage-only move and return its task once its copy has moved some bytes."""
    for host in Host.objects.all():
        sync.sync_host(host)
    out = StringIO()
    call_command("vmotion", "move-storage", name, *args, "--json", stdout=out)
    task = MigrationTask.objects.get(pk=json.loads(out.getvalue().strip().splitlines()[-1])["task"])
    deadline = time.monotonic() + 60
    while not task.samples.filter(data_processed__gt=0).exists():
        task.refresh_from_db()
        assert task.state in (TaskState.QUEUED, TaskState.CHECKING, TaskState.WAITING, TaskState.MIGRATING), timeline(task)
        assert time.monotonic() < deadline, timeline(task)
        time.sleep(0.2)
    task.refresh_from_db()
    return task


@dataclass(frozen=True)
class SlowCopy:
    """lab-disk's disk on its way to lab-host1's local datastore, capped, some bytes copied."""

    host: Host
    image: Path  # the original, in use
    copy: Path  # the image being filled
    content: str  # the disk's digest before the copy
    task: MigrationTask


def slow_copy(lab_config, image: Path, tmp_path: Path, bandwidth_mib_s: int) -> SlowCopy:
    host = Host.objects.get(name="lab-host1")
    content = guest_visible_digest(image, tmp_path)
    task = copying("lab-disk", "--datastore", "lab-local", "--bandwidth", str(bandwidth_mib_s))
    return SlowCopy(host, image, lab_config.local_datastore_dir(host.name) / image.name, content, task)


def assert_on_its_original_image(copy: SlowCopy, tmp_path: Path) -> None:
    name, host = "lab-disk", copy.host
    assert where_runs(name) == [host.name]
    assert image_of(host, name, "vda") == str(copy.image) and not copy.copy.exists(), timeline(copy.task)
    assert virsh(host.uri, "blockjob", name, "vda", "--info").stdout.strip() == ""  # no block job left
    assert guest_visible_digest(copy.image, tmp_path) == copy.content


def test_a_cancelled_copy_leaves_the_disk_on_its_image_and_removes_the_partial_copy(lab, lab_config, workers, disk_guest, tmp_path):
    started = slow_copy(lab_config, disk_guest, tmp_path, 4)  # 16 s for 64 MiB
    task = started.task
    assert task.state == TaskState.MIGRATING and started.copy.exists()

    services.cancel_task(task)
    task = final_within(task, 30, time.monotonic())

    assert task.state == TaskState.CANCELLED, timeline(task)
    assert_on_its_original_image(started, tmp_path)
    assert f"Cancelled by the operator; vda still on {disk_guest}." in timeline(task)
    assert f"Removed the images lab-disk no longer uses on lab-host1: {started.copy}." in timeline(task)


def test_a_copy_whose_hosts_libvirtd_is_killed_ends_within_a_minute_on_the_original_image(lab, lab_config, workers, disk_guest, tmp_path):
    started = slow_copy(lab_config, disk_guest, tmp_path, 2)  # 32 s for 64 MiB

    killed_at = time.monotonic()
    lab_control.stop_host_daemon(lab_config, "lab-host1", log=lambda line: None, kill=True)
    time.sleep(5)
    lab_control.start_host_daemon(lab_config, "lab-host1", log=lambda line: None)
    task = final_within(started.task, 60, killed_at)

    assert task.state == TaskState.FAILED, timeline(task)
    assert_on_its_original_image(started, tmp_path)
    assert task.error == f"vmotion lost contact with a host during the disks' copy. vda still on {disk_guest}.", timeline(task)


def test_a_copy_whose_worker_is_killed_ends_on_the_original_image_and_the_copy_is_removed(lab, lab_config, workers, disk_guest, tmp_path):
    started = slow_copy(lab_config, disk_guest, tmp_path, 2)  # 32 s for 64 MiB

    worker = next(process for process in workers if process.pid == int(started.task.worker.rpartition(":")[2]))
    killed_at = time.monotonic()
    processes.stop(worker, sig=signal.SIGKILL)
    task = final_within(started.task, 60, killed_at)

    assert task.state == TaskState.FAILED, timeline(task)
    assert task.error == f"Worker lost: the worker running the disks' copy stopped. vda still on {disk_guest}.", timeline(task)
    assert_on_its_original_image(started, tmp_path)
