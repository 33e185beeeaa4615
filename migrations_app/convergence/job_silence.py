"""Tells the timeline when libvirt stops giving a running migration's statistics, and when it
gives them again. libvirt holds the domain's lock while it opens the migration stream: with the
destination's migration address unreachable, that lasts until TCP gives up (minutes), and
neither statistics nor an abort get through meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable

# Shorter silences are a busy libvirtd, not worth an operator's attention.
NOTE_AFTER_SECONDS = 10.0


class JobSilence:
    def __init__(self, host_name: str, note: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self.host_name, self.note, self.clock = host_name, note, clock
        # Counted from the last answer (or the watch's start): a call that hangs until its
        # deadline and calls that then fail at once are one silence, however it began.
        self._since = clock()
        self._noted = False

    def failed(self, error: Exception) -> None:
        now = self.clock()
        if not self._noted and now - self._since >= NOTE_AFTER_SECONDS:
            self._noted = True
            self.note(
                f"libvirt on {self.host_name} has not given the migration's statistics for {now - self._since:.0f} s ({error}). "
                "The migration stays libvirt's to end; vmotion keeps asking and ends the task by where the VM runs."
            )

    def silent_for(self) -> float:
        """Seconds since libvirt last gave the statistics (or since the watch began)."""
        return self.clock() - self._since

    def answered(self) -> None:
        if self._noted:
            self.note(f"libvirt on {self.host_name} answers again after {self.clock() - self._since:.0f} s.")
        self._since, self._noted = self.clock(), False
