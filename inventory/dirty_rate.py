"""The dirty rate the inventory sync measures in the background, while it still stands for
the guest: a forecast takes it instead of sampling the guest for a second first."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.utils import timezone

from .models import VirtualMachine


def recent_dirty_rate(vm: VirtualMachine, now: datetime | None = None) -> int | None:
    """The rate read by one of the last two syncs (one may have failed), else None. A sync
    reads the measurement the sync before it started, so it is at most that old again."""
    if vm.dirty_rate_bytes_s is None or vm.dirty_rate_read_at is None:
        return None
    age = ((now or timezone.now()) - vm.dirty_rate_read_at).total_seconds()
    return vm.dirty_rate_bytes_s if age <= 2 * settings.INVENTORY_SYNC_INTERVAL_SECONDS else None
