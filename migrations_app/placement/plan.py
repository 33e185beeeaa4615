"""Destinations for several VMs at once: each VM ranked in turn with the moves already
planned counted against their hosts, so a batch spreads instead of piling onto the host that
looked best for the first VM. Pure, like `placement`: the wizard, maintenance and balancing
plan through `plan`.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from migrations_app.placement.rules import CHECK_ORDER, NOWHERE, WEIGHTS, HostFacts, Placement, VmFacts, Weights, place, rank, ranking_order


@dataclass(frozen=True)
class PlannedMove:
    vm: VmFacts
    ranking: tuple[Placement, ...]  # every other host for this VM, with the earlier moves counted
    chosen: Placement | None  # None when no host can take the VM
    unranked: int = 0  # other hosts left out of the ranking (`blocked_shown`), none of which can take the VM

    @property
    def blocked_reason(self) -> str:
        """Why no host can take the VM: the failure of the host that came closest, the one
        that passed the most checks (a host short of memory says more than one in maintenance)."""
        if self.chosen is not None:
            return ""
        if not self.ranking:
            return f"No other host is known for {self.vm.name}."
        closest = max(self.ranking, key=lambda p: CHECK_ORDER.index(p.blocked_by.name) if p.blocked_by.name in CHECK_ORDER else -1)
        return closest.blocked_by.message


def plan(
    vms: Sequence[VmFacts],
    hosts: Sequence[HostFacts],
    reserve_bytes: int,
    preferred: Sequence[int | None] = (),
    weights: Weights = WEIGHTS,
    every_host: bool = False,
    where: Mapping[int, int] = NOWHERE,
    blocked_shown: int | None = None,
) -> list[PlannedMove]:
    """One move per VM, in order. `preferred[i]` is the host id an operator picked for VM i:
    it is kept when that host can take the VM, otherwise the best host is chosen.

    Each ranking holds the hosts that could take the VM; `every_host` adds those that
    cannot, each with its reason, for a page that shows them. Without it a plan for 200 VMs
    among 2,500 hosts ranks each VM among the few dozen hosts that share its datastores and
    networks instead of all of them. A VM no host can take is always ranked against every
    host, so its plan says why.

    `blocked_shown`, with `every_host`, is for a page that shows only the first few hosts
    that cannot take the VM: the hosts it cannot reach (they lack its datastores or networks,
    do not answer, or are in maintenance) are then ranked only as far as the first
    `blocked_shown` of them by name, with the operator's pick, and the rest are counted in
    `unranked`; ranking thousands of them would only write reasons no one reads.

    `where` holds the host of each VM the batch's affinity rules name. The batch's own VMs
    count as unplaced until their turn, then where they are planned to go: two VMs kept
    together leave a host for the same one, and two kept apart for different ones."""
    facts = {host.id: host for host in hosts}
    reach = _Reach(hosts)
    placed = dict(where)
    for vm in vms:
        placed.pop(vm.id, None)
    moves = []
    for index, vm in enumerate(vms):
        wanted = preferred[index] if index < len(preferred) else None
        whole = every_host and blocked_shown is None
        candidates = list(facts.values()) if whole else [facts[id] for id in reach.hosts_for(vm)]
        ranking = tuple(rank(vm, candidates, reserve_bytes, weights, placed))
        unranked = 0
        if not whole and not (ranking and ranking[0].eligible):
            ranking = tuple(rank(vm, list(facts.values()), reserve_bytes, weights, placed))
        elif every_host and not whole:
            ranking, unranked = _with_first_blocked(vm, ranking, facts, blocked_shown, wanted, reserve_bytes, weights, placed)
        chosen = next((p for p in ranking if p.host.id == wanted and p.eligible), None)
        if chosen is None:
            chosen = ranking[0] if ranking and ranking[0].eligible else None
        moves.append(PlannedMove(vm, ranking, chosen, unranked))
        if chosen is not None:
            _count_move(facts, vm, chosen.host.id)
        if vm.id is not None:
            placed[vm.id] = chosen.host.id if chosen is not None else vm.host_id
    return moves


def _with_first_blocked(vm, ranking, facts, shown, wanted, reserve_bytes, weights, placed) -> tuple[tuple[Placement, ...], int]:
    """The ranking with the first `shown` hosts out of the VM's reach by name (each blocked,
    with why) and the host the operator picked; how many others it leaves out."""
    ranked = {placement.host.id for placement in ranking}
    others = [host for host in facts.values() if host.id not in ranked and host.id != vm.host_id]
    added = heapq.nsmallest(shown, others, key=lambda host: host.name)  # the order `rank` gives the blocked
    added += [host for host in others if host.id == wanted and host not in added]
    placements = [place(vm, host, reserve_bytes, weights, placed) for host in added]
    return tuple(sorted(ranking + tuple(placements), key=ranking_order)), len(others) - len(added)


class _Reach:
    """The hosts a VM's disks and networks allow, found once per set of datastores and
    networks: what rules a host out this way does not change while a plan is made."""

    def __init__(self, hosts: Sequence[HostFacts]) -> None:
        self._open = [host for host in hosts if host.reachable and not host.in_maintenance]
        self._known: dict[tuple[frozenset, frozenset], list[int]] = {}

    def hosts_for(self, vm: VmFacts) -> list[int]:
        fixed = [disk for disk in vm.disks if not disk.copyable]
        if any(disk.datastore_id is None for disk in fixed):
            return []  # a local disk that cannot be copied: no other host can read it
        # A disk a move can copy does not rule a host out: whether it has room is judged per host.
        copies = len(fixed) < len(vm.disks)
        key = (frozenset(disk.datastore_id for disk in fixed), frozenset(nic.network_id for nic in vm.nics), copies)
        if key not in self._known:
            datastores, networks, _ = key
            self._known[key] = [
                host.id for host in self._open
                if datastores <= host.datastores and networks <= host.networks and (not copies or host.copy_store is not None)
            ]
        return self._known[key]


def _count_move(facts: dict[int, HostFacts], vm: VmFacts, destination_id: int) -> None:
    """What a planned move takes from its hosts: memory and a migration on the way in, a
    migration on the way out."""
    destination = facts[destination_id]
    facts[destination_id] = replace(
        destination, incoming=destination.incoming + 1, incoming_memory_bytes=destination.incoming_memory_bytes + vm.memory_bytes
    )
    if vm.host_id in facts:
        source = facts[vm.host_id]
        facts[vm.host_id] = replace(source, outgoing=source.outgoing + 1)
