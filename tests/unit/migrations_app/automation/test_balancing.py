"""Balancing as a pure function: table-driven cases of capacity, thresholds, cooldown,
no undo, and hosts in maintenance."""

from dataclasses import replace

import pytest

from migrations_app.automation.balancing_rules import BalanceSettings, HostSupply, VmDemand, recommend, spread
from migrations_app.checks.rules import ok
from migrations_app.placement.rules import GIB, HostFacts, VmFacts

HOST = HostFacts(
    id=0, name="", reachable=True, last_error="", in_maintenance=False, state_label="Connected", cluster_id=1,
    cluster_name="prod", cpu_baseline="EPYC", memory_total_bytes=64 * GIB, memory_free_bytes=48 * GIB, cpu_utilisation=20.0,
    datastores=frozenset(), networks=frozenset(),
)


def host(id: int, **changes) -> HostSupply:
    return HostSupply(replace(HOST, id=id, name=f"kvm{id}", **changes), cpu_cores=8, memory_total_bytes=64 * GIB)


def vm(id: int, on: int, cores: float, memory_gib: float = 2) -> VmDemand:
    facts = VmFacts(name=f"vm{id}", memory_bytes=4 * GIB, host_id=on, host_name=f"kvm{on}", cluster_id=1, runs=ok("vm_runs", "runs"))
    return VmDemand(facts, id, cores, int(memory_gib * GIB))


def moves(result) -> list[tuple[str, int, int]]:
    return [(r.vm.facts.name, r.source_id, r.destination_id) for r in result]


def test_a_loaded_host_gives_a_busy_vm_to_the_idle_host_and_says_by_how_much_the_spread_drops():
    vms = [vm(1, on=1, cores=4), vm(2, on=1, cores=3), vm(3, on=2, cores=0.5)]

    [move] = recommend(vms, [host(1), host(2)], BalanceSettings(max_moves=1))

    assert (move.source_id, move.destination_id) == (1, 2) and move.vm.facts.name in ("vm1", "vm2")
    assert move.spread_after < move.spread_before == spread(vms, [host(1), host(2)])
    assert any("spread drops from" in reason for reason in move.reasons)


@pytest.mark.parametrize("threshold, expected", [(1, 0), (2, 0), (4, 1), (5, 1)])
def test_the_threshold_decides_whether_a_small_imbalance_is_worth_a_move(threshold, expected):
    vms = [vm(1, on=1, cores=1.2), vm(2, on=1, cores=0.4), vm(3, on=2, cores=0.5)]

    assert len(recommend(vms, [host(1), host(2)], BalanceSettings(threshold=threshold, max_moves=1))) == expected


def test_a_balanced_cluster_gets_no_recommendation_and_a_round_never_undoes_itself():
    vms = [vm(1, on=1, cores=2), vm(2, on=2, cores=2)]
    assert recommend(vms, [host(1), host(2)], BalanceSettings(threshold=5)) == []

    # Moved once, vm1 would be worth moving again (to kvm3): a round moves a VM only once.
    uneven = [vm(1, on=2, cores=0.5), vm(2, on=1, cores=3), vm(3, on=2, cores=5), vm(4, on=3, cores=1), vm(5, on=3, cores=4)]
    result = recommend(uneven, [host(1), host(2), host(3)], BalanceSettings(threshold=5, max_moves=4))
    assert moves(result) == [("vm1", 2, 1), ("vm4", 3, 1)]
    assert [(r.spread_before, r.spread_after) for r in result] == [(0.1497, 0.1031), (0.1031, 0.0805)]


def test_a_vm_in_its_cooldown_stays_and_another_moves_instead():
    vms = [vm(1, on=1, cores=4), vm(2, on=1, cores=3), vm(3, on=2, cores=0.5)]

    result = recommend(vms, [host(1), host(2)], BalanceSettings(max_moves=1), cooling=frozenset({1}))

    assert moves(result) == [("vm2", 1, 2)]


@pytest.mark.parametrize("on_kvm2, open_moves", [
    ([], [("vm1", 1, 2)]),  # open, the empty kvm2 would take the busy VM
    ([vm(5, on=2, cores=6), vm(6, on=2, cores=5)], [("vm6", 2, 3)]),  # open, the loaded kvm2 would give one
])
def test_hosts_in_or_entering_maintenance_neither_give_nor_take(on_kvm2, open_moves):
    vms = [vm(1, on=1, cores=4), vm(2, on=1, cores=3), vm(3, on=3, cores=0.5), *on_kvm2]
    assert moves(recommend(vms, [host(1), host(2), host(3)], BalanceSettings(threshold=5))) == open_moves

    result = recommend(vms, [host(1), host(2, in_maintenance=True), host(3)], BalanceSettings(threshold=5))

    assert moves(result) == [("vm2", 1, 3)]  # kvm1 and kvm3 even out between themselves


def test_a_host_without_the_memory_for_it_is_never_the_destination():
    vms = [vm(1, on=1, cores=4), vm(2, on=1, cores=3)]
    full = host(2, memory_free_bytes=2 * GIB)

    assert recommend(vms, [host(1), full], BalanceSettings(threshold=5)) == []


def test_out_of_range_settings_are_refused():
    with pytest.raises(ValueError, match="from 1 .* to 5"):
        BalanceSettings(threshold=6)
    with pytest.raises(ValueError, match="at least one move"):
        BalanceSettings(max_moves=0)


@pytest.mark.parametrize("must", [True, False])
def test_balancing_breaks_no_affinity_rule_must_or_should(must):
    from migrations_app.affinity.rules import RuleFacts
    from migrations_app.choices import RuleKind

    # vm1 and vm2 load kvm1; vm3, kept apart from both, idles on kvm2: moving either there
    # would even the load but break the rule.
    apart = RuleFacts(1, "apart", RuleKind.APART, must, ((1, "vm1"), (2, "vm2"), (3, "vm3")))
    vms = [vm(1, on=1, cores=4), vm(2, on=1, cores=3), vm(3, on=2, cores=0.5)]
    vms = [replace(v, facts=replace(v.facts, id=v.vm_id, rules=(apart,))) for v in vms]
    assert recommend(vms, [host(1), host(2)], BalanceSettings(max_moves=2)) == []
    # With a third host free of the rule's VMs, the busy VM goes there instead.
    moved = moves(recommend(vms, [host(1), host(2), host(3)], BalanceSettings(max_moves=1)))
    assert [destination for _, _, destination in moved] == [3]


def test_the_spread_after_a_move_worked_out_from_two_hosts_equals_the_spread_recomputed_from_all():
    from statistics import pstdev

    from migrations_app.automation.balancing_rules import _Shares

    hosts = [host(1), host(2), host(3, memory_total_bytes=32 * GIB)]
    hosts[2] = HostSupply(hosts[2].facts, cpu_cores=4, memory_total_bytes=32 * GIB)
    vms = [vm(1, on=1, cores=3, memory_gib=6), vm(2, on=1, cores=1.5), vm(3, on=2, cores=0.5, memory_gib=12), vm(4, on=3, cores=0.2)]
    shares = _Shares(vms, hosts)
    for moving in vms:
        for destination in (1, 2, 3):
            if destination == moving.facts.host_id:
                continue
            moved = [replace(v, facts=replace(v.facts, host_id=destination)) if v is moving else v for v in vms]
            recomputed = _Shares(moved, hosts)
            exact = pstdev(recomputed.cpu.values()) + pstdev(recomputed.memory.values())
            assert shares.spread_after(moving, destination) == pytest.approx(exact, abs=1e-9)
            assert spread(moved, hosts) == pytest.approx(exact, abs=1e-4)


def test_balancing_prefers_a_vm_on_shared_storage_to_one_whose_disks_it_would_copy():
    from migrations_app.checks.rules import CopyStore, DiskOnDatastore

    local = DiskOnDatastore("vda", "/srv/images/vm1.qcow2", 11, "images (kvm1)", copyable=True, copied_bytes=20 * GIB)
    shared = DiskOnDatastore("vda", "/mnt/nfs/vm2.qcow2", 10, "nfs")
    busy_local = replace(vm(1, on=1, cores=3.5), facts=replace(vm(1, on=1, cores=3.5).facts, disks=(local,)))
    busy_shared = replace(vm(2, on=1, cores=4), facts=replace(vm(2, on=1, cores=4).facts, disks=(shared,)))
    hosts = [host(1, datastores=frozenset({10, 11})), host(2, datastores=frozenset({10, 12}), copy_store=CopyStore(12, "images (kvm2)", 500 * GIB))]

    [move] = recommend([busy_local, busy_shared, vm(3, on=2, cores=0.5)], hosts, BalanceSettings(max_moves=1))

    # vm1 would even the load out more, but not by enough to be worth copying its 20 GiB.
    assert moves([move]) == [("vm2", 1, 2)] and not any("copied" in reason for reason in move.reasons)
    free_copy = [replace(h, facts=replace(h.facts, datastores=h.facts.datastores | {11})) for h in hosts]
    assert moves(recommend([busy_local, busy_shared, vm(3, on=2, cores=0.5)], free_copy, BalanceSettings(max_moves=1))) == [("vm1", 1, 2)]


def test_a_copy_worth_its_cost_is_recommended_saying_so():
    from migrations_app.checks.rules import CopyStore, DiskOnDatastore

    local = DiskOnDatastore("vda", "/srv/images/vm1.qcow2", 11, "images (kvm1)", copyable=True, copied_bytes=GIB)
    busy_local = replace(vm(1, on=1, cores=2), facts=replace(vm(1, on=1, cores=2).facts, disks=(local,)))
    hosts = [host(1, datastores=frozenset({11})), host(2, datastores=frozenset({12}), copy_store=CopyStore(12, "images (kvm2)", 500 * GIB))]

    # vm2, which would move without a copy, was moved moments ago.
    [move] = recommend([busy_local, vm(2, on=1, cores=2), vm(3, on=2, cores=0.5)], hosts, BalanceSettings(max_moves=1), cooling=frozenset({2}))

    assert moves([move]) == [("vm1", 1, 2)]
    assert "its disks are copied (1.0 GiB) to images (kvm2)" in move.reasons
