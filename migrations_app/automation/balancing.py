"""Balancing a cluster from the inventory: the facts `balancing.recommend` ranks, read in a
fixed number of queries; applying a recommendation as an ordinary migration task; and the
scheduler's automatic rounds. One authority: a cluster whose balancing is off has no
recommendation applied, by any door; a cluster with an evacuation running, or with migrations
still under way into or out of it, gets no automatic round."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone

from inventory.choices import ACTIVE_POWER_STATES
from inventory.load import HostLoad, host_load
from inventory.models import Cluster, Host, VirtualMachine

from migrations_app.affinity import store as affinity_rules
from migrations_app.placement import store as assistant
from migrations_app.automation.balancing_rules import BalanceSettings, HostSupply, Recommendation, VmDemand, load_spread, recommend, spread
from migrations_app.choices import ACTIVE_STATES, AutomationLevel, EvacuationState, EventKind, TaskState
from migrations_app.errors import MigrationRequestError
from migrations_app.forecast.store import MoveForecast, forecast_moves
from migrations_app.models import BalancingPolicy, Evacuation, MigrationTask
from migrations_app.options import MigrationOptions
from migrations_app.services import submit_migration


@dataclass(frozen=True)
class ClusterBalance:
    cluster: Cluster
    policy: BalancingPolicy
    hosts: list[tuple[Host, HostLoad]]
    spread: float
    recommendations: list[Recommendation]
    vms: dict[int, VirtualMachine]


def cluster_balance(cluster: Cluster) -> ClusterBalance:
    policy = BalancingPolicy.of(cluster)
    hosts = list(Host.objects.filter(cluster=cluster).order_by("name"))
    vms = list(
        VirtualMachine.objects.filter(host__in=hosts, power_state__in=ACTIVE_POWER_STATES)
        .exclude(migration_tasks__state__in=ACTIVE_STATES)  # moving already
        .select_related("host")
    )
    facts = {fact.id: fact for fact in assistant.host_facts(cluster_id=cluster.pk)}
    supplies = [HostSupply(facts[host.pk], host.cpu_count, host.memory_total_bytes) for host in hosts if host.pk in facts]
    demands = [VmDemand(facts, vm.pk, vm.cpu_cores_used or 0.0, vm.memory_in_use_bytes or 0) for vm, facts in zip(vms, assistant.vm_facts_many(vms))]
    choices = BalanceSettings(threshold=policy.threshold, max_moves=policy.max_moves, reserve_bytes=settings.MIGRATION_MEMORY_RESERVE_BYTES)
    named = {rule for demand in demands for rule in demand.facts.rules}
    elsewhere = affinity_rules.where_they_run(named)
    moves = recommend(demands, supplies, choices, cooling=_cooling(vms, policy), elsewhere=elsewhere)
    loads = [(host, host_load(host.cpu_count, host.memory_total_bytes, [vm for vm in vms if vm.host_id == host.pk])) for host in hosts]
    return ClusterBalance(cluster, policy, loads, spread(demands, supplies), moves, {vm.pk: vm for vm in vms})


def cluster_loads(cluster: Cluster) -> tuple[list[tuple[Host, HostLoad]], float]:
    """Each host's load now, its running VMs summed by the database in one query, and the
    cluster's spread over them: what a page shows without computing recommendations."""
    running = Q(vms__power_state__in=ACTIVE_POWER_STATES)
    hosts = (
        Host.objects.filter(cluster=cluster).order_by("name").only("name", "state", "cpu_count", "memory_total_bytes", "cluster_id")
        .annotate(
            running_vms=Count("vms", filter=running), measured_vms=Count("vms", filter=running & Q(vms__cpu_cores_used__isnull=False)),
            cpu_used=Sum("vms__cpu_cores_used", filter=running), memory_used=Sum("vms__memory_in_use_bytes", filter=running),
        )
    )
    loads = [
        (host, HostLoad(round(host.cpu_used or 0.0, 3), host.cpu_count, host.memory_used or 0, host.memory_total_bytes, host.measured_vms, host.running_vms))
        for host in hosts
    ]
    return loads, load_spread([load for _, load in loads])


def forecast_recommendations(balance: ClusterBalance, **how) -> dict[int, MoveForecast]:
    """Each recommended move's predicted time and pause, from the inventory's measurements
    (`how`: as `forecast_moves` takes it)."""
    hosts = {host.pk: host for host, _ in balance.hosts}
    moves = [(balance.vms[r.vm.vm_id], hosts[r.destination_id]) for r in balance.recommendations]
    forecasts = forecast_moves(moves, MigrationOptions(), **how) if moves else []
    return {r.vm.vm_id: forecast for r, forecast in zip(balance.recommendations, forecasts)}


def _cooling(vms: list[VirtualMachine], policy: BalancingPolicy) -> frozenset[int]:
    since = timezone.now() - timedelta(minutes=policy.cooldown_minutes)
    moved = MigrationTask.objects.filter(vm__in=vms, state=TaskState.SUCCEEDED, finished_at__gte=since)
    return frozenset(moved.values_list("vm_id", flat=True))


class BalancingOff(MigrationRequestError):
    """The cluster's balancing is off: its recommendations are shown, never applied."""


def apply_refusal(policy: BalancingPolicy) -> str:
    """Why no recommendation of the cluster may be applied; empty when one may."""
    if policy.level == AutomationLevel.OFF:
        return (f"Balancing of cluster {policy.cluster.name} is off: no recommendation is applied. "
                "An administrator can set it to manual or automatic on the cluster's page.")
    return ""


def apply(balance: ClusterBalance, recommendation: Recommendation, *, requested_by=None, automatic: bool = False) -> MigrationTask:
    """Submit one recommendation as a migration task; refused while the cluster's balancing is off."""
    if refusal := apply_refusal(balance.policy):
        raise BalancingOff(refusal)
    vm = balance.vms[recommendation.vm.vm_id]
    destination = Host.objects.get(pk=recommendation.destination_id)
    why = f"Balancing cluster {balance.cluster.name}: load spread {recommendation.spread_before:.3f} -> {recommendation.spread_after:.3f}"
    task = submit_migration(vm, destination, MigrationOptions(reason=why), requested_by=requested_by)
    if automatic:
        task.log(EventKind.INFO, f"Automatic balancing of cluster {balance.cluster.name} (threshold {balance.policy.threshold}): {'; '.join(recommendation.reasons)}.")
    return task


def automatic_rounds() -> int:
    """Apply the recommendations of every automatic cluster whose interval has passed; how many moves."""
    applied = 0
    now = timezone.now()
    for policy in BalancingPolicy.objects.select_related("cluster").filter(level=AutomationLevel.AUTOMATIC):
        if policy.last_round_at and now < policy.last_round_at + timedelta(minutes=policy.interval_minutes):
            continue
        policy.last_round_at = now
        policy.save(update_fields=["last_round_at"])
        if _busy(policy.cluster):
            continue
        balance = cluster_balance(policy.cluster)
        for recommendation in balance.recommendations:
            try:
                apply(balance, recommendation, automatic=True)
                applied += 1
            except MigrationRequestError:
                break  # the inventory moved on; the next round sees it
    return applied


def _busy(cluster: Cluster) -> bool:
    """An evacuation, or migrations under way out of or into the cluster: balancing waits for
    them, as the loads it would read are about to change."""
    hosts = Host.objects.filter(cluster=cluster)
    if Evacuation.objects.filter(host__in=hosts, state=EvacuationState.RUNNING).exists():
        return True
    return MigrationTask.objects.filter(Q(source__in=hosts) | Q(destination__in=hosts), state__in=ACTIVE_STATES).exists()
