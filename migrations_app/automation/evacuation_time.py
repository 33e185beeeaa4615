"""How long moving several VMs off one host takes under the migration limits: each move
starts, in order, as soon as a slot allows it (the source's outgoing limit, its destination's
incoming limit, the global limit) and takes its forecast time. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TimedMove:
    destination_id: int
    duration_ms: int


def evacuation_ms(moves: Sequence[TimedMove], max_outgoing: int, max_incoming: int, max_concurrent: int) -> int:
    """When the last move ends, counted from the start of the first."""
    if moves and min(max_outgoing, max_incoming, max_concurrent) < 1:
        raise ValueError("Every migration limit must allow at least one migration.")
    now, pending, running = 0, list(moves), []  # running: (ends at, destination)
    while pending or running:
        incoming = Counter(destination for _, destination in running)
        for move in list(pending):
            if len(running) >= min(max_outgoing, max_concurrent):
                break
            if incoming[move.destination_id] < max_incoming:
                running.append((now + move.duration_ms, move.destination_id))
                incoming[move.destination_id] += 1
                pending.remove(move)
        now = min(ends for ends, _ in running)
        running = [(ends, destination) for ends, destination in running if ends > now]
    return now
