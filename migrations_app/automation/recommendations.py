"""Each cluster's balancing recommendations, computed in the background and stored, as DRS
computes its own every five minutes: the cluster page shows the stored ones with when they
were computed, and queues a computation when an operator asks for one now; no page computes
them. Applying one is judged again against the cluster as it is then (`balance.apply`).

The scheduler's round (every RECOMMENDATION_TICK) computes the clusters that are due, the
longest-waiting first, and stops once it has spent its budget, so that the scheduler's other
work keeps its pace; the others wait for the next round. A guest with no recent measurement
is measured by an inventory worker meanwhile, not waited for: its cluster is computed again
shortly after, with the measurement.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from redis.exceptions import RedisError

from inventory import enqueue
from inventory.models import Cluster

from migrations_app.automation import balancing as balance
from migrations_app.automation.balancing_rules import Recommendation
from migrations_app.choices import ACTIVE_STATES
from migrations_app.models import ClusterRecommendations, MigrationTask
from migrations_app.forecast.replay import MoveForecast, measured_ago

log = logging.getLogger(__name__)

# What one scheduler round spends at most; a cluster begun within it is finished.
ROUND_BUDGET_SECONDS = 1.0
# A cluster whose forecasts asked an inventory worker for a measurement is computed again
# this soon: within the time the worker's answer is kept (forecast.MEASUREMENT_KEPT_SECONDS).
MEASURED_AGAIN_AFTER = timedelta(seconds=20)


@dataclass(frozen=True)
class StoredMove:
    """One stored recommendation: the move, why, and its forecast or why there is none."""

    vm_id: int
    vm_name: str
    source_name: str
    destination_id: int
    destination_name: str
    spread_before: float
    spread_after: float
    reasons: tuple[str, ...]
    strategy: str = ""
    total_ms: int | None = None
    downtime_ms: int | None = None
    measured_at: datetime | None = None
    forecast_error: str = ""
    task_id: int | None = None  # the VM's migration under way, when one started since (not stored)

    @property
    def has_forecast(self) -> bool:
        return self.total_ms is not None

    @property
    def measured_ago(self) -> str:
        return measured_ago(self.measured_at)

    def as_json(self) -> dict:
        data = asdict(self)
        data.pop("task_id")
        data["reasons"] = list(self.reasons)
        data["measured_at"] = self.measured_at.isoformat() if self.measured_at else None
        return data

    @classmethod
    def from_json(cls, data: dict) -> StoredMove:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data and name != "task_id"}
        known["reasons"] = tuple(known.get("reasons", ()))
        known["measured_at"] = parse_datetime(known["measured_at"]) if known.get("measured_at") else None
        return cls(**known)


def _stored(recommendation: Recommendation, state: balance.ClusterBalance, forecast: MoveForecast | None) -> StoredMove:
    names = {host.pk: host.name for host, _ in state.hosts}
    move = StoredMove(
        vm_id=recommendation.vm.vm_id, vm_name=recommendation.vm.facts.name, source_name=names.get(recommendation.source_id, ""),
        destination_id=recommendation.destination_id, destination_name=names.get(recommendation.destination_id, ""),
        spread_before=recommendation.spread_before, spread_after=recommendation.spread_after, reasons=tuple(recommendation.reasons),
    )
    if forecast is None:
        return replace(move, forecast_error="not forecast")
    if forecast.forecast is None:
        return replace(move, forecast_error=forecast.error)
    prediction = forecast.forecast.prediction
    return replace(move, strategy=prediction.strategy, total_ms=prediction.total_ms, downtime_ms=prediction.downtime_ms, measured_at=forecast.forecast.measured_at)


def compute(cluster: Cluster, record: ClusterRecommendations | None = None) -> ClusterRecommendations:
    """Compute the cluster's recommendations and their forecasts now, and store them (in
    `record`, when the caller has already read it)."""
    if record is None:
        record, _ = ClusterRecommendations.objects.get_or_create(cluster=cluster)
    asked_at, began = record.due_at, time.monotonic()
    state = balance.cluster_balance(cluster)
    try:
        forecasts = balance.forecast_recommendations(state, wait_seconds=0)
    except RedisError as error:  # no inventory worker to ask: the moves stand without forecasts
        forecasts = {r.vm.vm_id: MoveForecast(None, f"Not measured yet: the queue did not answer ({error}).") for r in state.recommendations}
    moves = [_stored(r, state, forecasts.get(r.vm.vm_id)) for r in state.recommendations]
    now = timezone.now()
    measuring = any(not move.has_forecast and enqueue.NO_WORKER not in move.forecast_error for move in moves)
    due = now + (MEASURED_AGAIN_AFTER if measuring else timedelta(seconds=settings.RECOMMENDATION_INTERVAL_SECONDS))
    fields = {
        "computed_at": now, "spread": state.spread, "moves": [move.as_json() for move in moves], "error": "",
        "duration_ms": round((time.monotonic() - began) * 1000),
    }
    # A page that asked for a computation while this one ran gets its own.
    if not ClusterRecommendations.objects.filter(pk=record.pk, due_at=asked_at).update(due_at=due, **fields):
        ClusterRecommendations.objects.filter(pk=record.pk).update(**fields)
    record.refresh_from_db()
    return record


def due_round(budget_seconds: float = ROUND_BUDGET_SECONDS) -> int:
    """The scheduler's round: compute the clusters that are due, the longest-waiting first,
    until the budget is spent. Returns how many it computed."""
    began, computed = time.monotonic(), 0
    new = Cluster.objects.filter(stored_recommendations__isnull=True)
    ClusterRecommendations.objects.bulk_create([ClusterRecommendations(cluster=cluster) for cluster in new], ignore_conflicts=True)
    for record in ClusterRecommendations.objects.filter(due_at__lte=timezone.now()).select_related("cluster").order_by("due_at"):
        if time.monotonic() - began >= budget_seconds:
            break
        try:
            compute(record.cluster, record)
        except Exception as error:  # one cluster's failure must not stop the others'
            log.exception("balancing recommendations of cluster %s", record.cluster.name)
            retry = timezone.now() + timedelta(seconds=settings.RECOMMENDATION_INTERVAL_SECONDS)
            ClusterRecommendations.objects.filter(pk=record.pk).update(error=f"{type(error).__name__}: {error}"[:2000], due_at=retry)
        computed += 1
    return computed


@dataclass(frozen=True)
class Latest:
    """What the cluster page shows: the stored computation, each move with the migration
    under way for its VM if one started since."""

    record: ClusterRecommendations | None
    moves: list[StoredMove]

    @property
    def computed_at(self) -> datetime | None:
        return self.record.computed_at if self.record else None

    @property
    def queued(self) -> bool:
        return self.record is None or self.record.queued

    @property
    def pending(self) -> list[StoredMove]:
        """The moves that can still be applied: no migration of their VM under way."""
        return [move for move in self.moves if move.task_id is None]


def latest(cluster: Cluster) -> Latest:
    """The stored recommendations, read in two queries; nothing is computed."""
    record = ClusterRecommendations.objects.filter(cluster=cluster).first()
    moves = [StoredMove.from_json(data) for data in record.moves] if record else []
    if moves:
        moving = dict(MigrationTask.objects.filter(vm_id__in=[move.vm_id for move in moves], state__in=ACTIVE_STATES).values_list("vm_id", "pk"))
        moves = [replace(move, task_id=moving.get(move.vm_id)) for move in moves]
    return Latest(record, moves)


def request(cluster: Cluster) -> None:
    """Queue a computation: the scheduler's next round makes it."""
    ClusterRecommendations.request(cluster.pk)


def applied(cluster: Cluster, vm_ids: list[int]) -> None:
    """Some were applied: they leave the stored list, and the rest are computed again."""
    record = ClusterRecommendations.objects.filter(cluster=cluster).first()
    if record is not None and vm_ids:
        record.moves = [data for data in record.moves if data.get("vm_id") not in vm_ids]
        record.save(update_fields=["moves"])
    request(cluster)
