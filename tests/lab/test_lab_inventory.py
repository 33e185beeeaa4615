"""Inventory sync against the lab's real libvirt hosts, checked with virsh as an independent client."""

import time

import pytest

from inventory import dirty_rate, sync
from inventory.choices import DatastoreKind, HostState, PowerState
from inventory.models import Datastore, DatastoreMount, Host, Network, VirtualMachine
from lab import control as lab_control, guests

from lab.commands import domain_names, virsh

pytestmark = pytest.mark.lab


def test_sync_finds_every_guest_on_the_host_where_virsh_sees_it_running(lab_inventory):
    for lab_host in lab_inventory.hosts:
        host = Host.objects.get(name=lab_host.name)
        assert host.state == HostState.CONNECTED, host.last_error
        on_host = set(VirtualMachine.objects.filter(host=host, power_state=PowerState.RUNNING).values_list("name", flat=True))
        assert on_host == domain_names(host.uri)
    assert VirtualMachine.objects.filter(power_state=PowerState.RUNNING).count() == len(lab_inventory.guests)


def test_the_lab_datastore_and_network_are_shared_by_every_host(lab_inventory):
    # Both hosts' pools are the one directory: they find the same marker in it.
    datastore = Datastore.objects.get(mounts__target_path=f"{lab_inventory.lab_dir}/datastore", mounts__host__name=lab_inventory.hosts[0].name)
    assert datastore.kind == DatastoreKind.DIRECTORY
    assert datastore.source_key.startswith("directory://")
    markers = [path.name for path in (lab_inventory.lab_dir / "datastore").iterdir() if path.name.startswith(".vmotion-datastore-")]
    assert markers == [f".vmotion-datastore-{datastore.source_key.removeprefix('directory://')}"]
    assert datastore.hosts.count() == len(lab_inventory.hosts)
    assert Network.objects.get(name="lab-net").hosts.count() == len(lab_inventory.hosts)
    vm = VirtualMachine.objects.get(name="lab-vm1")
    assert vm.disks.get().datastore == datastore
    assert vm.nics.get().network.name == "lab-net"


def test_each_hosts_own_directory_is_a_datastore_local_to_it(lab_inventory, lab_config):
    for lab_host in lab_inventory.hosts:
        mount = DatastoreMount.objects.select_related("datastore").get(host__name=lab_host.name, pool_name="lab-local")
        assert mount.target_path == str(lab_config.local_datastore_dir(lab_host.name))
        assert mount.datastore.name == f"lab-local ({lab_host.name})"
        assert list(mount.datastore.hosts.values_list("name", flat=True)) == [lab_host.name]
    local_keys = set(DatastoreMount.objects.filter(pool_name="lab-local").values_list("datastore__source_key", flat=True))
    assert len(local_keys) == len(lab_inventory.hosts)


def test_a_guest_destroyed_with_virsh_shows_stopped_after_a_sync(lab_inventory, lab_config):
    vm = VirtualMachine.objects.select_related("host").get(name="lab-vm2")
    host = vm.host
    serial_log = next(guest.serial_log for guest in lab_inventory.guests if guest.name == vm.name)
    virsh(host.uri, "destroy", vm.name)
    try:
        sync.sync_host(host)
        vm.refresh_from_db()
        assert (vm.power_state, vm.host) == (PowerState.SHUT_OFF, host)
    finally:
        booted_from = serial_log.stat().st_size
        virsh(host.uri, "start", vm.name)
        # Later tests watch the serial logs for a reboot: let this boot finish first.
        guests.wait_until_ready(lab_config, {vm.name: booted_from})
    sync.sync_host(Host.objects.get(pk=host.pk))
    vm.refresh_from_db()
    assert vm.power_state == PowerState.RUNNING


def test_a_host_whose_libvirtd_stops_shows_disconnected_with_the_reason_and_comes_back(lab_inventory, lab_config):
    host = Host.objects.get(name="lab-host3")
    guests_there = domain_names(host.uri)
    lab_control.stop_host_daemon(lab_config, host.name, log=lambda line: None)
    try:
        sync.sync_host(host)
        host.refresh_from_db()
        assert host.state == HostState.DISCONNECTED
        assert "libvirt-sock" in host.last_error
    finally:
        lab_control.start_host_daemon(lab_config, host.name, log=lambda line: None)

    sync.sync_host(host)
    host.refresh_from_db()
    assert host.state == HostState.CONNECTED and host.last_error == ""
    # Its guests kept running while libvirtd was away.
    assert domain_names(host.uri) == guests_there
    assert set(host.vms.filter(power_state=PowerState.RUNNING).values_list("name", flat=True)) == guests_there


def test_host_metrics_come_from_libvirt(lab_inventory):
    sync.sync_all_hosts()
    time.sleep(1)
    sync.sync_all_hosts()
    for host in Host.objects.all():
        assert host.cpu_count > 0 and host.memory_total_bytes > host.memory_free_bytes > 0
        assert host.cpu_utilisation is not None
        assert host.libvirt_version.startswith("11.")


def test_a_guest_that_rewrites_its_memory_shows_more_cpu_demand_than_idle_ones(lab_inventory):
    hosts = list(Host.objects.all())
    # A second sample five seconds after the first: over a shorter window the share of
    # the two cores each emulated guest happens to get varies more than the demand does.
    time.sleep(5)
    for host in hosts:
        sync.sync_host(host)

    running = {vm.name: vm for vm in VirtualMachine.objects.filter(power_state=PowerState.RUNNING)}
    assert all(vm.cpu_cores_used is not None and vm.memory_in_use_bytes > 32 * 1024**2 for vm in running.values()), {
        name: (vm.cpu_cores_used, vm.memory_in_use_bytes) for name, vm in running.items()
    }
    idle = sorted(vm.cpu_cores_used for name, vm in running.items() if name != "lab-vm4")
    busy = running["lab-vm4"].cpu_cores_used
    # Under emulation on a shared machine the absolute figures vary; the ranking does not.
    assert busy > idle[-1] and busy > 1.5 * idle[len(idle) // 2], (busy, idle)


def test_each_sync_reads_the_measurement_the_sync_before_it_started_rate_and_working_set_in_turn(lab_inventory):
    # lab_inventory's sync started a measurement of every running guest: 1 s or 4 s, the two
    # kinds taking turns, each read by the next sync.
    deadline = time.monotonic() + 30
    while True:
        time.sleep(1.5)
        sync.sync_all_hosts()
        running = {vm.name: vm for vm in VirtualMachine.objects.filter(power_state=PowerState.RUNNING)}
        if all(vm.dirty_rate_bytes_s is not None and vm.dirtied_in_window_bytes is not None for vm in running.values()):
            break
        assert time.monotonic() < deadline, {name: (vm.dirty_rate_bytes_s, vm.dirtied_in_window_bytes) for name, vm in running.items()}
    rates = {name: vm.dirty_rate_bytes_s for name, vm in running.items()}
    # The rate a forecast takes: the 1 s one, or the 4 s window's average where that is the finer.
    assert all(dirty_rate.recent_dirty_rate(vm) in (vm.dirty_rate_bytes_s, round(vm.dirtied_in_window_bytes / 4)) for vm in running.values())
    # lab-vm4 rewrites 32 MB at 150 MB/s; the others only tick, though one that has just
    # booted may still be settling. Page sampling estimates.
    busy, idle = rates.pop("lab-vm4"), sorted(rates.values())[len(rates) // 2]
    assert busy >= 16 * 1024**2 and busy > 4 * idle, (busy, rates)
    # In 4 s it dirtied its 32 MB again and again, not 4 x its 1 s rate: that is its working set.
    working_set = dirty_rate.recent_working_set(running["lab-vm4"])
    assert working_set is not None and 16 * 1024**2 <= working_set <= 64 * 1024**2, (working_set, running["lab-vm4"].dirtied_in_window_bytes, busy)
