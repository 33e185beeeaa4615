"""Inventory sync against libvirt's test driver: a real libvirt connection, fake hosts."""

import dataclasses
import uuid

import pytest
from auditlog.models import LogEntry

from inventory import sync
from inventory.choices import DatastoreKind, HostState, PowerState
from inventory.location import record_location
from inventory.models import Datastore, Host, Network, VirtualMachine
from tests.factories import ClusterFactory, HostFactory

from hypervisor.host import PoolFacts
from tests.unit.node_files import DirPoolSpec, DomainSpec, NodeSpec

pytestmark = pytest.mark.django_db

WEB = str(uuid.UUID(int=1))
DB = str(uuid.UUID(int=2))


def host_reading(tmp_path, name: str, node: NodeSpec, **fields) -> Host:
    return HostFactory(name=name, uri=node.write(tmp_path / f"{name}.xml"), state=HostState.DISCONNECTED, **fields)


def test_it_reads_host_facts_vms_datastores_and_networks(tmp_path):
    host = host_reading(tmp_path, "h1", NodeSpec(domains=[DomainSpec("web", WEB), DomainSpec("db", DB, state="shut_off", mac="52:54:00:00:00:02")]))

    outcome = sync.sync_host(host)

    assert outcome.reachable and outcome.vms_seen == 2
    host.refresh_from_db()
    assert host.state == HostState.CONNECTED
    assert host.cpu_count == 4 and host.memory_total_bytes == 8 * 1024**3
    assert host.last_seen is not None and host.last_error == ""
    web = VirtualMachine.objects.get(uuid=WEB)
    assert (web.name, web.host, web.power_state, web.memory_bytes) == ("web", host, PowerState.RUNNING, 256 * 1024**2)
    assert VirtualMachine.objects.get(uuid=DB).power_state == PowerState.SHUT_OFF
    datastore = Datastore.objects.get()
    assert (datastore.kind, datastore.source_key) == (DatastoreKind.NFS, "nfs://filer.example/export/vms")
    assert web.disks.get().datastore == datastore
    assert web.nics.get().network == Network.objects.get(name="prod")


def test_a_second_sync_of_an_unchanged_host_changes_nothing(tmp_path):
    host = host_reading(tmp_path, "h1", NodeSpec(domains=[DomainSpec("web", WEB)]))
    sync.sync_host(host)
    entries = LogEntry.objects.count()
    vm_before = VirtualMachine.objects.values().get(uuid=WEB)

    sync.sync_host(Host.objects.get(pk=host.pk))

    assert LogEntry.objects.count() == entries
    vm_after = VirtualMachine.objects.values().get(uuid=WEB)
    assert {k: v for k, v in vm_after.items() if k != "last_seen"} == {k: v for k, v in vm_before.items() if k != "last_seen"}


def test_the_same_nfs_export_on_two_hosts_is_one_shared_datastore(tmp_path):
    first = host_reading(tmp_path, "h1", NodeSpec())
    second = host_reading(tmp_path, "h2", NodeSpec())
    other = host_reading(tmp_path, "h3", NodeSpec(nfs_export="/export/other"))

    for host in (first, second, other):
        sync.sync_host(host)

    shared = Datastore.objects.get(source_key="nfs://filer.example/export/vms")
    assert set(shared.hosts.values_list("name", flat=True)) == {"h1", "h2"}
    assert Datastore.objects.count() == 2


def test_a_vm_that_stops_shows_shut_off_and_one_that_vanishes_shows_missing(tmp_path):
    node = NodeSpec(domains=[DomainSpec("web", WEB), DomainSpec("db", DB, mac="52:54:00:00:00:02")])
    host = host_reading(tmp_path, "h1", node)
    sync.sync_host(host)

    node.domains = [DomainSpec("web", WEB, state="shut_off")]
    node.write(tmp_path / "h1.xml")
    sync.sync_host(Host.objects.get(pk=host.pk))

    assert VirtualMachine.objects.get(uuid=WEB).power_state == PowerState.SHUT_OFF
    assert VirtualMachine.objects.get(uuid=DB).power_state == PowerState.MISSING
    assert LogEntry.objects.get_for_object(VirtualMachine.objects.get(uuid=WEB)).filter(changes__icontains="shut_off").exists()


def test_a_vm_found_running_on_another_host_moves_there(tmp_path):
    source = host_reading(tmp_path, "h1", NodeSpec(domains=[DomainSpec("web", WEB)]))
    destination = host_reading(tmp_path, "h2", NodeSpec())
    sync.sync_host(source)

    NodeSpec().write(tmp_path / "h1.xml")
    NodeSpec(domains=[DomainSpec("web", WEB)]).write(tmp_path / "h2.xml")
    sync.sync_host(Host.objects.get(pk=destination.pk))
    sync.sync_host(Host.objects.get(pk=source.pk))

    vm = VirtualMachine.objects.get(uuid=WEB)
    assert (vm.host.name, vm.power_state) == ("h2", PowerState.RUNNING)


@pytest.mark.parametrize("state", ["shut_off", "shutting_down"])
def test_a_domain_there_that_does_not_run_does_not_take_a_running_vm_away(tmp_path, state):
    # A stale shut-off definition; or the source of a finished migration whose QEMU is still
    # shutting down, which a sync read just after the move recorded the VM on for a second, so
    # that the next move, submitted at once, was refused as "not found, not running".
    running_on = host_reading(tmp_path, "h1", NodeSpec(domains=[DomainSpec("web", WEB)]))
    leftover_on = host_reading(tmp_path, "h2", NodeSpec(domains=[DomainSpec("web", WEB, state=state)]))

    sync.sync_host(running_on)
    sync.sync_host(leftover_on)

    vm = VirtualMachine.objects.get(uuid=WEB)
    assert (vm.host.name, vm.power_state) == ("h1", PowerState.RUNNING)


def test_an_unreachable_host_is_marked_disconnected_with_libvirts_reason(tmp_path, settings):
    settings.LIBVIRT_LOCAL_INSTALL, settings.LIBVIRT_URI_DIRECTORIES = True, [str(tmp_path)]
    host = HostFactory(uri=f"qemu+unix:///system?socket={tmp_path}/no-such-socket", state=HostState.CONNECTED)

    outcome = sync.sync_host(host)

    host.refresh_from_db()
    assert not outcome.reachable
    assert host.state == HostState.DISCONNECTED
    assert "no-such-socket" in host.last_error and "Failed to connect" in host.last_error


def test_a_host_in_maintenance_keeps_its_state_through_a_failed_sync(tmp_path):
    host = HostFactory(uri=f"qemu+unix:///system?socket={tmp_path}/gone", state=HostState.MAINTENANCE)

    sync.sync_host(host)

    host.refresh_from_db()
    assert host.state == HostState.MAINTENANCE and host.last_error


def test_a_bad_uri_is_reported_not_raised(db):
    host = HostFactory(uri="no-such-driver:///nowhere")

    outcome = sync.sync_host(host)

    assert not outcome.reachable and outcome.error


def test_sync_all_computes_the_cluster_cpu_baseline(tmp_path):
    cluster = ClusterFactory()
    host_reading(tmp_path, "h1", NodeSpec(), cluster=cluster)

    outcomes = sync.sync_all_hosts()

    cluster.refresh_from_db()
    assert [o.reachable for o in outcomes] == [True]
    # The test driver cannot baseline CPUs; what matters is that the reason is kept, not raised.
    assert cluster.cpu_baseline_model or cluster.cpu_baseline_error


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        ({}, {"kernel": 1, "user": 1, "idle": 1, "iowait": 0}, None),
        ({"kernel": 0, "user": 0, "idle": 0, "iowait": 0}, {"kernel": 10, "user": 30, "idle": 60, "iowait": 0}, 40.0),
        ({"kernel": 5, "user": 5, "idle": 5, "iowait": 5}, {"kernel": 5, "user": 5, "idle": 5, "iowait": 5}, None),
    ],
)
def test_cpu_utilisation_is_the_busy_share_between_two_samples(previous, current, expected):
    assert sync.cpu_utilisation(previous, current) == expected


def test_a_host_that_changed_its_pool_and_network_keeps_only_what_it_has_now(tmp_path):
    host = host_reading(tmp_path, "h1", NodeSpec())
    sync.sync_host(host)

    NodeSpec(network="backup", nfs_export="/export/other").write(tmp_path / "h1.xml")
    sync.sync_host(Host.objects.get(pk=host.pk))

    assert list(Datastore.objects.values_list("source_key", flat=True)) == ["nfs://filer.example/export/other"]
    assert list(host.networks.values_list("name", flat=True)) == ["backup"]


def test_a_vms_new_nic_replaces_the_one_it_lost_and_joins_its_network(tmp_path):
    node = NodeSpec(domains=[DomainSpec("web", WEB)])
    host = host_reading(tmp_path, "h1", node)
    sync.sync_host(host)

    node.domains = [DomainSpec("web", WEB, mac="52:54:00:00:00:09", disk_path="/srv/nfs1/other.qcow2")]
    node.write(tmp_path / "h1.xml")
    sync.sync_host(Host.objects.get(pk=host.pk))

    web = VirtualMachine.objects.get(uuid=WEB)
    assert [(nic.mac, nic.network.name) for nic in web.nics.all()] == [("52:54:00:00:00:09", "prod")]
    assert [(disk.target, disk.source, disk.datastore.source_key) for disk in web.disks.all()] == [
        ("vda", "/srv/nfs1/other.qcow2", "nfs://filer.example/export/vms")
    ]


def reading_that_a_migration_overtakes(monkeypatch, vm_uuid: str, arrives_on: Host) -> None:
    """Each host reading is taken, then the VM's migration ends on `arrives_on`, then the
    reading is applied: the order a slow host reading and a fast move can take."""
    read_host = sync.hypervisor_host.read_host

    def read_then_move(uri, timeout, *options):
        snapshot = read_host(uri, timeout, *options)
        record_location(VirtualMachine.objects.get(uuid=vm_uuid).pk, arrives_on)
        return snapshot

    monkeypatch.setattr(sync.hypervisor_host, "read_host", read_then_move)


def test_a_reading_of_the_old_host_taken_before_a_move_ended_does_not_take_the_vm_back(tmp_path, monkeypatch):
    source = host_reading(tmp_path, "h1", NodeSpec(domains=[DomainSpec("web", WEB)]))
    destination = host_reading(tmp_path, "h2", NodeSpec())
    sync.sync_host(source)
    reading_that_a_migration_overtakes(monkeypatch, WEB, destination)

    sync.sync_host(Host.objects.get(pk=source.pk))  # still lists web running: read before the switch

    vm = VirtualMachine.objects.get(uuid=WEB)
    assert (vm.host.name, vm.power_state) == ("h2", PowerState.RUNNING)


def test_a_reading_of_the_new_host_taken_before_the_vm_arrived_does_not_call_it_missing(tmp_path, monkeypatch):
    source = host_reading(tmp_path, "h1", NodeSpec(domains=[DomainSpec("web", WEB)]))
    destination = host_reading(tmp_path, "h2", NodeSpec())
    sync.sync_host(source)
    reading_that_a_migration_overtakes(monkeypatch, WEB, destination)

    sync.sync_host(Host.objects.get(pk=destination.pk))  # lists no web: read before it arrived

    vm = VirtualMachine.objects.get(uuid=WEB)
    assert (vm.host.name, vm.power_state) == ("h2", PowerState.RUNNING)


def test_a_reading_taken_after_the_move_still_decides(tmp_path):
    source = host_reading(tmp_path, "h1", NodeSpec(domains=[DomainSpec("web", WEB)]))
    destination = host_reading(tmp_path, "h2", NodeSpec())
    sync.sync_host(source)
    record_location(VirtualMachine.objects.get(uuid=WEB).pk, destination)

    sync.sync_host(Host.objects.get(pk=destination.pk))  # no web there after all
    sync.sync_host(Host.objects.get(pk=source.pk))  # web runs here

    vm = VirtualMachine.objects.get(uuid=WEB)
    assert (vm.host.name, vm.power_state) == ("h1", PowerState.RUNNING)


def datastores_by_name() -> list[tuple[str, list[str]]]:
    return [
        (store.name, sorted(store.hosts.values_list("name", flat=True)))
        for store in Datastore.objects.exclude(kind=DatastoreKind.NFS).order_by("name")
    ]


def test_two_hosts_own_directories_at_one_path_are_two_local_datastores(tmp_path):
    for name, marker in (("h1", "aaaa"), ("h2", "bbbb")):
        sync.sync_host(host_reading(tmp_path, name, NodeSpec(dir_pools=[DirPoolSpec("images", "/var/lib/libvirt/images", marker=marker)])))

    assert datastores_by_name() == [("images (h1)", ["h1"]), ("images (h2)", ["h2"])]


def test_one_directory_two_hosts_see_is_one_shared_datastore_wherever_they_mount_it(tmp_path):
    sync.sync_host(host_reading(tmp_path, "h1", NodeSpec(dir_pools=[DirPoolSpec("shared", "/srv/shared", marker="cafe")])))
    assert datastores_by_name() == [("shared (h1)", ["h1"])]

    sync.sync_host(host_reading(tmp_path, "h2", NodeSpec(dir_pools=[DirPoolSpec("vms", "/mnt/vms", marker="cafe")])))

    assert datastores_by_name() == [("shared", ["h1", "h2"])]
    assert Datastore.objects.get(name="shared").source_key == "directory://cafe"


def test_a_directory_that_cannot_be_marked_stays_local_to_its_host(tmp_path):
    first = host_reading(tmp_path, "h1", NodeSpec())
    second = host_reading(tmp_path, "h2", NodeSpec())
    pools = (PoolFacts("images", "dir", "dir:///var/lib/libvirt/images", "/var/lib/libvirt/images", True, 10, 5, local=True),)

    for host in (first, second):
        sync._apply_pools(host, pools)

    assert datastores_by_name() == [("images (h1)", ["h1"]), ("images (h2)", ["h2"])]
    assert sorted(Datastore.objects.exclude(kind=DatastoreKind.NFS).values_list("source_key", flat=True)) == [
        f"host-{first.pk}:dir:///var/lib/libvirt/images", f"host-{second.pk}:dir:///var/lib/libvirt/images",
    ]


def test_a_vms_disk_has_its_volumes_size_and_allocation(tmp_path):
    node = NodeSpec(domains=[DomainSpec("web", WEB)], nfs_volumes={"disk.qcow2": (10 * 1024**3, 3 * 1024**3)})

    sync.sync_host(host_reading(tmp_path, "h1", node))

    disk = VirtualMachine.objects.get(uuid=WEB).disks.get()
    assert (disk.capacity_bytes, disk.allocation_bytes) == (10 * 1024**3, 3 * 1024**3)


def test_a_disk_no_pool_holds_has_no_size(tmp_path):
    sync.sync_host(host_reading(tmp_path, "h1", NodeSpec(domains=[DomainSpec("web", WEB, disk_path="/elsewhere/disk.raw")])))

    disk = VirtualMachine.objects.get(uuid=WEB).disks.get()
    assert (disk.capacity_bytes, disk.allocation_bytes, disk.datastore) == (None, None, None)


def test_a_vm_whose_qemu_does_not_answer_keeps_what_was_known_and_its_host_stays_connected(tmp_path, monkeypatch):
    node = NodeSpec(domains=[DomainSpec("web", WEB), DomainSpec("db", DB, mac="52:54:00:00:00:02")])
    host = host_reading(tmp_path, "h1", node)
    sync.sync_host(host)
    read_host = sync.hypervisor_host.read_host

    def db_hangs(uri, timeout, *options):
        snapshot = read_host(uri, timeout, *options)
        return dataclasses.replace(
            snapshot, domains=tuple(d for d in snapshot.domains if d.uuid != DB), busy=((DB, "db"),),
        )

    monkeypatch.setattr(sync.hypervisor_host, "read_host", db_hangs)
    outcome = sync.sync_host(Host.objects.get(pk=host.pk))

    assert outcome.reachable
    assert Host.objects.get(pk=host.pk).state == HostState.CONNECTED
    db = VirtualMachine.objects.get(uuid=DB)
    assert (db.host, db.power_state) == (host, PowerState.RUNNING)
