"""Where a migration stands, from the task and its latest job sample: what the live progress
fragment shows. Pure: values in, figures out."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    """The task states progress tells apart: the values of `choices.TaskState`, mirrored here so
    that this module needs no Django (a test keeps the two equal)."""

    QUEUED = "queued"
    CHECKING = "checking"
    WAITING = "waiting"
    MIGRATING = "migrating"
    POST_COPY = "post_copy"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class SampleFigures:
    """The few numbers of a stored job sample the progress needs."""

    # Named as ProgressSample's columns, so a row maps onto it field by field.
    elapsed_ms: int
    data_total: int
    data_remaining: int
    throughput_bytes_s: int
    dirty_rate_bytes_s: int
    iteration: int
    max_downtime_ms: int | None
    throttle_percent: int
    disk_total: int = 0
    disk_remaining: int = 0


@dataclass(frozen=True)
class Progress:
    phase: str
    percent: int  # of the guest's memory already on the destination, 0-100
    remaining_bytes: int | None
    throughput_bytes_s: int | None
    dirty_rate_bytes_s: int | None
    iteration: int | None
    eta_s: float | None  # None when the copy does not gain on the guest's writes
    expected_pause_ms: int | None  # the pause if the switch happened now; None during the first pass
    allowed_pause_ms: int | None  # what libvirt currently allows
    slo_ms: int
    throttle_percent: int = 0
    disk_percent: int | None = None  # of the disks copied with the memory; None without disk copies
    disk_remaining_bytes: int | None = None

    @property
    def pause_within_slo(self) -> bool | None:
        return None if self.expected_pause_ms is None else self.expected_pause_ms <= self.slo_ms


PHASES = {
    State.QUEUED: "Waiting for a worker",
    State.CHECKING: "Checking everything again",
    State.WAITING: "Waiting for a migration slot",
    State.POST_COPY: "Post-copy: running on the destination, memory follows",
    State.SUCCEEDED: "Done",
    State.FAILED: "Failed",
    State.CANCELLED: "Cancelled",
}


def progress_of(state: str, slo_ms: int, sample: SampleFigures | None) -> Progress:
    if state == State.SUCCEEDED:
        return Progress(PHASES[state], 100, 0, None, None, None, 0, None, None, slo_ms)
    if sample is None or state not in (State.MIGRATING, State.POST_COPY):
        phase = PHASES.get(state, "Starting the copy")
        return Progress(phase, 0, None, None, None, None, None, None, None, slo_ms)
    percent = _percent(sample.data_total, sample.data_remaining, ceiling=99)
    rate, dirty = sample.throughput_bytes_s, sample.dirty_rate_bytes_s
    gaining = rate > dirty
    phase = PHASES[state] if state == State.POST_COPY else f"Copying memory, pass {sample.iteration or 1}"
    if sample.disk_total and sample.disk_remaining and state == State.MIGRATING:
        phase = "Copying the disks; the memory follows once they are in step"
    return Progress(
        phase=phase,
        percent=percent,
        remaining_bytes=sample.data_remaining,
        throughput_bytes_s=rate or None,
        dirty_rate_bytes_s=dirty,
        iteration=sample.iteration or 1,
        eta_s=sample.data_remaining / (rate - dirty) if rate and gaining else None,
        # In the first pass "remaining" is memory not yet sent once; no switch is due before it ends.
        expected_pause_ms=round(sample.data_remaining * 1000 / rate) if rate and sample.iteration > 1 else None,
        allowed_pause_ms=sample.max_downtime_ms,
        slo_ms=slo_ms,
        throttle_percent=sample.throttle_percent,
        disk_percent=_percent(sample.disk_total, sample.disk_remaining, ceiling=100) if sample.disk_total else None,
        disk_remaining_bytes=sample.disk_remaining if sample.disk_total else None,
    )


def disk_copy_progress(state: str, sample: SampleFigures | None) -> Progress:
    """A storage-only move's progress: its samples hold the disks' copy (the guest's writes
    while it runs are in the total QEMU reports, so it may grow)."""
    if state == State.SUCCEEDED:
        return Progress(PHASES[state], 100, 0, None, None, None, 0, None, None, 0)
    if sample is None or state != State.MIGRATING:
        return Progress(PHASES.get(state, "Starting the copy"), 0, None, None, None, None, None, None, None, 0)
    percent = _percent(sample.data_total, sample.data_remaining, ceiling=99)
    rate = sample.throughput_bytes_s
    return Progress(
        phase="Copying the disks",
        percent=percent,
        remaining_bytes=sample.data_remaining,
        throughput_bytes_s=rate or None,
        dirty_rate_bytes_s=None,
        iteration=None,
        eta_s=sample.data_remaining / rate if rate else None,
        expected_pause_ms=None,
        allowed_pause_ms=None,
        slo_ms=0,
    )


def _percent(total: int, remaining: int, ceiling: int) -> int:
    """Of `total`, how much is done, 0 to `ceiling` (99 while a copy runs: never 100 % before it ends)."""
    return min(max(int(100 * (total - remaining) / total), 0), ceiling) if total else 0
