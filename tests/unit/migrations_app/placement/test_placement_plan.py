"""Destinations for several VMs at once, from plain facts: no database, no libvirt."""

from dataclasses import replace

import pytest

from migrations_app.checks.rules import DiskOnDatastore
from migrations_app.placement.rules import GIB
from migrations_app.placement.plan import plan

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


def test_an_evacuation_sends_vms_kept_apart_to_different_hosts_and_vms_kept_together_to_one():
    from migrations_app.affinity.rules import RuleFacts
    from migrations_app.choices import RuleKind

    apart = RuleFacts(1, "web-apart", RuleKind.APART, True, ((1, "web1"), (2, "web2")))
    together = RuleFacts(2, "app-db", RuleKind.TOGETHER, True, ((3, "app"), (4, "db")))
    vms = [vm("web1", id=1, rules=(apart,)), vm("web2", id=2, rules=(apart,)), vm("app", id=3, rules=(together,)), vm("db", id=4, rules=(together,))]
    # Two small hosts: memory alone would spread them one by one.
    hosts = [host(2, "kvm2", memory_free_bytes=20 * GIB), host(3, "kvm3", memory_free_bytes=20 * GIB)]
    where = {1: 1, 2: 1, 3: 1, 4: 1}  # all on kvm1, the host being evacuated
    web1, web2, app, db = plan(vms, hosts, RESERVE, where=where)
    assert web1.chosen.host.id != web2.chosen.host.id
    assert app.chosen.host.id == db.chosen.host.id


def test_a_must_rule_that_cannot_be_met_blocks_the_move_with_the_rule_named():
    from migrations_app.affinity.rules import RuleFacts
    from migrations_app.choices import RuleKind

    apart = RuleFacts(1, "web-apart", RuleKind.APART, True, ((1, "web1"), (2, "web2"), (3, "web3")))
    vms = [vm("web1", id=1, rules=(apart,))]
    # web2 and web3 run on the only two other hosts.
    (move,) = plan(vms, [host(2, "kvm2"), host(3, "kvm3")], RESERVE, where={1: 1, 2: 2, 3: 3})
    assert move.chosen is None
    assert "rule 'web-apart'" in move.blocked_reason and "already on" in move.blocked_reason


def test_a_should_rule_costs_points_but_does_not_block():
    from migrations_app.affinity.rules import RuleFacts
    from migrations_app.choices import RuleKind

    apart = RuleFacts(1, "web-apart", RuleKind.APART, False, ((1, "web1"), (2, "web2")))
    (move,) = plan([vm("web1", id=1, rules=(apart,))], [host(2, "kvm2", memory_free_bytes=60 * GIB), host(3, "kvm3")], RESERVE, where={2: 2})
    assert move.chosen.host.name == "kvm3"
    broken = next(p for p in move.ranking if p.host.name == "kvm2")
    assert broken.eligible and broken.soft_breaches and any("breaks rule 'web-apart'" in r for r in broken.reasons)


@pytest.mark.parametrize("shown", [1, 2, 8])
def test_ranking_the_first_few_hosts_out_of_reach_gives_what_ranking_every_host_gives_for_them(shown):
    vms = [vm(f"web{n}", memory_bytes=(n + 1) * GIB) for n in range(3)]
    full = plan(vms, many_hosts(), RESERVE, every_host=True)
    some = plan(vms, many_hosts(), RESERVE, every_host=True, blocked_shown=shown)

    for whole, part in zip(full, some):
        assert part.chosen == whole.chosen and len(part.ranking) + part.unranked == len(whole.ranking)
        assert [p for p in part.ranking if p.eligible] == [p for p in whole.ranking if p.eligible]
        assert [p for p in part.ranking if not p.eligible][:shown] == [p for p in whole.ranking if not p.eligible][:shown]


def test_the_host_an_operator_picked_out_of_reach_is_ranked_with_why_it_cannot_take_the_vm():
    (move,) = plan([vm("web0")], many_hosts(), RESERVE, preferred=[11], every_host=True, blocked_shown=1)

    picked = next(p for p in move.ranking if p.host.id == 11)
    assert not picked.eligible and "timeout" in picked.blocked_by.message and move.chosen.host.id != 11
