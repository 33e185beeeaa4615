"""When a post-copy migration has stopped moving memory.

A link that drops packets (a pulled cable, a firewall) breaks nothing QEMU can see: TCP
retries for some 15 minutes before either end gives up, and meanwhile the source reports
the same bytes remaining while the guest, on the destination, waits on every page it lacks.
In post-copy the stream never idles (the source pushes every page left, whatever the guest
does), so no progress for STALL_SECONDS is a broken link, not a quiet guest.

Pure: fed (seconds, bytes processed) and answers whether the stream is stuck.
"""

from __future__ import annotations

STALL_SECONDS = 15.0


class PostCopyStall:
    def __init__(self, limit_s: float = STALL_SECONDS):
        self.limit_s = limit_s
        self._processed: int | None = None
        self._since: float | None = None

    def stuck(self, now: float, data_processed: int) -> bool:
        """One post-copy sample at `now` (monotonic seconds): whether no byte moved for the limit."""
        if self._processed is None or data_processed != self._processed:
            self._processed, self._since = data_processed, now
            return False
        return now - self._since >= self.limit_s
