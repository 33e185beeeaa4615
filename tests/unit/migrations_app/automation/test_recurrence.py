"""When schedules run, in the operator's time zone, across daylight-saving changes."""

from datetime import UTC, datetime, time

import pytest

from migrations_app.automation.recurrence import CRON, DAILY, ONCE, WEEKLY, Recurrence, RecurrenceError

PARIS = "Europe/Paris"


def runs(recurrence: Recurrence, after: datetime, count: int) -> list[str]:
    found = []
    for _ in range(count):
        after = recurrence.next_after(after)
        found.append(after.strftime("%Y-%m-%d %H:%M"))
    return found


def test_a_daily_run_keeps_its_local_time_across_the_spring_change_and_runs_once_in_the_autumn():
    daily = Recurrence(DAILY, PARIS, time_of_day=time(2, 30))

    # 29 March 2026: 02:00 becomes 03:00 in Paris, so 02:30 does not exist that night.
    assert runs(daily, datetime(2026, 3, 27, 12, tzinfo=UTC), 3) == ["2026-03-28 01:30", "2026-03-29 01:00", "2026-03-30 00:30"]
    # 25 October 2026: 03:00 goes back to 02:00, so 02:30 happens twice; it runs once.
    assert runs(daily, datetime(2026, 10, 23, 12, tzinfo=UTC), 3) == ["2026-10-24 00:30", "2026-10-25 00:30", "2026-10-26 01:30"]


def test_a_cron_expression_runs_at_local_time_in_utc_before_and_after_the_change():
    weekdays_at_nine = Recurrence(CRON, PARIS, cron="0 9 * * 1-5")

    assert runs(weekdays_at_nine, datetime(2026, 3, 26, 12, tzinfo=UTC), 3) == ["2026-03-27 08:00", "2026-03-30 07:00", "2026-03-31 07:00"]


def test_weekly_counts_monday_as_day_zero():
    sundays = Recurrence(WEEKLY, "UTC", time_of_day=time(4, 0), weekday=6)

    assert runs(sundays, datetime(2026, 11, 29, 5, tzinfo=UTC), 2) == ["2026-12-06 04:00", "2026-12-13 04:00"]


def test_a_one_off_run_comes_once():
    at = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    once = Recurrence(ONCE, PARIS, run_at=at)

    assert once.next_after(datetime(2026, 11, 30, tzinfo=UTC)) == at
    assert once.next_after(at) is None


@pytest.mark.parametrize("recurrence, message", [
    (Recurrence(CRON, cron="61 * * * *"), "is not a valid cron expression"),
    (Recurrence(ONCE, run_at=datetime(2020, 1, 1, tzinfo=UTC)), "is in the past"),
    (Recurrence(DAILY), "needs a time of day"),
    (Recurrence(WEEKLY, time_of_day=time(1, 0)), "needs a day of the week"),
    (Recurrence(DAILY, "Mars/Olympus", time_of_day=time(1, 0)), "Unknown time zone"),
])
def test_bad_recurrences_say_what_is_wrong(recurrence, message):
    with pytest.raises(RecurrenceError, match=message):
        recurrence.validate(datetime(2026, 11, 29, tzinfo=UTC))
