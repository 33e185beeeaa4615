"""When a schedule runs: once at a time, daily or weekly at a time of day, or by a cron
expression, all in the operator's time zone; returned in UTC. Daily and weekly are cron
expressions too, so daylight-saving changes are handled once, by cronsim: a time that a
spring change skips runs at the first minute after it, and a time that an autumn change
repeats runs once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

ONCE, DAILY, WEEKLY, CRON = "once", "daily", "weekly", "cron"
# A bound on the time a schedule's validation may take (about 2.5 s of cronsim).
MAX_RUNS_SEARCHED = 100_000
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class RecurrenceError(ValueError):
    pass


@dataclass(frozen=True)
class Recurrence:
    kind: str
    time_zone: str = "UTC"
    run_at: datetime | None = None  # ONCE, aware
    time_of_day: time | None = None  # DAILY and WEEKLY, in time_zone
    weekday: int | None = None  # WEEKLY: 0 is Monday
    cron: str = ""  # CRON: five fields, in time_zone

    def validate(self, now: datetime) -> None:
        """Raise RecurrenceError with a sentence an operator can act on."""
        zone(self.time_zone)
        if self.kind == ONCE:
            if self.run_at is None:
                raise RecurrenceError("A one-off schedule needs a date and time.")
            if self.run_at <= now:
                raise RecurrenceError(f"{self.run_at.astimezone(zone(self.time_zone)):%Y-%m-%d %H:%M} is in the past; choose a later time.")
            return
        if self.kind in (DAILY, WEEKLY) and self.time_of_day is None:
            raise RecurrenceError(f"A {self.kind} schedule needs a time of day.")
        if self.kind == WEEKLY and self.weekday not in range(7):
            raise RecurrenceError("A weekly schedule needs a day of the week.")
        if self.kind not in (DAILY, WEEKLY, CRON):
            raise RecurrenceError(f"Unknown recurrence {self.kind!r}: once, daily, weekly or cron.")
        try:
            CronSim(self.expression(), now.astimezone(zone(self.time_zone)))
        except CronSimError as error:
            raise RecurrenceError(f"{self.cron!r} is not a valid cron expression: {error}.") from error

    def expression(self) -> str:
        if self.kind == CRON:
            return self.cron.strip()
        minute, hour = self.time_of_day.minute, self.time_of_day.hour
        day_of_week = (self.weekday + 1) % 7 if self.kind == WEEKLY else "*"  # cron counts from Sunday
        return f"{minute} {hour} * * {day_of_week}"

    def fires_within(self, interval: timedelta, now: datetime) -> timedelta | None:
        """The shortest gap between two runs when it is shorter than `interval`, else None.

        Leaving days out only widens gaps, so the expression's minutes and hours alone, run
        every day, bound it from below: most expressions are cleared there, over two days of
        runs. Otherwise its real runs over the next four years (a leap day included) show
        whether two come that close: such a gap may span midnight, between two days that
        both run. Past MAX_RUNS_SEARCHED runs, the bound stands."""
        if self.kind != CRON:
            return None  # daily and weekly runs are a day apart at least
        minute, hour, *_ = self.expression().split()
        every_day, _ = self._shortest_gap(f"{minute} {hour} * * *", now, now + timedelta(days=2), interval)
        if every_day is None or every_day >= interval:
            return None
        gap, complete = self._shortest_gap(self.expression(), now, now + timedelta(days=4 * 366), interval)
        if not complete:
            return every_day
        return gap if gap is not None and gap < interval else None

    def _shortest_gap(self, expression: str, now: datetime, until: datetime, below: timedelta) -> tuple[timedelta | None, bool]:
        """The shortest gap between runs up to `until`, stopping at the first one under
        `below`; and whether the search finished (False: MAX_RUNS_SEARCHED runs ran out)."""
        shortest, previous = None, None
        for count, run in enumerate(CronSim(expression, now.astimezone(zone(self.time_zone)))):
            if run > until or (shortest is not None and shortest < below):
                return shortest, True
            if count >= MAX_RUNS_SEARCHED:
                return shortest, False
            if previous is not None:
                gap = run.astimezone(UTC) - previous.astimezone(UTC)
                shortest = gap if shortest is None else min(shortest, gap)
            previous = run
        return shortest, True

    def next_after(self, moment: datetime) -> datetime | None:
        """The first run strictly after `moment`, in UTC; None when there is none."""
        if self.kind == ONCE:
            return self.run_at.astimezone(UTC) if self.run_at and self.run_at > moment else None
        return next(CronSim(self.expression(), moment.astimezone(zone(self.time_zone)))).astimezone(UTC)

    def describe(self) -> str:
        if self.kind == ONCE:
            return f"once at {self.run_at.astimezone(zone(self.time_zone)):%Y-%m-%d %H:%M} ({self.time_zone})" if self.run_at else "once"
        if self.kind == DAILY:
            return f"daily at {self.time_of_day:%H:%M} ({self.time_zone})"
        if self.kind == WEEKLY:
            return f"every {WEEKDAYS[self.weekday]} at {self.time_of_day:%H:%M} ({self.time_zone})"
        return f"cron {self.cron} ({self.time_zone})"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise RecurrenceError(f"Unknown time zone {name!r}.") from error
