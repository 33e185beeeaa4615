"""The forecast a worker takes just before a migration starts, from the guest as it is now:
its resident set read through libvirt, and its dirty rate sampled for a second unless the
inventory measured one recently. Only workers import this; pages forecast from the
inventory (`forecast.forecast_moves`)."""

from __future__ import annotations

from django.utils import timezone

from hypervisor.guest import Guest

from migrations_app.forecast.replay import Forecast, replay
from migrations_app.forecast.history import FirstPassHint, LinkRates
from migrations_app.convergence.policy import ConvergenceInputs


def forecast(
    guest: Guest, memory_bytes: int, inputs: ConvergenceInputs, link: LinkRates,
    recent_dirty_rate: int | None = None, first_pass: FirstPassHint | None = None, working_set: int | None = None,
) -> Forecast:
    """Replay the migration from the guest's memory in use and its dirty rate: the recent
    one given, else measured now for a second. Raises HypervisorError."""
    resident = guest.resident_bytes() or memory_bytes
    sampled_now = recent_dirty_rate is None
    dirty_rate = guest.measure_dirty_rate(seconds=1) if sampled_now else recent_dirty_rate
    return replay(resident, inputs, link, dirty_rate, first_pass, working_set, sampled_now=sampled_now, measured_at=timezone.now() if sampled_now else None)
