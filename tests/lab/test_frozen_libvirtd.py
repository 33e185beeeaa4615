"""A host's libvirtd frozen (SIGSTOP) mid-migration: it accepts connections and answers
nothing, while the guests' QEMU run on. The task must be final within a minute of the fault
and say which host's libvirt stopped answering and where the guest runs; once the daemon is
continued (90 s later, as an outage would end), libvirt on both hosts must agree, the task's
timeline says so, the guest runs on exactly one host per virsh and its memory is intact."""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager

import pytest
from django.db import connection as db_connection
from django.urls import reverse

from inventory import sync
from inventory.choices import HostState
from inventory.models import Host, VirtualMachine
from lab import control as lab_control
from lab.commands import domain_names
from migrations_app.choices import TaskState
from migrations_app.models import MigrationTask
from tests.lab.conftest import final_within, timeline, where_runs
from tests.lab.test_faults import moving

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guests_stay_intact")]

FROZEN_FOR_SECONDS = 90
FINAL_WITHIN_SECONDS = 60
CONFIRMED = "libvirt confirms where the VM runs"


@contextmanager
def frozen(lab_config, host: str, seconds: float = FROZEN_FOR_SECONDS):
    """`host`'s libvirtd stopped with SIGSTOP; yields when. Continued `seconds` after that
    (at once should the test fail), so that the lab is sane for the next test."""
    lab_control.signal_host_daemon(lab_config, host, signal.SIGSTOP)
    fault_at = time.monotonic()
    try:
        yield fault_at
        time.sleep(max(0.0, fault_at + seconds - time.monotonic()))
    finally:
        lab_control.signal_host_daemon(lab_config, host, signal.SIGCONT)


def confirmed_once_both_answer(task: MigrationTask, timeout: float = 30) -> str:
    """The timeline's line in which recovery confirms, with both hosts, where the VM runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = task.events.filter(message__contains=CONFIRMED).values_list("message", flat=True).first()
        if line:
            return line
        time.sleep(0.2)
    raise AssertionError(f"nothing confirmed where the VM runs:\n{timeline(task)}")


def test_the_sources_libvirtd_frozen_mid_migration_is_ended_from_the_destination(lab, lab_config, workers, home_hosts, record_property):
    name = "lab-vm2"
    vm, destination, task = moving(name, bandwidth_mib_s=3)
    source = vm.host
    with frozen(lab_config, source.name) as fault_at:
        task = final_within(task, FINAL_WITHIN_SECONDS, fault_at, record_property)
        assert task.state == TaskState.FAILED, timeline(task)
        assert f"libvirt on {source.name} stopped answering during the migration" in task.error
        assert f"{name} still runs on {source.name}" in task.error
        assert f"confirms this with {source.name} once its libvirt answers again" in task.error
        # The destination answers: its incoming copy is gone, the guest was never there.
        assert name not in domain_names(destination.uri, all_domains=True)
        assert not task.events.filter(message__contains=CONFIRMED).exists(), "confirmed while the source was frozen"

    line = confirmed_once_both_answer(task)
    assert f"{name} still runs on {source.name}, as this task said" in line
    assert where_runs(name) == [source.name], timeline(task)
    assert VirtualMachine.objects.get(name=name).host == source


def test_the_destinations_libvirtd_frozen_mid_migration_is_aborted_on_the_source(lab, lab_config, workers, home_hosts, record_property):
    name = "lab-vm5"
    vm, destination, task = moving(name, bandwidth_mib_s=3)
    source = vm.host
    with frozen(lab_config, destination.name) as fault_at:
        task = final_within(task, FINAL_WITHIN_SECONDS, fault_at, record_property)
        assert task.state == TaskState.FAILED, timeline(task)
        assert f"libvirt on {destination.name} stopped answering during the migration" in task.error, timeline(task)
        assert f"aborted it on {source.name}. {name} still runs on {source.name}." in task.error
        assert name in domain_names(source.uri)  # the source answers: the guest runs there
        assert f"{destination.name} has not answered yet" in timeline(task)

    line = confirmed_once_both_answer(task)
    assert f"{name} still runs on {source.name}, as this task said" in line
    # Continued, the destination's libvirtd found its incoming migration gone and ended its copy.
    assert where_runs(name) == [source.name], timeline(task)
    assert name not in domain_names(destination.uri, all_domains=True)


def test_a_frozen_hosts_sync_marks_it_disconnected_and_holds_up_no_other_host(lab, lab_config, lab_inventory, client, viewer):
    still, answering = Host.objects.get(name="lab-host3"), Host.objects.get(name="lab-host1")
    outcomes = {}

    def sync_in_its_own_worker(host: Host) -> None:
        try:
            outcomes[host.name] = sync.sync_host(host)
        finally:
            db_connection.close()

    with frozen(lab_config, still.name, seconds=0):
        frozen_sync = threading.Thread(target=sync_in_its_own_worker, args=(still,))
        frozen_sync.start()
        time.sleep(0.5)
        assert sync.sync_host(answering).reachable
        # Done while the frozen host's sync still waits out its deadline: it waited for nothing.
        assert frozen_sync.is_alive(), "another host's sync waited for the frozen one"

        frozen_sync.join(15)
        assert not frozen_sync.is_alive()
        assert not outcomes[still.name].reachable
        still.refresh_from_db()
        assert still.state == HostState.DISCONNECTED
        assert "did not answer within 10 s" in still.last_error
        # The next round does not wait behind the unanswered connection.
        started = time.monotonic()
        again = sync.sync_host(still)
        assert not again.reachable and time.monotonic() - started < 1
        client.force_login(viewer)
        page = client.get(reverse("host-detail", args=[still.pk])).content.decode()
        assert "did not answer within 10 s" in page

    deadline = time.monotonic() + 30
    while not sync.sync_host(still).reachable:
        assert time.monotonic() < deadline, "the host answers no more after SIGCONT"
        time.sleep(0.5)
    still.refresh_from_db()
    assert still.state == HostState.CONNECTED and still.last_error == ""
