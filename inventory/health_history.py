"""A host's health history: one sample per inventory read (did libvirt answer, how long the
read took, the host's free memory then), kept HEALTH_HISTORY_MINUTES for the health rules
and summed up on the host's page. Metrics, so kept out of the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from django.conf import settings

from .models import Host, HostHealthSample


def record(host: Host, *, ok: bool, latency_ms: int, at: datetime, memory_free_bytes: int | None = None, memory_total_bytes: int | None = None) -> None:
    HostHealthSample.objects.create(
        host=host, at=at, ok=ok, latency_ms=latency_ms, memory_free_bytes=memory_free_bytes, memory_total_bytes=memory_total_bytes,
    )
    HostHealthSample.objects.filter(host=host, at__lt=at - timedelta(minutes=settings.HEALTH_HISTORY_MINUTES)).delete()


@dataclass(frozen=True)
class HealthSummary:
    reads: int
    failed: int
    since: datetime | None  # the oldest read kept
    median_latency_ms: int | None
    slowest_latency_ms: int | None
    memory_free_percent: float | None  # at the newest read that answered


def summary(host: Host) -> HealthSummary:
    samples = list(HostHealthSample.objects.filter(host=host).order_by("-at"))
    answered = [sample for sample in samples if sample.ok]
    latencies = [sample.latency_ms for sample in answered if sample.latency_ms is not None]
    newest = answered[0] if answered else None
    return HealthSummary(
        reads=len(samples),
        failed=len(samples) - len(answered),
        since=samples[-1].at if samples else None,
        median_latency_ms=round(median(latencies)) if latencies else None,
        slowest_latency_ms=max(latencies) if latencies else None,
        memory_free_percent=round(100 * newest.memory_free_bytes / newest.memory_total_bytes, 1) if newest and newest.memory_total_bytes else None,
    )
