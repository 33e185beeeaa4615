"""The migration assistant's ranking, from plain facts: no database, no libvirt."""

from dataclasses import replace

from migrations_app.checks.report import CheckStatus
from migrations_app.checks.rules import DiskOnDatastore, NicOnNetwork, ok
from migrations_app.placement.rules import GIB, HostFacts, VmFacts, checks, place, rank

RESERVE = GIB // 2
VM = VmFacts(
    name="Web-01", memory_bytes=4 * GIB, host_id=1, host_name="kvm1", cluster_id=10,
    runs=ok("vm_runs", "Web-01 runs on kvm1."),
    disks=(DiskOnDatastore("vda", "/nfs/web.qcow2", 100, "nfs-a"),),
    nics=(NicOnNetwork(200, "prod"),),
)
HOST = HostFacts(
    id=2, name="kvm2", reachable=True, last_error="", in_maintenance=False, state_label="Connected",
    cluster_id=10, cluster_name="prod", cpu_baseline="EPYC",
    memory_total_bytes=64 * GIB, memory_free_bytes=48 * GIB, cpu_utilisation=20.0,
    datastores=frozenset({100}), networks=frozenset({200}),
)


def host(id: int, name: str, **changes) -> HostFacts:
    return replace(HOST, id=id, name=name, **changes)


def test_the_vms_own_host_is_not_a_candidate():
    ranking = rank(VM, [host(1, "kvm1"), host(2, "kvm2")], RESERVE)

    assert [p.host.name for p in ranking] == ["kvm2"]


def test_more_memory_left_after_the_move_ranks_higher_and_says_how_much():
    ranking = rank(VM, [host(2, "tight", memory_free_bytes=8 * GIB), host(3, "roomy", memory_free_bytes=60 * GIB)], RESERVE)

    assert [p.host.name for p in ranking] == ["roomy", "tight"]
    assert "56.0 GiB free after the move (88% of 64 GiB)" in ranking[0].reasons


def test_a_busy_cpu_ranks_lower_and_says_how_busy():
    ranking = rank(VM, [host(2, "busy", cpu_utilisation=90.0), host(3, "idle", cpu_utilisation=5.0)], RESERVE)

    assert [p.host.name for p in ranking] == ["idle", "busy"]
    assert "CPU 90% busy" in ranking[1].reasons


def test_migrations_to_and_from_a_host_lower_its_score():
    ranking = rank(VM, [host(2, "busy-link", incoming=1, outgoing=1), host(3, "quiet")], RESERVE)

    assert [p.host.name for p in ranking] == ["quiet", "busy-link"]
    assert "1 migration on the way in, 1 out" in ranking[1].reasons
    assert "no migration to or from it" in ranking[0].reasons
    assert ranking[0].score - ranking[1].score == 10


def test_the_vms_own_cluster_ranks_higher_and_another_cluster_says_the_cpu_is_compared_at_submission():
    ranking = rank(VM, [host(2, "elsewhere", cluster_id=11, cluster_name="lab"), host(3, "home")], RESERVE)

    assert [p.host.name for p in ranking] == ["home", "elsewhere"]
    assert "same cluster prod, CPU baseline EPYC" in ranking[0].reasons
    assert "cluster lab, not the VM's: libvirt compares CPUs when you submit" in ranking[1].reasons


def test_a_host_that_fails_a_check_is_listed_last_disabled_with_the_checks_sentence():
    hosts = [
        host(2, "no-nfs", datastores=frozenset()),
        host(3, "down", reachable=False, last_error="Failed to connect socket"),
        host(4, "closed", in_maintenance=True, state_label="In maintenance"),
        host(5, "full", memory_free_bytes=4 * GIB),
        host(6, "no-prod", networks=frozenset()),
        host(7, "fine"),
    ]

    ranking = rank(VM, hosts, RESERVE)

    assert [p.host.name for p in ranking][0] == "fine" and ranking[0].eligible and ranking[0].score > 0
    blocked = {p.host.name: p.blocked_by for p in ranking[1:]}
    assert all(not p.eligible and p.score == 0 for p in ranking[1:])
    assert blocked["no-nfs"].message == "Disk vda is on datastore nfs-a, which no-nfs does not mount."
    assert blocked["down"].message == "The destination host down is not reachable through libvirt: Failed to connect socket"
    assert blocked["closed"].message == "closed is in maintenance: it takes no new VMs."
    assert blocked["full"].name == "memory_free" and "the VM needs 4.0 GiB plus a 0.5 GiB reserve" in blocked["full"].message
    assert blocked["no-prod"].message == "no-prod lacks the network prod the VM's NICs use."


def test_memory_already_promised_to_incoming_migrations_counts_as_taken():
    ranking = rank(VM, [host(2, "promised", memory_free_bytes=8 * GIB, incoming_memory_bytes=4 * GIB, incoming=1)], RESERVE)

    assert ranking[0].blocked_by.name == "memory_free" and "after 4.0 GiB for migrations on their way" in ranking[0].blocked_by.message


def test_a_vm_that_does_not_run_can_go_nowhere_and_every_host_says_why():
    stopped = replace(VM, runs=replace(VM.runs, status=CheckStatus.FAIL, message="Web-01 is shut off, not running."))

    ranking = rank(stopped, [host(2, "kvm2"), host(3, "kvm3")], RESERVE)

    assert [p.blocked_by.message for p in ranking] == ["Web-01 is shut off, not running."] * 2


def test_an_unmeasured_cpu_counts_as_half_busy_and_says_so():
    ranking = rank(VM, [host(2, "new", cpu_utilisation=None), host(3, "half", cpu_utilisation=50.0)], RESERVE)

    assert ranking[0].score == ranking[1].score
    assert "CPU load not measured yet" in next(p for p in ranking if p.host.name == "new").reasons


def test_ties_go_by_name_so_the_ranking_is_stable():
    assert [p.host.name for p in rank(VM, [host(3, "kvm3"), host(2, "kvm2")], RESERVE)] == ["kvm2", "kvm3"]


def test_the_ranking_blocks_each_host_on_the_first_check_it_fails_with_that_checks_sentence():
    stopped = replace(VM, runs=replace(VM.runs, status=CheckStatus.FAIL, message="Web-01 is shut off, not running."))
    hosts = [
        host(2, "fine"),
        host(3, "down-and-closed", reachable=False, last_error="timeout", in_maintenance=True, state_label="In maintenance"),
        host(4, "closed-and-full", in_maintenance=True, state_label="In maintenance", memory_free_bytes=GIB),
        host(5, "no-nfs-no-prod", datastores=frozenset(), networks=frozenset()),
        host(6, "no-prod-and-full", networks=frozenset(), memory_free_bytes=GIB),
        host(7, "full", memory_free_bytes=GIB),
        host(8, "local-disk"),
    ]
    local = replace(VM, disks=(DiskOnDatastore("vdb", "/var/lib/libvirt/images/scratch.qcow2", None, ""),))

    for vm in (VM, stopped, local):
        for candidate in hosts:
            failures = [check for check in checks(vm, candidate, RESERVE) if check.status == CheckStatus.FAIL]
            assert place(vm, candidate, RESERVE).blocked_by == (failures[0] if failures else None), (vm.name, candidate.name)
