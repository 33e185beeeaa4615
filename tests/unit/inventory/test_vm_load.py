"""Each VM's load from libvirt's domain statistics, kept by the inventory sync with a short
history; a host's load is its running VMs' demand against its capacity."""

import dataclasses
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from inventory import sync
from inventory.load import host_load
from inventory.choices import HostState
from inventory.models import Host, VirtualMachine, VmLoadSample
from tests.factories import HostFactory, VirtualMachineFactory

from tests.unit.node_files import DomainSpec, NodeSpec

pytestmark = pytest.mark.django_db
WEB = str(uuid.UUID(int=1))
MIB = 1024**2


def test_cpu_demand_is_busy_time_per_second_and_unknown_without_a_usable_earlier_sample():
    now = timezone.now()
    assert sync.cpu_demand(10_000_000_000, now - timedelta(seconds=10), 25_000_000_000, now) == 1.5
    assert sync.cpu_demand(None, None, 25_000_000_000, now) is None
    assert sync.cpu_demand(30_000_000_000, now - timedelta(seconds=10), 1_000_000_000, now) is None  # a new QEMU process


def test_two_syncs_measure_a_vms_demand_keep_its_history_and_drop_old_history(tmp_path, monkeypatch, settings):
    host = HostFactory(name="h1", uri=NodeSpec(domains=[DomainSpec("web", WEB)]).write(tmp_path / "h1.xml"))
    counter = {"cpu_time_ns": 40_000_000_000}
    read_host = sync.hypervisor_host.read_host

    def with_load(uri, timeout, *options):
        snapshot = read_host(uri, timeout, *options)  # the test driver reports no domain statistics: add them
        domains = tuple(dataclasses.replace(d, cpu_time_ns=counter["cpu_time_ns"], memory_in_use_bytes=300 * MIB) for d in snapshot.domains)
        return dataclasses.replace(snapshot, domains=domains)

    monkeypatch.setattr(sync.hypervisor_host, "read_host", with_load)
    sync.sync_host(host)
    web = VirtualMachine.objects.get(uuid=WEB)
    assert web.cpu_cores_used is None and web.memory_in_use_bytes == 300 * MIB  # CPU needs two samples
    VirtualMachine.objects.filter(pk=web.pk).update(load_sampled_at=timezone.now() - timedelta(seconds=4))
    VmLoadSample.objects.create(vm=web, host=host, at=timezone.now() - timedelta(minutes=settings.LOAD_HISTORY_MINUTES + 1), cpu_cores_used=9)
    counter["cpu_time_ns"] += 3_000_000_000

    sync.sync_host(host)

    web.refresh_from_db()
    assert 0.7 < web.cpu_cores_used <= 0.75  # 3 s of CPU over a little more than 4 s
    assert list(VmLoadSample.objects.values_list("cpu_cores_used", flat=True)) == [web.cpu_cores_used]


def test_each_sync_keeps_the_1_s_rate_it_read_among_the_last_few_and_the_forecast_takes_their_median(tmp_path, monkeypatch):
    from inventory.dirty_rate import READINGS_KEPT, recent_dirty_rate

    host = HostFactory(name="h1", uri=NodeSpec(domains=[DomainSpec("web", WEB)]).write(tmp_path / "h1.xml"))
    readings = iter([96, 104, None, 98, 71, 100, 97])  # MB/s; None: a sync that read the 4 s window instead
    read_host = sync.hypervisor_host.read_host

    def with_rate(uri, timeout, *options):
        snapshot = read_host(uri, timeout, *options)
        rate = next(readings)
        measured = {"dirty_rate_bytes_s": rate * 1_000_000} if rate is not None else {"dirtied_in_window_bytes": 200 * MIB}
        domains = tuple(dataclasses.replace(d, cpu_time_ns=1, memory_in_use_bytes=300 * MIB, **measured) for d in snapshot.domains)
        return dataclasses.replace(snapshot, domains=domains)

    monkeypatch.setattr(sync.hypervisor_host, "read_host", with_rate)
    for _ in range(7):
        sync.sync_host(host)

    web = VirtualMachine.objects.get(uuid=WEB)
    assert [rate for _, rate in web.dirty_rate_readings] == [n * 1_000_000 for n in (104, 98, 71, 100, 97)][-READINGS_KEPT:]
    assert web.dirty_rate_bytes_s == 97_000_000 and recent_dirty_rate(web) == 98_000_000


def test_a_hosts_load_sums_its_running_vms_demand_against_its_capacity():
    host = HostFactory(cpu_count=4, memory_total_bytes=8 * 1024 * MIB)
    VirtualMachineFactory(host=host, cpu_cores_used=1.5, memory_in_use_bytes=1024 * MIB)
    VirtualMachineFactory(host=host, cpu_cores_used=None, memory_in_use_bytes=1024 * MIB)  # measured from its next sync
    VirtualMachineFactory(host=host, power_state="shut_off", cpu_cores_used=3.0)

    load = host_load(host.cpu_count, host.memory_total_bytes, host.vms.all())

    assert (load.cpu_cores_used, load.cpu_percent, load.memory_percent) == (1.5, 37.5, 25.0)
    assert (load.measured_vms, load.running_vms) == (1, 2)


def test_a_guest_whose_qemu_was_busy_keeps_its_last_memory_reading(tmp_path, monkeypatch):
    host = HostFactory(name="h1", uri=NodeSpec(domains=[DomainSpec("web", WEB)]).write(tmp_path / "h1.xml"))
    memory = iter([300 * MIB, None])  # None: its QEMU was busy, so libvirt skipped the reading
    read_host = sync.hypervisor_host.read_host

    def with_load(uri, timeout, *options):
        snapshot = read_host(uri, timeout, *options)
        in_use = next(memory)
        return dataclasses.replace(snapshot, domains=tuple(dataclasses.replace(d, cpu_time_ns=1, memory_in_use_bytes=in_use) for d in snapshot.domains))

    monkeypatch.setattr(sync.hypervisor_host, "read_host", with_load)
    sync.sync_host(host)
    sync.sync_host(host)

    assert VirtualMachine.objects.get(uuid=WEB).memory_in_use_bytes == 300 * MIB
    assert Host.objects.get(pk=host.pk).state == HostState.CONNECTED
