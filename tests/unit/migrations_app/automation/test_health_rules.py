"""The health rules as a pure function: scripted samples, a fixed clock, the exact rule and
sentence (or none) expected."""

from datetime import datetime, timedelta, timezone

import pytest

from migrations_app.automation.health_rules import FAILING_CALLS, MEMORY_PRESSURE, SLOW_LIBVIRT, Finding, HealthSample, HealthThresholds, evaluate

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
GIB = 1024**3
RULES = HealthThresholds(slow_latency_ms=1000, slow_samples=3, failed_reads=3, failed_window_minutes=5, memory_free_percent=5, memory_minutes=10)


def read(seconds_ago: int, latency_ms: int = 40, free_percent: float = 50) -> HealthSample:
    """A successful read `seconds_ago`, of a host with 100 GiB."""
    return HealthSample(NOW - timedelta(seconds=seconds_ago), True, latency_ms, int(free_percent * GIB), 100 * GIB)


def failed(seconds_ago: int, latency_ms: int = 5) -> HealthSample:
    return HealthSample(NOW - timedelta(seconds=seconds_ago), False, latency_ms)


def every_30_s(count: int, make, **fields) -> list[HealthSample]:
    """`count` samples 30 s apart, the newest now."""
    return [make(30 * i, **fields) for i in range(count)]


CASES = {
    "no samples yet": ([], None),
    "a healthy host": (every_30_s(20, read), None),
    # failing calls
    "three failed reads in five minutes, the newest among them": (
        [failed(0), read(30), failed(60), failed(120), read(150)],
        Finding(FAILING_CALLS, "3 failed reads ≥ 3 in 5 min"),
    ),
    "two failed reads are not enough": ([failed(0), read(30), failed(60), read(90)], None),
    "a failure older than the window does not count": ([failed(0), failed(60), failed(301)], None),
    "a host that answers again is not failing, whatever its recent past": ([read(0), failed(30), failed(60), failed(90)], None),
    # slow libvirt
    "the last three reads all slower than the limit": (
        [read(0, latency_ms=1500), read(30, latency_ms=1200), read(60, latency_ms=2500), read(90)],
        Finding(SLOW_LIBVIRT, "libvirt took 1200 ms or more > 1000 ms in each of the last 3 reads"),
    ),
    "one fast read among the last three breaks the run": ([read(0, latency_ms=1500), read(30), read(60, latency_ms=2500)], None),
    "a read exactly at the limit is not slow": (every_30_s(3, read, latency_ms=1000), None),
    "fewer reads than the rule needs": ([read(0, latency_ms=5000), read(30, latency_ms=5000)], None),
    "slow failures (timeouts) count as slow when too few to be failing": (
        [failed(0, latency_ms=10_000), read(30, latency_ms=3000), read(60, latency_ms=3000)],
        Finding(SLOW_LIBVIRT, "libvirt took 3000 ms or more > 1000 ms in each of the last 3 reads"),
    ),
    # memory pressure
    "free memory short for ten minutes": (
        every_30_s(21, read, free_percent=3) + [read(630, free_percent=30)],
        Finding(MEMORY_PRESSURE, "free memory 3% < 5% for 10 min"),
    ),
    "free memory short for nine and a half minutes only": (every_30_s(20, read, free_percent=3) + [read(600, free_percent=30)], None),
    "memory short long ago but free now": ([read(0, free_percent=40)] + [read(30 * i, free_percent=2) for i in range(1, 40)], None),
    "a failed read says nothing of memory and does not break the run": (
        [read(0, free_percent=4.4), failed(30)] + [read(30 * i, free_percent=4) for i in range(2, 25)],
        Finding(MEMORY_PRESSURE, "free memory 4.4% < 5% for 12 min"),
    ),
    "exactly at the limit is not short": (every_30_s(40, read, free_percent=5), None),
    # order
    "a host failing and slow is reported as failing": (
        [failed(0, latency_ms=10_000), failed(30, latency_ms=10_000), failed(60, latency_ms=10_000)],
        Finding(FAILING_CALLS, "3 failed reads ≥ 3 in 5 min"),
    ),
    "slow and short of memory is reported as slow": (
        every_30_s(30, read, latency_ms=3000, free_percent=1),
        Finding(SLOW_LIBVIRT, "libvirt took 3000 ms or more > 1000 ms in each of the last 3 reads"),
    ),
}


@pytest.mark.parametrize("samples, expected", CASES.values(), ids=CASES.keys())
def test_the_samples_fire_the_expected_rule_or_none(samples, expected):
    assert evaluate(samples, RULES, NOW) == expected


def test_the_order_of_the_samples_does_not_matter():
    samples = [failed(0), read(30), failed(60), failed(120)]

    assert evaluate(list(reversed(samples)), RULES, NOW) == evaluate(samples, RULES, NOW) == Finding(FAILING_CALLS, "3 failed reads ≥ 3 in 5 min")


@pytest.mark.parametrize("thresholds, samples, expected", [
    (HealthThresholds(failed_reads=1, failed_window_minutes=1), [failed(0)], "1 failed read ≥ 1 in 1 min"),
    (HealthThresholds(slow_latency_ms=50, slow_samples=1), [read(0, latency_ms=60)], "libvirt took 60 ms > 50 ms in the last read"),
    (HealthThresholds(memory_free_percent=50, memory_minutes=1), every_30_s(3, read, free_percent=10), "free memory 10% < 50% for 1 min"),
])
def test_the_thresholds_come_from_the_policy(thresholds, samples, expected):
    assert evaluate(samples, thresholds, NOW).detail == expected
