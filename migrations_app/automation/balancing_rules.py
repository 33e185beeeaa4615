"""Balancing recommendations for one cluster, like DRS: moves that even out the hosts' load,
each with the spread before and after. Pure: plain facts in, recommendations out.

A host's load is its running VMs' demand against its capacity, for CPU and for memory; the
cluster's spread is the standard deviation of the hosts' CPU shares plus that of their memory
shares. Each round picks, greedily, the move that lowers the spread most, as long as it lowers
it by at least the threshold's minimum, up to `max_moves`. Every move passes the same checks
as the migration assistant, affinity rules included: balancing breaks neither a "must" nor a
"should" rule. Hosts in or entering maintenance neither give nor take VMs, and a VM moved
within the cooldown stays put: together with the minimum gain, no round undoes the last
one's moves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from math import sqrt
from typing import TYPE_CHECKING

from migrations_app.checks.rules import copies_disks
from migrations_app.placement.rules import NOWHERE, HostFacts, VmFacts, place

if TYPE_CHECKING:  # a type only: the rules load without Django, which inventory.load needs
    from inventory.load import HostLoad

# Minimum drop of the spread for a move, by threshold: 1 is conservative (only big
# imbalances are worth a migration), 5 aggressive.
MIN_GAIN_BY_THRESHOLD = {1: 0.20, 2: 0.10, 3: 0.05, 4: 0.02, 5: 0.01}
# A move that copies the VM's disks (a VM on its host's own storage) costs more than one that
# moves memory alone: it must also gain the threshold's minimum once more, and this much for
# each GiB it copies, so that balancing prefers VMs on shared storage.
DISK_COPY_GAIN_PER_GIB = 0.01


@dataclass(frozen=True)
class VmDemand:
    facts: VmFacts  # what the placement checks read (host_id is where it runs)
    vm_id: int
    cpu_cores: float
    memory_bytes: int  # in use


@dataclass(frozen=True)
class HostSupply:
    facts: HostFacts
    cpu_cores: int
    memory_total_bytes: int


@dataclass(frozen=True)
class BalanceSettings:
    threshold: int = 3
    max_moves: int = 4
    reserve_bytes: int = 512 * 1024**2

    def __post_init__(self) -> None:
        if self.threshold not in MIN_GAIN_BY_THRESHOLD:
            raise ValueError(f"The threshold goes from 1 (conservative) to 5 (aggressive), not {self.threshold}.")
        if self.max_moves < 1:
            raise ValueError("A round makes at least one move.")


@dataclass(frozen=True)
class Recommendation:
    vm: VmDemand
    source_id: int
    destination_id: int
    spread_before: float
    spread_after: float
    reasons: tuple[str, ...]


def spread(vms: Sequence[VmDemand], hosts: Sequence[HostSupply]) -> float:
    """Standard deviation of the hosts' CPU shares plus that of their memory shares."""
    if len(hosts) < 2:
        return 0.0
    return round(_Shares(vms, hosts).spread(), 4)


def load_spread(loads: Sequence[HostLoad]) -> float:
    """`spread` from the hosts' loads as a page reads them (`inventory.load.HostLoad`)."""
    if len(loads) < 2:
        return 0.0
    cpu = [_share(load.cpu_cores_used, load.cpu_cores) for load in loads]
    memory = [_share(load.memory_in_use_bytes, load.memory_total_bytes) for load in loads]
    return round(_deviation(sum(cpu), sum(x * x for x in cpu), len(loads)) + _deviation(sum(memory), sum(x * x for x in memory), len(loads)), 4)


class _Shares:
    """Each host's CPU and memory share with the sums that give their standard deviations,
    so the spread after one move is worked out from the two hosts it changes, not all of them."""

    def __init__(self, vms: Sequence[VmDemand], hosts: Sequence[HostSupply]) -> None:
        self.capacity = {host.facts.id: (host.cpu_cores, host.memory_total_bytes) for host in hosts}
        cpu = {host_id: 0.0 for host_id in self.capacity}
        memory = dict(cpu)
        for vm in vms:
            if vm.facts.host_id in cpu:
                cpu[vm.facts.host_id] += vm.cpu_cores
                memory[vm.facts.host_id] += vm.memory_bytes
        self.cpu = {id: _share(load, self.capacity[id][0]) for id, load in cpu.items()}
        self.memory = {id: _share(load, self.capacity[id][1]) for id, load in memory.items()}
        self.count = len(self.capacity)
        self.sums = [sum(self.cpu.values()), sum(x * x for x in self.cpu.values()), sum(self.memory.values()), sum(x * x for x in self.memory.values())]

    def spread(self) -> float:
        cpu_sum, cpu_squares, memory_sum, memory_squares = self.sums
        return _deviation(cpu_sum, cpu_squares, self.count) + _deviation(memory_sum, memory_squares, self.count)

    def spread_after(self, vm: VmDemand, destination_id: int) -> float:
        """The spread with `vm` moved from its host to `destination_id`."""
        source_id = vm.facts.host_id
        cpu_sum, cpu_squares, memory_sum, memory_squares = self.sums
        for shares, index, load in ((self.cpu, 0, vm.cpu_cores), (self.memory, 1, vm.memory_bytes)):
            was_source, was_destination = shares[source_id], shares[destination_id]
            now_source = was_source - _share(load, self.capacity[source_id][index])
            now_destination = was_destination + _share(load, self.capacity[destination_id][index])
            change = now_source + now_destination - was_source - was_destination
            change_squares = now_source**2 + now_destination**2 - was_source**2 - was_destination**2
            if index == 0:
                cpu_sum, cpu_squares = cpu_sum + change, cpu_squares + change_squares
            else:
                memory_sum, memory_squares = memory_sum + change, memory_squares + change_squares
        return _deviation(cpu_sum, cpu_squares, self.count) + _deviation(memory_sum, memory_squares, self.count)


def _share(load: float, capacity: float) -> float:
    return load / capacity if capacity else 0.0


def _deviation(total: float, squares: float, count: int) -> float:
    """The population standard deviation from the sum and the sum of squares."""
    mean = total / count
    return sqrt(max(squares / count - mean * mean, 0.0))


def recommend(
    vms: Sequence[VmDemand],
    hosts: Sequence[HostSupply],
    settings: BalanceSettings,
    cooling: frozenset[int] = frozenset(),
    elsewhere: Mapping[int, int] = NOWHERE,
) -> list[Recommendation]:
    """The moves, in order, that even out the cluster; `cooling` holds the VMs moved recently,
    `elsewhere` the host of each VM the rules name that is not among `vms` (on its way somewhere)."""
    open_hosts = [host for host in hosts if host.facts.reachable and not host.facts.in_maintenance]
    placed = list(vms)
    moves: list[Recommendation] = []
    arriving: dict[int, int] = {}  # memory of the VMs this round sends to each host
    for _ in range(settings.max_moves):
        before = spread(placed, open_hosts)
        best = _best_move(placed, open_hosts, settings, cooling | {move.vm.vm_id for move in moves}, before, arriving, elsewhere)
        if best is None or before - best[2] < MIN_GAIN_BY_THRESHOLD[settings.threshold]:
            break
        (index, destination), after, _judged = best
        vm = placed[index]
        moves.append(Recommendation(vm, vm.facts.host_id, destination.facts.id, before, after, _reasons(vm, destination, before, after)))
        placed[index] = replace(vm, facts=replace(vm.facts, host_id=destination.facts.id))
        arriving[destination.facts.id] = arriving.get(destination.facts.id, 0) + vm.facts.memory_bytes
    return moves


def _best_move(placed, hosts, settings, frozen, before, arriving, elsewhere):
    """The eligible move that lowers the spread most, a move that copies disks judged by its
    spread plus the copy's cost: each candidate's spread is worked out first, and only one
    that would beat the best so far is checked for eligibility. (move, spread, as judged)."""
    by_id = {host.facts.id: host for host in hosts}
    where = {**elsewhere, **{vm.vm_id: vm.facts.host_id for vm in placed}}
    shares = _Shares(placed, hosts)
    best = None
    for index, vm in enumerate(placed):
        if vm.vm_id in frozen or vm.facts.host_id not in by_id:
            continue  # cooling down, or on a host that neither gives nor takes
        for destination in hosts:
            if destination.facts.id == vm.facts.host_id:
                continue
            after = round(shares.spread_after(vm, destination.facts.id), 4)
            judged = after + _copy_cost(vm, destination, settings)
            if judged >= before or (best is not None and judged >= best[2]):
                continue
            facts = replace(destination.facts, incoming_memory_bytes=destination.facts.incoming_memory_bytes + arriving.get(destination.facts.id, 0))
            placement = place(vm.facts, facts, settings.reserve_bytes, where=where)
            if placement.eligible and not placement.soft_breaches:
                best = ((index, destination), after, judged)
    return best


def _copy_cost(vm: VmDemand, destination: HostSupply, settings: BalanceSettings) -> float:
    copied = copies_disks(vm.facts.disks, destination.facts.datastores) if vm.facts.disks else 0
    return MIN_GAIN_BY_THRESHOLD[settings.threshold] + DISK_COPY_GAIN_PER_GIB * copied / 1024**3 if copied else 0.0


def _reasons(vm: VmDemand, destination: HostSupply, before: float, after: float) -> tuple[str, ...]:
    copied = copies_disks(vm.facts.disks, destination.facts.datastores) if vm.facts.disks else 0
    copy = (f"its disks are copied ({copied / 1024**3:.1f} GiB) to {destination.facts.copy_store.name}",) if copied else ()
    return (
        f"{vm.facts.name} uses {vm.cpu_cores:.2f} cores and {vm.memory_bytes / 1024**3:.1f} GiB",
        f"{destination.facts.name} has room for it",
        *copy,
        f"the cluster's load spread drops from {before:.3f} to {after:.3f}",
    )
