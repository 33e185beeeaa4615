"""Priority as bandwidth: a host's migration network carries a set budget each way (a host's
own, else its cluster's, e.g. 110 MiB/s for a gigabit link), shared by the migrations it
sends, and separately by those it receives, in proportion to their priority's weight.

A share is worked out by water-filling: a migration capped below its weighted share (by its
operator's bandwidth limit) keeps its cap, and what it leaves goes to the others by weight,
so the budget stays in use. A migration's bandwidth is the smaller of its shares at its two
ends. Each worker asks again while its migration runs, so shares follow as migrations start
and end (`engine`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from hypervisor import HypervisorError

from inventory.models import Host

from migrations_app.choices import Priority, TaskState
from migrations_app.models import MigrationTask

log = logging.getLogger(__name__)

PRIORITY_WEIGHT = {Priority.HIGH: 4, Priority.NORMAL: 2, Priority.LOW: 1}
MOVING_STATES = (TaskState.MIGRATING, TaskState.POST_COPY)


@dataclass(frozen=True)
class Claim:
    """One migration's claim on a budget: its weight and its own cap (None: uncapped)."""

    key: int
    weight: int
    cap: float | None = None


def water_fill(budget: float, claims: Iterable[Claim]) -> dict[int, float]:
    """Each claim's share of `budget`, by weight, no share above its cap."""
    shares: dict[int, float] = {}
    open_claims = list(claims)
    left = float(budget)
    while open_claims:
        per_weight = left / sum(claim.weight for claim in open_claims)
        capped = [claim for claim in open_claims if claim.cap is not None and claim.cap <= claim.weight * per_weight]
        if not capped:
            shares.update({claim.key: claim.weight * per_weight for claim in open_claims})
            break
        for claim in capped:
            shares[claim.key] = claim.cap
            left -= claim.cap
        open_claims = [claim for claim in open_claims if claim not in capped]
    return shares


def budget_of(host: Host) -> int | None:
    if host.migration_bandwidth_mib_s:
        return host.migration_bandwidth_mib_s
    return host.cluster.migration_bandwidth_mib_s if host.cluster_id else None


@dataclass(frozen=True)
class Share:
    mib_s: int | None  # what the migration may use now; None: neither a budget nor a cap
    explanation: str  # for the timeline

    def differs_from(self, other: Share | None) -> bool:
        return other is None or self.mib_s != other.mib_s


def share_for(task: MigrationTask) -> Share:
    """The bandwidth `task` may use now, among the migrations moving at its hosts (it counts
    as moving whatever its state, since it asks just before it starts)."""
    ends = [(task.source, "sends", "source_id"), (task.destination, "receives", "destination_id")]
    limits = [(budget_of(host), host, verb, field) for host, verb, field in ends]
    limits = [limit for limit in limits if limit[0]]
    if not limits:
        if task.bandwidth_mib_s:
            return Share(task.bandwidth_mib_s, f"Bandwidth capped at {task.bandwidth_mib_s} MiB/s by its operator.")
        return Share(None, "")
    weight = PRIORITY_WEIGHT[Priority(task.priority)]
    best: tuple[float, str] | None = None
    for budget, host, verb, field in limits:
        others = MigrationTask.objects.filter(**{field: host.pk}, state__in=MOVING_STATES).exclude(pk=task.pk)
        claims = [Claim(other.pk, PRIORITY_WEIGHT[Priority(other.priority)], other.bandwidth_mib_s) for other in others]
        claims.append(Claim(task.pk, weight, task.bandwidth_mib_s))
        mine = water_fill(budget, claims)[task.pk]
        why = (
            f"its share of the {budget} MiB/s {host.name} {verb} with, by priority "
            f"({Priority(task.priority).label.lower()}, weight {weight} of {sum(claim.weight for claim in claims)} "
            f"among {len(claims)} migration{'s' if len(claims) > 1 else ''})"
        )
        if best is None or mine < best[0]:
            best = (mine, why)
    mib_s = max(1, int(best[0]))
    return Share(mib_s, f"Bandwidth {mib_s} MiB/s: {best[1]}.")


class ShareKeeper:
    """Keeps a running migration at its share: asks again every REVIEW_SECONDS and tells
    libvirt when it changed. `read` returns the current share (None while it cannot be read)."""

    REVIEW_SECONDS = 1.0

    def __init__(self, started_with: Share, read, apply, note):
        self.current, self._read, self._apply, self._note = started_with, read, apply, note
        self._reviewed_at = time.monotonic()

    def review(self, post_copy: bool) -> None:
        if time.monotonic() - self._reviewed_at < self.REVIEW_SECONDS:
            return
        self._reviewed_at = time.monotonic()
        share = self._read()
        if share is None or share.mib_s is None or not share.differs_from(self.current):
            return
        try:
            self._apply(share.mib_s, post_copy)
        except HypervisorError as error:
            log.warning("could not set the migration's bandwidth to %s MiB/s: %s", share.mib_s, error)
            return
        self.current = share
        self._note(share.explanation)
