"""Schedules against the database: validation, exactly-once runs, missed runs, attribution,
a VM gone since, and migration windows. The lab runs them with real schedulers and workers."""

import json
import threading
from datetime import time, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from inventory.models import VirtualMachine
from migrations_app.automation import schedules
from migrations_app.choices import ScheduleRunState, TaskState
from migrations_app.errors import MigrationRequestError
from migrations_app.models import MigrationTask, Schedule, ScheduleRun
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.usefixtures("cpus_compatible")


@pytest.fixture
def inventory(db):
    now = timezone.now()
    kvm1 = HostFactory(name="kvm1", uri="test:///default", last_seen=now, last_error="")
    kvm2 = HostFactory(name="kvm2", uri="test:///default", last_seen=now, last_error="")
    for name in ("app-1", "app-2"):
        VirtualMachineFactory(name=name, host=kvm1)
    return kvm1, kvm2


def schedule(user, **fields) -> Schedule:
    values = dict(name="nightly", vm_names=["app-1", "app-2"], destination_name="kvm2", recurrence="once",
                  run_at=timezone.now() + timedelta(hours=1), created_by=user)
    return Schedule(**{**values, **fields})


@pytest.mark.parametrize("fields, message", [
    ({"recurrence": "cron", "cron": "61 * * * *"}, "not a valid cron expression"),
    ({"run_at": timezone.now() - timedelta(minutes=1)}, "is in the past"),
    ({"vm_names": ["app-1", "ghost"]}, "No VM named ghost"),
    ({"destination_name": "kvm9"}, "No host named 'kvm9'"),
    ({"window_minutes": 0}, "at least a minute"),
    ({"action": "evacuate", "host_name": "kvm1"}, "Administrator role"),
])
def test_bad_input_is_refused_with_a_clear_message_and_creates_nothing(inventory, operator, fields, message):
    with pytest.raises(MigrationRequestError, match=message):
        schedules.create(schedule(operator, **fields))
    assert not Schedule.objects.exists()


def test_a_viewer_cannot_schedule(inventory, viewer):
    with pytest.raises(MigrationRequestError, match="Operator role"):
        schedules.create(schedule(viewer))


def test_a_due_run_moves_the_vms_attributed_to_the_schedule_and_its_creator(inventory, operator):
    created = schedules.create(schedule(operator))
    Schedule.objects.filter(pk=created.pk).update(next_run_at=timezone.now() - timedelta(seconds=5))

    [run] = schedules.fire_due()

    tasks = MigrationTask.objects.filter(batch=run.batch).order_by("vm__name")
    assert [task.vm.name for task in tasks] == ["app-1", "app-2"] and all(task.requested_by == operator for task in tasks)
    assert "Requested by schedule “nightly”" in tasks[0].events.last().message and "created by operator" in tasks[0].events.last().message
    assert run.result == "2 of 2 submitted." and run.state == ScheduleRunState.RUNNING
    assert Schedule.objects.get().next_run_at is None  # a one-off schedule does not run again
    assert schedules.fire_due() == []


def test_a_vm_deleted_since_is_recorded_and_the_rest_move(inventory, operator):
    created = schedules.create(schedule(operator))
    VirtualMachine.objects.filter(name="app-2").delete()
    Schedule.objects.filter(pk=created.pk).update(next_run_at=timezone.now())

    [run] = schedules.fire_due()

    assert run.result == "1 of 2 submitted. Not moved: app-2 is no longer in the inventory."


def test_a_run_whose_host_is_gone_fails_with_the_reason_and_the_schedule_stays(inventory, administrator):
    created = schedules.create(schedule(administrator, action="evacuate", host_name="kvm1", vm_names=[]))
    Schedule.objects.filter(pk=created.pk).update(next_run_at=timezone.now(), host_name="kvm7")

    [run] = schedules.fire_due()

    assert run.state == ScheduleRunState.FAILED and run.result == "Host 'kvm7' is no longer in the inventory."
    assert Schedule.objects.filter(pk=created.pk).exists()


def test_a_missed_run_within_grace_fires_once_and_beyond_it_is_recorded_as_missed(inventory, operator, settings):
    settings.SCHEDULE_GRACE_SECONDS = 600
    daily = schedules.create(schedule(operator, recurrence="daily", time_of_day=time(2, 0), run_at=None))
    now = timezone.now()

    Schedule.objects.filter(pk=daily.pk).update(next_run_at=now - timedelta(minutes=5))
    [late] = schedules.fire_due(now)
    assert late.state == ScheduleRunState.RUNNING and MigrationTask.objects.count() == 2

    MigrationTask.objects.update(state=TaskState.CANCELLED)
    Schedule.objects.filter(pk=daily.pk).update(next_run_at=now - timedelta(days=3))
    [missed] = schedules.fire_due(now)
    assert missed.state == ScheduleRunState.MISSED and "past the 10 min grace period" in missed.result
    # No catch-up burst: the next run is the first one after now.
    assert now < Schedule.objects.get().next_run_at <= now + timedelta(days=1)
    assert schedules.fire_due(now) == [] and MigrationTask.objects.count() == 2


def test_when_the_window_closes_queued_moves_are_cancelled_and_the_result_says_so(inventory, operator):
    created = schedules.create(schedule(operator, window_minutes=30))
    due = timezone.now() - timedelta(minutes=31)
    Schedule.objects.filter(pk=created.pk).update(next_run_at=due)
    [run] = schedules.fire_due(due + timedelta(seconds=1))
    first, second = run.batch.tasks.order_by("vm__name")
    first.transition(TaskState.CHECKING)
    first.transition(TaskState.MIGRATING)
    first.transition(TaskState.SUCCEEDED, "moved")

    schedules.settle()

    second.refresh_from_db()
    run.refresh_from_db()
    assert second.state == TaskState.CANCELLED and "migration window of schedule “nightly” closed" in second.events.last().message
    assert run.state == ScheduleRunState.DONE
    assert run.result == "2 of 2 submitted. 1 moved, 1 cancelled when the window closed."


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_at_the_same_moment_fire_a_due_run_once(inventory, operator):
    created = schedules.create(schedule(operator))
    Schedule.objects.filter(pk=created.pk).update(next_run_at=timezone.now())
    start = threading.Barrier(2)
    claimed, raised = [], []

    def scheduler():
        # A thread's exception would only be printed: keep it for the assertion below.
        try:
            start.wait()
            claimed.append(len(schedules.fire_due()))
        except BaseException as error:
            raised.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert raised == [] and not any(thread.is_alive() for thread in threads)
    assert sorted(claimed) == [0, 1]  # one scheduler claimed the run, the other found it taken
    assert ScheduleRun.objects.count() == 1 and MigrationTask.objects.count() == 2


def test_the_cli_adds_lists_disables_enables_shows_and_deletes_a_schedule(inventory, operator):
    def vmotion(*args) -> dict:
        out = StringIO()
        call_command("vmotion", "schedule", *args, "--json", stdout=out)
        return json.loads(out.getvalue().strip().splitlines()[-1])

    added = vmotion("add", "weekend", "--vm", "app-1", "--vm", "app-2", "--weekly", "sunday", "02:00", "--tz", "Europe/Paris",
                    "--window", "60", "--user", "operator")
    assert added["when"] == "every Sunday at 02:00 (Europe/Paris)" and added["enabled"]
    assert [item["name"] for item in vmotion("list")["schedules"]] == ["weekend"]
    assert vmotion("disable", str(added["schedule"]))["enabled"] is False
    assert vmotion("enable", str(added["schedule"]))["next_run_at"] == added["next_run_at"]
    assert vmotion("show", str(added["schedule"]))["last_run"] is None
    vmotion("delete", str(added["schedule"]))
    assert not Schedule.objects.exists()


@pytest.mark.parametrize("args, message", [
    (["--vm", "app-1", "--cron", "0 25 * * *"], "not a valid cron expression"),
    (["--vm", "app-1", "--at", "2020-01-01 02:00"], "is in the past"),
    (["--vm", "app-1", "--weekly", "someday", "02:00"], "not a day of the week"),
    (["--vm", "app-1", "--daily", "02:00", "--tz", "Mars/Olympus"], "Unknown time zone"),
    (["--evacuate", "kvm1", "--daily", "02:00"], "Administrator role"),
])
def test_the_cli_refuses_bad_schedules_with_a_json_error(inventory, operator, args, message):
    out = StringIO()
    with pytest.raises(CommandError, match=message):
        call_command("vmotion", "schedule", "add", "bad", *args, "--user", "operator", "--json", stdout=out)
    assert message in json.loads(out.getvalue().strip().splitlines()[-1])["error"]
    assert not Schedule.objects.exists()
