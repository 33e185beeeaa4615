"""Destinations for several VMs at once: each VM ranked in turn with the moves already
planned counted against their hosts, so a batch spreads instead of piling onto the host that
looked best for the first VM. Pure, like `placement`: the wizard, maintenance and balancing
plan through `plan`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from .placement import WEIGHTS, HostFacts, Placement, VmFacts, Weights, rank


@dataclass(frozen=True)
class PlannedMove:
    vm: VmFacts
    ranking: tuple[Placement, ...]  # every other host for this VM, with the earlier moves counted
    chosen: Placement | None  # None when no host can take the VM

    @property
    def blocked_reason(self) -> str:
        """Why no host can take the VM: the best-ranked host's failing check."""
        if self.chosen is not None:
            return ""
        if not self.ranking:
            return f"No other host is known for {self.vm.name}."
        return self.ranking[0].blocked_by.message


def plan(
    vms: Sequence[VmFacts],
    hosts: Sequence[HostFacts],
    reserve_bytes: int,
    preferred: Sequence[int | None] = (),
    weights: Weights = WEIGHTS,
) -> list[PlannedMove]:
    """One move per VM, in order. `preferred[i]` is the host id an operator picked for VM i:
    it is kept when that host can take the VM, otherwise the best host is chosen."""
    facts = {host.id: host for host in hosts}
    moves = []
    for index, vm in enumerate(vms):
        ranking = tuple(rank(vm, list(facts.values()), reserve_bytes, weights))
        wanted = preferred[index] if index < len(preferred) else None
        chosen = next((p for p in ranking if p.host.id == wanted and p.eligible), None)
        if chosen is None:
            chosen = ranking[0] if ranking and ranking[0].eligible else None
        moves.append(PlannedMove(vm, ranking, chosen))
        if chosen is not None:
            _count_move(facts, vm, chosen.host.id)
    return moves


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
