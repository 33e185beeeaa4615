"""The dirty rate and working set the inventory sync measures in the background, while they
still stand for the guest, and when they were read: a forecast takes them instead of
sampling the guest for a second first, and says how old they are. Also the other
measurements a forecast starts from: the guest's non-zero memory and its CPU demand."""

from __future__ import annotations

import statistics
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from hypervisor.sampling import WORKING_SET_WINDOW_SECONDS

from .models import VirtualMachine

# A guest that dirtied less than this share of (its rate x the window) within the window
# rewrites pages it dirtied before within it.
SATURATED_PERCENT = 75
# The window holds at least what any second of it dirtied: one that saw much less than the
# 1 s rate disagrees with it (an idle guest's few pages, sampled), and shows no working set.
CONSISTENT_PERCENT = 50


# A guest's way of writing its memory outlasts a QEMU process: one that keeps moving (each
# move starts a new process, whose measurement the next sync would read) keeps the rate
# measured before, for this long.
STANDS_FOR_SECONDS = 15 * 60
# The 1 s readings kept, whose median is the rate: page sampling hashes a few hundred pages
# per GiB for one second, so single readings of a guest rewriting 100 MB/s in the lab ranged
# from 71 to 104 MB/s; the median of the last five leaves out one or two outliers.
READINGS_KEPT = 5


def record_dirty_rate(vm: VirtualMachine, rate: int, now: datetime) -> None:
    """Keep a 1 s reading on the VM (not saved): the last one, and among the last few."""
    vm.dirty_rate_bytes_s, vm.dirty_rate_read_at = rate, now
    vm.dirty_rate_readings = [*(vm.dirty_rate_readings or []), [now.isoformat(), rate]][-READINGS_KEPT:]


def _median_of_recent_readings(vm: VirtualMachine, now: datetime | None) -> int | None:
    """The median of the recent 1 s readings; the last rate alone where none was kept."""
    recent = [rate for read_at, rate in vm.dirty_rate_readings or [] if _recent(rate, datetime.fromisoformat(read_at), now) is not None]
    if not recent:
        return _recent(vm.dirty_rate_bytes_s, vm.dirty_rate_read_at, now)
    return round(statistics.median(recent))


def _recent(value: int | None, read_at: datetime | None, now: datetime | None) -> int | None:
    """A sync reads the measurement the sync before it started, and the two kinds take turns:
    each is read every other sync, so it is up to two intervals old, three when one failed."""
    if value is None or read_at is None:
        return None
    age = ((now or timezone.now()) - read_at).total_seconds()
    return value if age <= max(3 * settings.INVENTORY_SYNC_INTERVAL_SECONDS, STANDS_FOR_SECONDS) else None


def recent_dirty_rate(vm: VirtualMachine, now: datetime | None = None) -> int | None:
    """Distinct bytes per second the guest dirties, if recently measured (the 1 s rate being
    the median of the recent 1 s readings): the 4 s window's
    average where the window shows it dirtying new pages all along (four times the sampled
    pages changed, so less noise) unless the 1 s rate is higher (a window that nears what the
    guest keeps rewriting averages below its pace), else the 1 s rate."""
    rate, dirtied = _readings(vm, now)
    if dirtied is not None and not _saturated(rate, dirtied):
        return max(round(dirtied / WORKING_SET_WINDOW_SECONDS), rate)
    return rate


def recent_working_set(vm: VirtualMachine, now: datetime | None = None) -> int | None:
    """The bytes the guest keeps rewriting, if the recent measurements show it rewrites the same
    pages; None for a guest that dirties new pages throughout the window, or not measured."""
    rate, dirtied = _readings(vm, now)
    return dirtied if dirtied is not None and _saturated(rate, dirtied) else None


def measured_at(vm: VirtualMachine, now: datetime | None = None) -> datetime | None:
    """When the oldest reading `recent_dirty_rate` and `recent_working_set` rest on was read:
    what a page gives as the measurement's age. None without a recent rate."""
    rate, dirtied = _readings(vm, now)
    if rate is None:
        return None
    return min(vm.dirty_rate_read_at, vm.dirtied_in_window_read_at) if dirtied is not None else vm.dirty_rate_read_at


def _readings(vm: VirtualMachine, now: datetime | None) -> tuple[int | None, int | None]:
    """The recent 1 s rate, and what the recent window saw when it agrees with that rate
    (the window holds at least what any second of it dirtied), else None for the window."""
    rate = _median_of_recent_readings(vm, now)
    dirtied = _recent(vm.dirtied_in_window_bytes, vm.dirtied_in_window_read_at, now)
    if not rate or dirtied is None or dirtied * 100 < rate * CONSISTENT_PERCENT:
        return rate, None
    return rate, dirtied


def _saturated(rate: int, dirtied: int) -> bool:
    return dirtied * 100 < rate * WORKING_SET_WINDOW_SECONDS * SATURATED_PERCENT


def recent_nonzero_memory(vm: VirtualMachine, now: datetime | None = None) -> int | None:
    """The bytes of its RAM that are not zero pages, if sampled recently (a guest's memory
    fills slowly, so a sample stands as long as a dirty rate does)."""
    return _recent(vm.nonzero_memory_bytes, vm.nonzero_memory_read_at, now)


def record_nonzero_memory(vm: VirtualMachine, nonzero_bytes: int, now: datetime) -> None:
    vm.nonzero_memory_bytes, vm.nonzero_memory_read_at = nonzero_bytes, now

