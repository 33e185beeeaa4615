"""Destinations for several VMs at once, from plain facts: no database, no libvirt."""

from dataclasses import replace

import pytest

from migrations_app.check_rules import DiskOnDatastore
from migrations_app.placement import GIB
from migrations_app.placement_plan import plan

from .test_placement import HOST, RESERVE, VM, host


def vm(name: str, **changes):
    return replace(VM, name=name, **changes)


def many_hosts():
    """Two clusters' worth: hosts 2-5 mount the VM's datastore, 6-9 another one, 10 is in
    maintenance, 11 unreachable."""
    hosts = [host(i, f"kvm{i}", memory_free_bytes=(40 + i) * GIB) for i in range(2, 6)]
    hosts += [host(i, f"kvm{i}", datastores=frozenset({101})) for i in range(6, 10)]
    hosts += [host(10, "kvm10", in_maintenance=True, state_label="In maintenance"), host(11, "kvm11", reachable=False, last_error="timeout")]
    return hosts


def test_a_batch_spreads_over_the_hosts_instead_of_piling_onto_the_best():
    moves = plan([vm(f"web{n}") for n in range(4)], many_hosts(), RESERVE)
    assert sorted(move.chosen.host.name for move in moves) == ["kvm2", "kvm3", "kvm4", "kvm5"]


def test_an_operators_pick_is_kept_when_the_host_can_take_the_vm_and_replaced_when_it_cannot():
    kept, replaced = plan([vm("web0"), vm("web1")], many_hosts(), RESERVE, preferred=[3, 7])
    assert kept.chosen.host.name == "kvm3"
    assert replaced.chosen.host.name in {"kvm2", "kvm4", "kvm5"}


@pytest.mark.parametrize("count", [1, 3, 8])
def test_ranking_only_the_hosts_sharing_the_vms_datastores_chooses_what_ranking_every_host_chooses(count):
    vms = [vm(f"web{n}", memory_bytes=(n + 1) * GIB) for n in range(count)]
    short = plan(vms, many_hosts(), RESERVE)
    full = plan(vms, many_hosts(), RESERVE, every_host=True)
    assert [m.chosen.host.id for m in short] == [m.chosen.host.id for m in full]
    assert {p.host.id for p in short[0].ranking} == {2, 3, 4, 5} - {VM.host_id}
    assert len(full[0].ranking) == 10 and not full[0].ranking[-1].eligible


def test_a_vm_no_host_can_take_is_ranked_against_every_host_so_its_plan_says_why():
    (move,) = plan([vm("big", memory_bytes=500 * GIB)], many_hosts(), RESERVE)
    assert move.chosen is None
    assert len(move.ranking) == 10
    assert "the vm needs 500.0 gib" in move.blocked_reason.lower()


def test_a_vm_on_a_local_disk_has_nowhere_to_go_and_the_reason_names_the_disk():
    local = vm("local", disks=(DiskOnDatastore("vda", "/var/lib/libvirt/images/local.qcow2", None, ""),))
    (move,) = plan([local], many_hosts(), RESERVE)
    assert move.chosen is None
    assert "vda" in move.blocked_reason


def test_with_no_other_host_the_plan_says_so():
    (move,) = plan([VM], [replace(HOST, id=VM.host_id, name="kvm1")], RESERVE)
    assert move.blocked_reason == "No other host is known for Web-01."
