"""The forecast of one move replayed by `prediction.predict` from measured numbers: the
guest's resident set, the rate it dirties pages, its working set and the link's rates.
Pages forecast from the inventory's measurements (`forecast`), the worker from the guest
just before it starts (`live_forecast`); both replay here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from migrations_app.forecast.history import FirstPassHint, LinkRates
from migrations_app.convergence.policy import MB, MIB, ConvergenceInputs, ConvergencePolicy
from migrations_app.convergence.prediction import Prediction, pass_end_pauses_ms, predict, with_disk_copy

POLICY = ConvergencePolicy()


@dataclass(frozen=True)
class Forecast:
    prediction: Prediction
    inputs: ConvergenceInputs  # with what was measured, as the policy then steers by it
    resident_bytes: int  # QEMU's resident set
    first_pass_bytes: int  # what of it the first pass is expected to send
    dirty_rate_bytes_s: int | None  # None when the hypervisor cannot measure it
    link: LinkRates
    sampled_now: bool = True  # False: the inventory's recent background measurement
    measured_at: datetime | None = None  # when the oldest measurement it rests on was taken
    disk_bytes: int = 0  # of disks copied with the memory, before it

    def summary(self) -> str:
        rate = f"{self.dirty_rate_bytes_s / MB:.0f} MB/s" if self.dirty_rate_bytes_s is not None else "an unmeasured rate"
        if not self.sampled_now:
            rate += " as last sampled by the inventory"
        disks = f", {self.disk_bytes / MIB:.0f} MiB of disks copied first" if self.disk_bytes else ""
        return (
            f"{self.prediction.strategy}, about {self.prediction.total_ms / 1000:.1f} s with a {self.prediction.downtime_ms} ms "
            f"pause ({self.first_pass_bytes / MIB:.0f} MiB in use, dirtied at {rate}, {self.link.first_pass_bytes_s / MIB:.0f} MiB/s{disks})."
        )

    @property
    def age_seconds(self) -> int | None:
        return max(round((timezone.now() - self.measured_at).total_seconds()), 0) if self.measured_at else None

    @property
    def measured_ago(self) -> str:
        """How old the measurement is, as a page says it: "measured 12 s ago"."""
        return measured_ago(self.measured_at, self.sampled_now)


def measured_ago(measured_at: datetime | None, sampled_now: bool = False) -> str:
    if measured_at is None:
        return "measured just now" if sampled_now else "measurement age unknown"
    age = max(round((timezone.now() - measured_at).total_seconds()), 0)
    return f"measured {age} s ago" if age < 120 else f"measured {age // 60} min ago"


def memory_in_use(resident_bytes: int, first_pass: FirstPassHint | None, nonzero_bytes: int | None) -> int:
    """What a first pass sends: every page the guest uses, zero pages skipped. QEMU's resident
    set holds that and QEMU's own memory (and zero pages the guest once touched). This VM's
    last first pass tells it best; else a sample of the guest's memory now (`nonzero_bytes`);
    else what QEMU held of its own in the last move from the same host; else the resident set."""
    if first_pass and first_pass.of_this_vm:
        return first_pass.first_pass_bytes(resident_bytes)
    if nonzero_bytes is not None:
        return min(nonzero_bytes, resident_bytes)
    return first_pass.first_pass_bytes(resident_bytes) if first_pass else resident_bytes


def replay(
    resident_bytes: int, inputs: ConvergenceInputs, link: LinkRates, dirty_rate: int | None,
    first_pass: FirstPassHint | None = None, working_set: int | None = None, *, sampled_now: bool, measured_at: datetime | None,
    nonzero_bytes: int | None = None, disk_bytes: int = 0,
) -> Forecast:
    """Replay the migration from the guest's memory in use (`memory_in_use`) and dirty rate.
    The working set, the pages it keeps rewriting, bounds what each pass resends; the disks a
    move copies (`disk_bytes`) go first (`prediction.with_disk_copy`)."""
    in_use = memory_in_use(resident_bytes, first_pass, nonzero_bytes)
    # Whether the guest outruns the link is a matter of how fast its dirtied pages are resent.
    inputs = dataclasses.replace(
        inputs, measured_dirty_rate_bytes_s=dirty_rate or 0, expected_link_bytes_s=link.resend_bytes_s,
        # Unmeasured, the guest might dirty anything: no start above the usual one.
        forecast_pass_pauses_ms=(
            pass_end_pauses_ms(in_use, dirty_rate, link.first_pass_bytes_s, link.resend_bytes_s, working_set) if dirty_rate is not None else None
        ),
    )
    prediction = predict(in_use, dirty_rate or 0, link.first_pass_bytes_s, inputs, POLICY, working_set, link.resend_bytes_s)
    prediction = with_disk_copy(prediction, disk_bytes, link.first_pass_bytes_s)
    return Forecast(prediction, inputs, resident_bytes, in_use, dirty_rate, link, sampled_now, measured_at, disk_bytes)


@dataclass(frozen=True)
class MoveForecast:
    forecast: Forecast | None
    error: str = ""  # why there is no forecast
