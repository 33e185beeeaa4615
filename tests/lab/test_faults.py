"""Faults in vmotion's own services while a lab guest moves. After each, the guest runs on
exactly one host per virsh, its memory is intact, and the task is final and says what
happened."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from django.db import connection

from inventory.models import Host, VirtualMachine
from lab import link
from lab.hosts import host_subdir
from migrations_app import services
from migrations_app.choices import TaskState
from migrations_app.models import MigrationTask, ProgressSample
from tests.lab.conftest import defined_on, wait_for_state, where_runs

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guests_stay_intact")]

FINAL = [TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED]


def terminate_every_other_connection() -> int:
    """As an administrator's pg_terminate_backend: every session of the database but the
    test's own (the workers', the scheduler's) is dropped by the server."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def wait_for_progress(task: MigrationTask, timeout: float = 60) -> None:
    """Until memory flows: the stream is open and the copy under way."""
    deadline = time.monotonic() + timeout
    while not ProgressSample.objects.filter(task=task, data_processed__gt=0).exists():
        assert time.monotonic() < deadline, "the migration reported no progress"
        time.sleep(0.1)


def moving(name: str, bandwidth_mib_s: int) -> tuple[VirtualMachine, Host, MigrationTask]:
    """The guest, where it goes and its task, once the capped copy is under way."""
    vm = VirtualMachine.objects.select_related("host").get(name=name)
    destination = Host.objects.exclude(pk=vm.host_id).order_by("name").first()
    task = services.submit_migration(vm, destination, services.MigrationOptions(bandwidth_mib_s=bandwidth_mib_s))
    wait_for_state(task, [TaskState.MIGRATING])
    wait_for_progress(task)
    return vm, destination, task


def timeline(task: MigrationTask) -> str:
    return "\n".join(f"{event.at:%H:%M:%S.%f} {event.message}" for event in task.events.all())


def test_the_database_dropping_the_workers_connections_mid_migration_loses_nothing(lab, workers, home_hosts):
    name = "lab-vm3"
    vm, destination, task = moving(name, bandwidth_mib_s=5)

    assert terminate_every_other_connection() > 0

    task = wait_for_state(task, FINAL, timeout=120)
    assert task.state == TaskState.SUCCEEDED, timeline(task)
    assert where_runs(name) == [destination.name] and defined_on(name) == [destination.name]
    assert "The database did not answer for" in timeline(task)
    # Nothing else was lost either: the next migration of the guest, back, goes through.
    back = services.submit_migration(VirtualMachine.objects.get(name=name), Host.objects.get(pk=vm.host_id), services.MigrationOptions())
    back = wait_for_state(back, FINAL, timeout=120)
    assert back.state == TaskState.SUCCEEDED, timeline(back)
    assert where_runs(name) == [vm.host.name]


def incoming_qemu_pid(lab_config, host: str, vm_name: str) -> int:
    """The QEMU that receives the guest on `host`: the destination's libvirtd started it for
    this migration and keeps its pid in the host's own run directory. (Not a search by
    command line: a guest that arrived by an earlier migration runs in a QEMU started with
    `-incoming` too.)"""
    pid = int((host_subdir(lab_config, host, "run") / "qemu" / f"{vm_name}.pid").read_text())
    assert "-incoming" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    return pid


def test_the_destinations_incoming_qemu_killed_mid_migration_leaves_the_guest_on_its_source(lab, lab_config, workers, home_hosts):
    name = "lab-vm5"
    vm, destination, task = moving(name, bandwidth_mib_s=2)

    os.kill(incoming_qemu_pid(lab_config, destination.name, name), signal.SIGKILL)

    task = wait_for_state(task, FINAL, timeout=60)
    assert task.state == TaskState.FAILED, timeline(task)
    assert f"still runs on {vm.host.name}" in task.error
    assert where_runs(name) == [vm.host.name] and defined_on(name) == [vm.host.name]
    assert VirtualMachine.objects.get(name=name).host == vm.host


def test_the_migration_link_cut_mid_pre_copy_fails_the_task_with_the_guest_on_its_source(lab, lab_config, workers, home_hosts):
    name = "lab-vm2"
    vm, destination, task = moving(name, bandwidth_mib_s=5)

    link.cut(lab_config, destination.name)
    try:
        task = wait_for_state(task, FINAL, timeout=60)
    finally:
        link.restore(lab_config, destination.name)

    assert task.state == TaskState.FAILED, timeline(task)
    assert "the migration link is down" in task.error and f"still runs on {vm.host.name}" in task.error, task.error
    assert where_runs(name) == [vm.host.name] and defined_on(name) == [vm.host.name]


# libvirt opens the stream itself, holding the domain's lock: until TCP gives up connecting
# (about 130 s with Linux's default SYN retries) no statistics or abort get through.
@pytest.mark.long_fault
def test_the_migration_link_down_before_the_stream_opens_fails_the_task_once_tcp_gives_up(lab, lab_config, workers, home_hosts):
    name = "lab-vm2"
    vm = VirtualMachine.objects.select_related("host").get(name=name)
    destination = Host.objects.exclude(pk=vm.host_id).order_by("name").first()
    link.cut(lab_config, destination.name)
    try:
        task = services.submit_migration(vm, destination, services.MigrationOptions(bandwidth_mib_s=5))
        task = wait_for_state(task, FINAL, timeout=240)
    finally:
        link.restore(lab_config, destination.name)

    assert task.state == TaskState.FAILED, timeline(task)
    assert "could not open the migration stream" in task.error and "the migration link is down" in task.error, task.error
    assert f"still runs on {vm.host.name}" in task.error, task.error
    assert f"libvirt on {vm.host.name} has not given the migration's statistics" in timeline(task)
    assert where_runs(name) == [vm.host.name] and defined_on(name) == [vm.host.name]
