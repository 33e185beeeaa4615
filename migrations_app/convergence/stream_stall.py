"""Tells the timeline when a migration stream that stalled moves again: a link that dropped
packets for a while (a flapping port, a firewall reloading) leaves no other trace, since the
convergence policy aborts only a stream that stays silent (`stalled_link_abort_s`)."""

from __future__ import annotations

from collections.abc import Callable

from hypervisor.job import JobSample

# A capped stream on a loaded host still moves something every second.
NOTE_AFTER_SECONDS = 3.0


class StreamStall:
    def __init__(self, note: Callable[[str], None]):
        self.note = note
        self._data_processed = 0
        self._progressed_at_ms: int | None = None

    def sampled(self, sample: JobSample) -> None:
        """One sample of the running job."""
        if self._progressed_at_ms is None or sample.data_processed > self._data_processed:
            silent_s = (sample.elapsed_ms - self._progressed_at_ms) / 1000 if self._progressed_at_ms is not None else 0
            if silent_s >= NOTE_AFTER_SECONDS and self._data_processed:
                self.note(
                    f"The migration stream moved again after {silent_s:.0f} s without sending anything: "
                    "the migration link dropped its packets meanwhile."
                )
            self._data_processed, self._progressed_at_ms = sample.data_processed, sample.elapsed_ms
