"""The source's QEMU frozen (SIGSTOP) mid-migration: libvirt there answers, but waits on that
QEMU's monitor without a deadline, so the job's statistics, an abort and the migrate call all
hang. The task must be final within a minute of the fault with the guest on its source; once
QEMU is continued (90 s later), libvirt ends its job, the timeline confirms where the guest
runs, and it runs there alone with its memory intact."""

from __future__ import annotations

import os
import signal
import time

import pytest

from inventory.models import VirtualMachine
from lab.commands import domain_names
from migrations_app.choices import TaskState
from tests.lab.conftest import final_within, timeline, where_runs
from tests.lab.test_faults import moving, qemu_pid
from tests.lab.test_frozen_libvirtd import FINAL_WITHIN_SECONDS, FROZEN_FOR_SECONDS, confirmed_once_both_answer

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guests_stay_intact")]


def test_the_sources_qemu_frozen_mid_migration_ends_the_task_with_the_guest_on_its_source(lab, lab_config, workers, home_hosts, record_property):
    name = "lab-vm4"
    vm, destination, task = moving(name, bandwidth_mib_s=3)
    source = vm.host
    pid = qemu_pid(lab_config, source.name, name)
    os.kill(pid, signal.SIGSTOP)
    fault_at = time.monotonic()
    try:
        task = final_within(task, FINAL_WITHIN_SECONDS, fault_at, record_property)
        assert task.state == TaskState.FAILED, timeline(task)
        assert "the guest's QEMU there does not answer libvirt" in task.error, timeline(task)
        assert f"{name} still runs on {source.name}." in task.error
        assert f"vmotion stopped the copy waiting on {destination.name}, which never ran {name}" in timeline(task)
        assert name not in domain_names(destination.uri, all_domains=True)
        time.sleep(max(0.0, fault_at + FROZEN_FOR_SECONDS - time.monotonic()))
    finally:
        os.kill(pid, signal.SIGCONT)

    line = confirmed_once_both_answer(task, timeout=60)
    assert f"{name} still runs on {source.name}, as this task said" in line
    assert where_runs(name) == [source.name], timeline(task)
    assert VirtualMachine.objects.get(name=name).host == source


def test_a_guest_whose_qemu_hangs_costs_its_host_no_sync(lab_inventory, lab_config):
    """Reads that need a guest's QEMU wait on it while it hangs (the first statistics call for
    good, its definition 30 s for its lock): they are left behind after a few seconds, the
    host stays connected, its other guests keep being read, and the hung one keeps its place."""
    from inventory import sync
    from inventory.choices import HostState, PowerState
    from inventory.models import Host

    frozen = "lab-vm2"
    host = Host.objects.get(name=VirtualMachine.objects.get(name=frozen).host.name)
    others = VirtualMachine.objects.filter(host=host).exclude(name=frozen)
    assert others.exists(), "the test needs another guest on the frozen guest's host"
    before = {vm.name: vm.last_seen for vm in others}
    pid = qemu_pid(lab_config, host.name, frozen)
    os.kill(pid, signal.SIGSTOP)
    try:
        outcomes = []
        for _ in range(3):
            started = time.monotonic()
            outcomes.append((sync.sync_host(Host.objects.get(pk=host.pk)).reachable, round(time.monotonic() - started, 1)))
        host.refresh_from_db()
    finally:
        os.kill(pid, signal.SIGCONT)

    assert all(reachable for reachable, _seconds in outcomes), (outcomes, host.last_error)
    assert all(seconds < 8 for _reachable, seconds in outcomes), outcomes  # the deadline is 10 s
    assert host.state == HostState.CONNECTED and host.last_error == ""
    hung = VirtualMachine.objects.get(name=frozen)
    assert (hung.host, hung.power_state) == (host, PowerState.RUNNING)
    assert all(vm.last_seen > before[vm.name] for vm in others.all())
