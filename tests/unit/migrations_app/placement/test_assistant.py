"""The migration assistant on the inventory: facts read in a fixed number of queries, and the
ranking on the command line."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from inventory.choices import ClusterCpuMode, HostState
from inventory.models import Datastore, DatastoreMount, Network, NetworkAttachment, VirtualDisk, VirtualNic
from migrations_app.placement import store as assistant
from migrations_app.errors import MigrationRequestError
from migrations_app.models import MigrationTask
from migrations_app.options import MigrationOptions
from migrations_app.services import submit_migration
from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db
GIB = 1024**3


@pytest.fixture
def inventory():
    """A VM on kvm1 with a disk on a shared datastore and a NIC on a network; kvm2 and kvm3
    share both, kvm4 lacks the datastore, kvm5 is in maintenance."""
    cluster = ClusterFactory(name="prod", cpu_baseline_model="EPYC")
    hosts = {name: HostFactory(name=name, cluster=cluster, last_seen="2026-11-29T10:00Z", cpu_utilisation=10.0) for name in ("kvm1", "kvm2", "kvm3", "kvm4", "kvm5")}
    hosts["kvm5"].state = HostState.MAINTENANCE
    hosts["kvm5"].save()
    datastore = Datastore.objects.create(name="nfs-a", kind="netfs", source_key="nfs://filer/a")
    network = Network.objects.create(name="prod")
    for name, host in hosts.items():
        if name != "kvm4":
            DatastoreMount.objects.create(datastore=datastore, host=host, pool_name="nfs-a", active=True)
        NetworkAttachment.objects.create(network=network, host=host, active=True)
    vm = VirtualMachineFactory(name="Web-01", host=hosts["kvm1"], memory_bytes=4 * GIB)
    VirtualDisk.objects.create(vm=vm, target="vda", source="/nfs/web.qcow2", datastore=datastore)
    VirtualNic.objects.create(vm=vm, mac="52:54:00:00:00:01", network=network, network_name="prod")
    return vm, hosts


def test_it_ranks_the_hosts_that_can_take_the_vm_first_and_lists_the_others_with_why(inventory):
    vm, hosts = inventory
    busy = VirtualMachineFactory(host=hosts["kvm1"], memory_bytes=8 * GIB)
    MigrationTask.objects.create(vm=busy, source=hosts["kvm1"], destination=hosts["kvm2"])

    ranking = assistant.recommend(vm)

    assert [(p.host.name, p.eligible) for p in ranking] == [("kvm3", True), ("kvm2", True), ("kvm4", False), ("kvm5", False)]
    assert "1 migration on the way in, 0 out" in ranking[1].reasons
    assert "same cluster prod, CPU baseline EPYC" in ranking[0].reasons
    assert ranking[2].blocked_by.message == "Disk vda is on datastore nfs-a, which kvm4 does not mount."
    assert ranking[3].blocked_by.message == "kvm5 is in maintenance: it takes no new VMs."


def test_the_number_of_queries_does_not_grow_with_the_hosts(inventory, django_assert_max_num_queries):
    vm, _ = inventory
    for index in range(40):
        HostFactory(name=f"extra{index}")

    with django_assert_max_num_queries(9):
        ranking = assistant.recommend(vm)

    assert len(ranking) == 44


def test_the_cli_ranks_with_reasons_and_ends_with_json(inventory):
    vm, _ = inventory
    out, err = StringIO(), StringIO()

    call_command("vmotion", "recommend", "Web-01", "--json", stdout=out, stderr=err)

    lines = err.getvalue().strip().splitlines()
    assert lines[0].split()[0] == "1" and lines[0].split()[2] == "kvm2" and "same cluster prod" in lines[0]
    assert "cannot take it: kvm5 is in maintenance" in err.getvalue()
    result = json.loads(out.getvalue())
    assert result["vm"] == "Web-01"
    assert [c["host"] for c in result["candidates"]] == ["kvm2", "kvm3", "kvm4", "kvm5"]
    assert result["candidates"][3]["blocked_by"] == {"check": "destination_open", "message": "kvm5 is in maintenance: it takes no new VMs."}


def test_a_named_cpu_baseline_is_the_one_the_reasons_quote(db):
    cluster = ClusterFactory(name="old", cpu_baseline_model="EPYC", cpu_mode=ClusterCpuMode.NAMED, cpu_named_model="Westmere")
    vm = VirtualMachineFactory(host=HostFactory(cluster=cluster))
    HostFactory(name="peer", cluster=cluster)
    (peer,) = [p for p in assistant.recommend(vm) if p.host.name == "peer"]
    assert "same cluster old, CPU baseline Westmere" in peer.reasons


def test_a_degraded_host_takes_no_new_vm_and_says_why(db):
    vm = VirtualMachineFactory(host=HostFactory(name="source", uri="test:///default", last_seen=timezone.now(), last_error=""))
    failing = HostFactory(name="failing", uri="test:///default", last_seen=timezone.now(), last_error="", degraded_since=timezone.now(), degraded_reason="ECC errors on DIMM 3")
    (ranked,) = [p for p in assistant.recommend(vm) if p.host.name == "failing"]
    assert ranked.blocked_by.message == "failing is degraded (ECC errors on DIMM 3): it takes no new VMs."
    with pytest.raises(MigrationRequestError, match=r"failing is degraded \(ECC errors on DIMM 3\): it takes no new VMs"):
        submit_migration(vm, failing, MigrationOptions())
