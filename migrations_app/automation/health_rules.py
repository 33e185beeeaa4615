"""Health rules for a host, like DRS's proactive HA: its recent inventory reads in, the rule
that fired and the sentence that says why out, or None. Pure: plain samples and thresholds.

Every rule describes the host as it is now, so each needs its newest sample to agree: a
host that failed three reads during a reboot and answers again is not failing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

SLOW_LIBVIRT = "slow libvirt"
FAILING_CALLS = "failing calls"
MEMORY_PRESSURE = "memory pressure"


@dataclass(frozen=True)
class HealthSample:
    """One inventory read of a host: whether libvirt answered, how fast, and its memory then."""

    at: datetime
    ok: bool
    latency_ms: int | None = None
    memory_free_bytes: int | None = None
    memory_total_bytes: int | None = None

    @property
    def memory_free_percent(self) -> float | None:
        if not self.ok or not self.memory_total_bytes or self.memory_free_bytes is None:
            return None
        return 100.0 * self.memory_free_bytes / self.memory_total_bytes


@dataclass(frozen=True)
class HealthThresholds:
    slow_latency_ms: int = 2000  # a read slower than this is slow...
    slow_samples: int = 3  # ...and this many slow reads in a row fire "slow libvirt"
    failed_reads: int = 3  # this many failed reads...
    failed_window_minutes: int = 5  # ...within this window fire "failing calls"
    memory_free_percent: int = 5  # free memory below this share of the total...
    memory_minutes: int = 10  # ...for this long fires "memory pressure"


@dataclass(frozen=True)
class Finding:
    rule: str
    detail: str  # e.g. "free memory 3% < 5% for 10 min"


def evaluate(samples: Sequence[HealthSample], thresholds: HealthThresholds, now: datetime) -> Finding | None:
    """The first rule, in the order of RULES, that the samples (in any order) fire."""
    newest_first = sorted(samples, key=lambda sample: sample.at, reverse=True)
    if not newest_first:
        return None
    for name, rule in RULES:
        detail = rule(newest_first, thresholds, now)
        if detail:
            return Finding(name, detail)
    return None


def _failing_calls(samples: list[HealthSample], thresholds: HealthThresholds, now: datetime) -> str | None:
    if samples[0].ok:
        return None
    since = now - timedelta(minutes=thresholds.failed_window_minutes)
    failed = sum(1 for sample in samples if not sample.ok and sample.at >= since)
    if failed < thresholds.failed_reads:
        return None
    return f"{failed} failed read{'s' if failed != 1 else ''} ≥ {thresholds.failed_reads} in {thresholds.failed_window_minutes} min"


def _slow_libvirt(samples: list[HealthSample], thresholds: HealthThresholds, now: datetime) -> str | None:
    last = samples[: thresholds.slow_samples]
    if len(last) < thresholds.slow_samples:
        return None
    if not all(sample.latency_ms is not None and sample.latency_ms > thresholds.slow_latency_ms for sample in last):
        return None
    fastest = min(sample.latency_ms for sample in last)
    if len(last) == 1:
        return f"libvirt took {fastest} ms > {thresholds.slow_latency_ms} ms in the last read"
    return f"libvirt took {fastest} ms or more > {thresholds.slow_latency_ms} ms in each of the last {len(last)} reads"


def _memory_pressure(samples: list[HealthSample], thresholds: HealthThresholds, now: datetime) -> str | None:
    measured = [sample for sample in samples if sample.memory_free_percent is not None]
    streak = []
    for sample in measured:  # newest first, until memory was not short
        if sample.memory_free_percent >= thresholds.memory_free_percent:
            break
        streak.append(sample)
    if not streak:
        return None
    lasted = streak[0].at - streak[-1].at
    if lasted < timedelta(minutes=thresholds.memory_minutes):
        return None
    return f"free memory {round(streak[0].memory_free_percent, 1):g}% < {thresholds.memory_free_percent}% for {int(lasted.total_seconds() // 60)} min"


# In the order they are judged: a host that does not answer is reported as such, not as slow.
RULES: tuple[tuple[str, Callable[[list[HealthSample], HealthThresholds, datetime], str | None]], ...] = (
    (FAILING_CALLS, _failing_calls),
    (SLOW_LIBVIRT, _slow_libvirt),
    (MEMORY_PRESSURE, _memory_pressure),
)
