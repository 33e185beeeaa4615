"""Scheduled migrations against the lab, with nobody signed in: real schedulers (two of them),
real workers, and virsh as the oracle of where the guest runs."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from inventory.models import Host, VirtualMachine
from migrations_app.automation import schedules
from migrations_app.choices import ScheduleRunState, TaskState
from migrations_app.models import MigrationTask, Schedule, ScheduleRun
from tests import processes

from tests.lab.conftest import wait_for_state, where_runs

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


def test_a_schedule_due_seconds_ahead_runs_by_itself_once_with_two_schedulers(lab_inventory, workers, operator, home_hosts, guests_stay_intact):
    vm = VirtualMachine.objects.select_related("host").get(name="lab-vm3")
    destination = Host.objects.exclude(pk=vm.host_id).order_by("name").first()
    second_scheduler = processes.start_scheduler(index=2)
    try:
        schedule = schedules.create(Schedule(
            name="in a few seconds", vm_names=["lab-vm3"], destination_name=destination.name, recurrence="once",
            run_at=timezone.now() + timedelta(seconds=6), created_by=operator,
        ))
        task = wait_for(lambda: MigrationTask.objects.filter(vm=vm).first(), 30, "the scheduled task")
        task = wait_for_state(task, [TaskState.SUCCEEDED, TaskState.FAILED], timeout=120)
        time.sleep(3)  # both schedulers have ticked again since
    finally:
        processes.stop(second_scheduler)

    assert task.state == TaskState.SUCCEEDED, task.error
    assert ScheduleRun.objects.filter(schedule=schedule).count() == 1 and MigrationTask.objects.filter(vm=vm).count() == 1
    assert task.requested_by == operator
    assert any("Requested by schedule “in a few seconds”" in event.message and "created by operator" in event.message for event in task.events.all())
    assert where_runs("lab-vm3") == [destination.name]


def test_on_start_a_scheduler_fires_a_run_missed_within_grace_once_and_records_an_older_one_as_missed(lab_inventory, operator):
    now = timezone.now()
    recent = schedules.create(Schedule(name="recent", vm_names=["lab-vm1"], recurrence="daily", time_of_day=now.time(), created_by=operator))
    old = schedules.create(Schedule(name="old", vm_names=["lab-vm2"], recurrence="daily", time_of_day=now.time(), created_by=operator))
    Schedule.objects.filter(pk=recent.pk).update(next_run_at=now - timedelta(minutes=5))
    Schedule.objects.filter(pk=old.pk).update(next_run_at=now - timedelta(minutes=20))

    scheduler = processes.start_scheduler()
    try:
        wait_for(lambda: ScheduleRun.objects.count() == 2, 30, "both runs")
        time.sleep(2)  # more ticks: still no second run
    finally:
        processes.stop(scheduler)

    fired, missed = ScheduleRun.objects.get(schedule=recent), ScheduleRun.objects.get(schedule=old)
    assert fired.state == ScheduleRunState.RUNNING and fired.result == "1 of 1 submitted."
    assert missed.state == ScheduleRunState.MISSED and "past the 10 min grace period" in missed.result
    assert ScheduleRun.objects.count() == 2 and MigrationTask.objects.count() == 1
    assert all(item.next_run_at > now for item in Schedule.objects.all())
    MigrationTask.objects.get().transition(TaskState.CANCELLED, "No worker in this test.")
