"""Proactive evacuation of failing hosts, which the scheduler runs every HEALTH_INTERVAL.

In each cluster whose policy is not off, a host in good standing is judged by the health
rules over its recent reads; the first rule that fires marks it degraded. A degraded host is
then left to the administrators under "recommend" (its pages recommend evacuating it), and
under "evacuate" put into maintenance exactly as an administrator would, with the reason in
the batch and in each move's timeline. A host in or entering maintenance is left alone, and a
degradation is evacuated at most once: an evacuation started since the host was marked, by
this policy or by hand, means it is in hand. When maintenance refuses (a host that does not
answer cannot be evacuated live), the refusal is recorded for the pages and the next round
tries again; nothing moves meanwhile.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F
from django.utils import timezone

from inventory import degradation
from inventory.choices import CLOSED_HOST_STATES
from inventory.models import Cluster, Host, HostHealthSample

from migrations_app.automation import maintenance
from migrations_app.choices import EventKind, ProactiveLevel
from migrations_app.errors import MigrationRequestError
from migrations_app.automation.health_rules import HealthSample, evaluate
from migrations_app.models import Evacuation, ProactivePolicy, ProactiveRefusal
from migrations_app.options import MigrationOptions

log = logging.getLogger(__name__)
MAX_REASON_LENGTH = 500  # a batch's reason


def tick(now: datetime | None = None) -> int:
    """One round over every cluster with a policy; how many evacuations it started."""
    now = now or timezone.now()
    started = 0
    for policy in ProactivePolicy.objects.select_related("cluster").exclude(level=ProactiveLevel.OFF):
        hosts = list(Host.objects.filter(cluster=policy.cluster).order_by("name"))
        samples = _samples_by_host(hosts)
        for host in hosts:
            if host.state in CLOSED_HOST_STATES:
                continue  # in maintenance already, or on its way
            if not host.is_degraded:
                host = _judge(host, policy, samples[host.pk], now)
            if host.is_degraded and policy.level == ProactiveLevel.EVACUATE:
                started += _evacuate(host, now)
    ProactiveRefusal.objects.filter(host__degraded_since__isnull=True).delete()  # restored since
    return started


def _samples_by_host(hosts: list[Host]) -> dict[int, list[HealthSample]]:
    by_host = defaultdict(list)
    for row in HostHealthSample.objects.filter(host__in=hosts).order_by():
        by_host[row.host_id].append(HealthSample(row.at, row.ok, row.latency_ms, row.memory_free_bytes, row.memory_total_bytes))
    return by_host


def _judge(host: Host, policy: ProactivePolicy, samples: list[HealthSample], now: datetime) -> Host:
    """The host, marked degraded if a health rule fires."""
    finding = evaluate(samples, policy.thresholds, now)
    if finding is None:
        return host
    try:
        host = degradation.mark_degraded(host, finding.detail, degradation.by_health_rule(finding.rule))
    except degradation.DegradationError:
        host.refresh_from_db()  # marked meanwhile, by an administrator: theirs stands
        return host
    log.warning("%s", degradation.describe(host))
    return host


def evacuation_reason(host: Host) -> str:
    return f"Automatic evacuation: {degradation.describe(host)}"[:MAX_REASON_LENGTH]


def _evacuate(host: Host, now: datetime) -> int:
    if Evacuation.objects.filter(host=host, created_at__gte=host.degraded_since).exists():
        return 0
    reason = evacuation_reason(host)
    try:
        evacuation = maintenance.enter(host, options=MigrationOptions(reason=reason))
    except MigrationRequestError as error:
        host.refresh_from_db()
        if host.state not in CLOSED_HOST_STATES:  # closed meanwhile: another scheduler's round got there first
            _record_refusal(host, str(error), now)
        return 0
    ProactiveRefusal.objects.filter(host=host).delete()
    for task in evacuation.batch.tasks.all():
        task.log(EventKind.INFO, f"{reason}.")
    log.warning("%s: evacuation #%s started", reason, evacuation.pk)
    return 1


def _record_refusal(host: Host, why: str, now: datetime) -> None:
    message = f"Could not evacuate {host.name} automatically: {why}"
    log.warning("%s", message)
    updated = ProactiveRefusal.objects.filter(host=host, degraded_since=host.degraded_since).update(
        attempts=F("attempts") + 1, last_tried_at=now, message=message,
    )
    if not updated:  # the first refusal of this degradation
        ProactiveRefusal.objects.update_or_create(
            host=host, defaults={"degraded_since": host.degraded_since, "attempts": 1, "last_tried_at": now, "message": message},
        )


@dataclass(frozen=True)
class DegradedHost:
    """A degraded host of a cluster, with what its policy did or advises."""

    host: Host
    why: str
    advice: str
    evacuation: Evacuation | None = None
    refusal: ProactiveRefusal | None = None


def degraded_hosts(cluster: Cluster, policy: ProactivePolicy) -> list[DegradedHost]:
    hosts = list(Host.objects.filter(cluster=cluster, degraded_since__isnull=False).order_by("name"))
    refusals = {refusal.host_id: refusal for refusal in ProactiveRefusal.objects.filter(host__in=hosts)}
    evacuations = {}
    for evacuation in Evacuation.objects.filter(host__in=hosts).order_by("created_at"):
        evacuations[evacuation.host_id] = evacuation  # the newest wins
    return [_advise(host, policy, evacuations.get(host.pk), refusals.get(host.pk)) for host in hosts]


def _advise(host: Host, policy: ProactivePolicy, evacuation: Evacuation | None, refusal: ProactiveRefusal | None) -> DegradedHost:
    why = degradation.describe(host)
    if evacuation is not None and evacuation.created_at < host.degraded_since:
        evacuation = None  # from before this degradation
    if refusal is not None and refusal.degraded_since != host.degraded_since:
        refusal = None
    if host.state in CLOSED_HOST_STATES:
        advice = f"{host.name} is {host.get_state_display().lower()}."
    elif evacuation is not None:
        advice = f"Evacuation #{evacuation.pk} {evacuation.get_state_display().lower()}; the policy does not evacuate it again until it is restored and marked anew."
    elif refusal is not None:
        advice = f"{refusal.message} (tried {refusal.attempts} time{'s' if refusal.attempts != 1 else ''}; tries again every round)."
    elif policy.level == ProactiveLevel.EVACUATE:
        advice = f"The next round evacuates {host.name}."
    elif policy.level == ProactiveLevel.RECOMMEND and not host.is_reachable:
        advice = f"Evacuating {host.name} is recommended once it answers again: a host that does not answer cannot be evacuated live."
    elif policy.level == ProactiveLevel.RECOMMEND:
        advice = f"Evacuating {host.name} is recommended: enter maintenance to move its VMs off it."
    else:
        advice = "The cluster's proactive policy is off: nothing is done about it."
    return DegradedHost(host, why, advice, evacuation, refusal)


def advice_for(host: Host) -> str:
    """What its cluster's policy did or advises about one degraded host, for its page."""
    policy = ProactivePolicy.objects.filter(cluster_id=host.cluster_id).first() or ProactivePolicy(level=ProactiveLevel.OFF)
    evacuation = Evacuation.objects.filter(host=host).order_by("-created_at").first()
    refusal = ProactiveRefusal.objects.filter(host=host).first()
    return _advise(host, policy, evacuation, refusal).advice
